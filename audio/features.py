"""Aubio audio features of one clip: the feature table, the extractor and its flags.

Conventions
-----------
* Input is mono float32 audio; it is resampled to ``ANALYSIS_SAMPLE_RATE`` (22050 Hz) first.
* Frequencies are in Hz, levels in dB relative to full scale (a full-scale square wave is
  0 dB), rates per second, tempo in beats per minute. ``key`` is a pitch class (0 = C ...
  11 = B, -1 = none found) and ``mode`` is 1 for major, 0 for minor, -1 with no key.
* Summaries named ``*_mean`` / ``*_std`` are the mean and standard deviation over the
  *active* analysis frames (level above ``SILENCE_DB``), so leading silence or fades do not
  drag timbre features toward those of silence.
* Every value is finite. Where a feature cannot be measured (silence, a clip too short for
  beats) it takes a neutral value and the result carries a flag saying so (``FLAG_MEANINGS``).

Where the work happens
----------------------
Every feature follows the definition of an aubio object (``FEATURE_TABLE`` names it, with its
parameters, and says whether aubio or numpy computes it), and most are computed for all frames
at once in numpy: calling aubio once per hop costs 2-20 us of Python and FFT per call, which
for the 2,600 hops of a 30 s clip took longer than everything else together. The tests check
each numpy version against the aubio object itself, frame by frame or beat by beat:

* the phase-vocoder spectrum and its descriptors (aubio ``specdesc`` centroid / spread /
  rolloff / specflux), ``mfcc`` (the filters of ``aubio.filterbank.set_mel_coeffs_slaney``
  and the matrix of ``aubio.dct``), ``db_spl`` and ``zero_crossing_rate`` at 22050 Hz;
* at 11025 Hz (half the analysis rate: these need nothing above 5.5 kHz): ``aubio.onset``'s
  whole chain -- "hfc" detection function, peak picker, silence gate, minimum inter-onset
  interval (``onset_hops``) --, ``aubio.tempo``'s detection function and Davies beat
  tracker (``track_beats``; the tracker runs once per 1.5 s step, a few vector operations
  each), and the chroma.

Only the pitch confidence calls aubio's C code (``aubio.pitch``, yinfast), on every other
93 ms window. aubio's beat tracker folds tempi into about 78-165 BPM; a documented check of the
spectral flux at and between its beats (``beat_level_tempo``) picks the metrical level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import aubio
import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import firwin, lfilter

from songmix.audio.decode import (
    ANALYSIS_SAMPLE_RATE,
    DEFAULT_MAX_SECONDS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    decode_file,
    resample,
)
from songmix.sources.schema import PITCH_CLASSES

# Identifies what the extractor computes; bump the number whenever a feature's definition or
# parameters change, so that stored features of an older version are recomputed.
EXTRACTOR_VERSION = f"songmix-audio-2+aubio-{aubio.version}"

# Spectral frames: the phase vocoder of aubio.pvoc(1024, 512), 46 ms windows every 23 ms.
FRAME_SIZE = 1024
HOP_SIZE = 512
STFT_CHUNK = 256  # frames transformed at a time: ~1 MB of windowed frames, fits in L2
# Onsets, tempo, pitch and chroma run at half the rate: their detection functions need no
# content above 5.5 kHz (the chroma none above 2 kHz), and half the samples halve the FFTs.
AUBIO_SAMPLE_RATE = ANALYSIS_SAMPLE_RATE // 2
HALF_BAND_TAPS = 11
# Beat tracking (aubio.tempo): a hop of 11.6 ms, the resolution aubio's beat tracker is tuned for
# (512 at 44.1 kHz); at 23 ms its tempo range shifts to ~50-100 BPM and every faster song halves.
TEMPO_METHOD = "specflux"
TEMPO_FRAME_SIZE = 128
TEMPO_HOP_SIZE = 128
# aubio.tempo's beat tracker (aubio 0.4.9 src/tempo/tempo.c and beattracking.c), in frames
# of the detection function: it looks at the next power of two above 5.8 s of frames, every
# quarter of that; periods are searched over a quarter of it.
BEAT_WINDOW = 1 << math.ceil(math.log2(5.8 * AUBIO_SAMPLE_RATE / TEMPO_HOP_SIZE))
BEAT_STEP = BEAT_WINDOW // 4
BEAT_LAGS = BEAT_WINDOW // 4
BEAT_PERIOD_SPREAD = 3.901  # aubio's g_var, "constthresh empirically derived"
BEAT_MIN_PERIOD = 25  # shorter periods (faster than ~206 BPM at 44.1 kHz / 512) are doubled
BEAT_BACK_OFF = 0.40  # a first beat over 40 % of a period early is skipped
# Onsets (aubio.onset): 23 ms windows, not overlapping.
ONSET_METHOD = "hfc"
ONSET_FRAME_SIZE = 256
ONSET_HOP_SIZE = 256
# aubio's peak picker (src/onset/peakpicker.c, 0.4.9): a window of 5 older values, the one
# judged and 1 newer, smoothed by this biquad (its denominator as aubio 0.4.9 ships it).
PEAK_PICKER_OLDER = 5
PEAK_PICKER_NEWER = 1
PEAK_PICKER_B = (0.15998789, 0.31997577, 0.15998789)
PEAK_PICKER_A = (1.0, 0.23484048, 0.0)
# Pitch (aubio.pitch): 93 ms windows, one every 186 ms; only a summary is kept, and every
# other window estimates it about as well (on 60 demo previews the clip means moved by 0.006
# on average and correlate at 0.97, the voiced fractions at 0.99) for half the cost. "yinfast"
# is aubio's FFT-based YIN; "yinfft" reports a confidence of 0 for every frame in aubio 0.4.9
# (aubio issue #167), so its confidence cannot be used.
PITCH_METHOD = "yinfast"
PITCH_FRAME_SIZE = 1024
PITCH_HOP_SIZE = 2048
VOICED_CONFIDENCE = 0.85  # YIN's usual tolerance of 0.15 on the normalised difference
# Key: 186 ms windows resolve semitones down to ~100 Hz (5.4 Hz bins). At the half rate (all
# bins of interest lie below 2 kHz) the same window needs half the samples and FFT.
CHROMA_FRAME_SIZE = 2048
CHROMA_MIN_HZ = 100.0
CHROMA_MAX_HZ = 2000.0
# Mel filterbank of aubio.mfcc: 40 Slaney filters, 13 coefficients.
N_MEL_FILTERS = 40
N_MFCC = 13

# The longest analysis window (chroma), in samples at the analysis rate.
LONGEST_WINDOW = CHROMA_FRAME_SIZE * ANALYSIS_SAMPLE_RATE // AUBIO_SAMPLE_RATE

SILENCE_DB = -70.0  # aubio.onset's default silence threshold
LEVEL_FLOOR_DB = -100.0  # reported level of digital silence
ROLLOFF_FRACTION = 0.95  # aubio specdesc "rolloff"
ROLLOFF_MAX_BLOCK = 32  # most bins per block of spectral_rolloff_bins' running sums
MIN_BEATS = 4  # fewer beats than this: no tempo
# Metrical-level checks of beat_level_tempo, set on 240 demo previews (66-190 BPM, seed 7).
MIN_BEAT_SALIENCE = 1.2
HALVE_BELOW = 0.2
DOUBLE_ABOVE = 0.6
DOUBLE_SALIENCE = 1.5
BEAT_TOLERANCE_FRAMES = 2  # +-46 ms around a beat when reading the onset strength
SHORT_SECONDS = 5.0  # aubio.tempo needs several seconds of onsets to lock on

# Kostka-Payne key profiles (Temperley 2001), index 0 = tonic.
MAJOR_PROFILE = np.array([5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0])
MINOR_PROFILE = np.array([5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0])
NO_KEY = -1

FLAG_SILENT = "silent"
FLAG_SHORT = "short"
FLAG_NO_BEAT = "no_beat"
FLAG_NO_KEY = "no_key"
FLAG_CAPPED = "capped"
FLAG_MEANINGS: dict[str, str] = {
    FLAG_SILENT: f"no frame above {SILENCE_DB:g} dB: spectral, MFCC and pitch summaries are 0",
    FLAG_SHORT: f"shorter than {SHORT_SECONDS:g} s: tempo and onset rate are unreliable",
    FLAG_NO_BEAT: f"aubio.tempo found fewer than {MIN_BEATS} beats, or beats no stronger than "
    "the background onsets: tempo, confidence and regularity are 0",
    FLAG_NO_KEY: "no audible energy between the chroma limits: key and mode are -1, strength 0",
    FLAG_CAPPED: "the file is longer than the analysis cap; only its start was analysed",
}


@dataclass(frozen=True)
class FeatureSpec:
    """One row of the feature table.

    Attributes
    ----------
    name : str
        Column name.
    aubio_object : str
        The aubio object (or function) whose definition the feature follows.
    parameters : str
        Window, hop, method and thresholds used.
    unit : str
        Unit of the value.
    computed_by : str
        ``"aubio"`` when aubio's C code runs on the audio, ``"numpy"`` when aubio's
        definition is evaluated for all frames at once in numpy.
    description : str
        What the number means.
    """

    name: str
    aubio_object: str
    parameters: str
    unit: str
    computed_by: str
    description: str


_SPECTRAL = f"pvoc({FRAME_SIZE}, {HOP_SIZE}), Hann window, {ANALYSIS_SAMPLE_RATE} Hz"
_AT_HALF_RATE = f"{AUBIO_SAMPLE_RATE} Hz"
_ACTIVE = f"over frames above {SILENCE_DB:g} dB"
_TEMPO = (f"'{TEMPO_METHOD}', win {TEMPO_FRAME_SIZE}, hop {TEMPO_HOP_SIZE} at {_AT_HALF_RATE}")
_PITCH = (f"'{PITCH_METHOD}', win {PITCH_FRAME_SIZE}, hop {PITCH_HOP_SIZE} (every other "
          f"window) at {_AT_HALF_RATE}")
_CHROMA = (f"pvoc({CHROMA_FRAME_SIZE}, {CHROMA_FRAME_SIZE}) at {_AT_HALF_RATE}, "
           f"bins {CHROMA_MIN_HZ:g}-{CHROMA_MAX_HZ:g} Hz, Kostka-Payne profiles")


def _summary_specs(
    stem: str, aubio_object: str, parameters: str, unit: str, what: str
) -> tuple[FeatureSpec, ...]:
    return tuple(
        FeatureSpec(f"{stem}_{statistic}", aubio_object, parameters, unit, "numpy",
                    f"{label} of {what} {_ACTIVE}")
        for statistic, label in (("mean", "mean"), ("std", "standard deviation"))
    )


def _mfcc_specs(statistic: str, label: str) -> tuple[FeatureSpec, ...]:
    return tuple(
        FeatureSpec(
            f"mfcc_{index:02d}_{statistic}",
            "mfcc (filterbank.set_mel_coeffs_slaney, dct)",
            f"{_SPECTRAL}; {N_MEL_FILTERS} filters, coefficient {index} of {N_MFCC}",
            "log10 magnitude",
            "numpy",
            f"{label} of MFCC coefficient {index} {_ACTIVE}",
        )
        for index in range(N_MFCC)
    )


FEATURE_TABLE: tuple[FeatureSpec, ...] = (
    FeatureSpec("tempo", "tempo", _TEMPO, "BPM", "numpy",
                "60 / mean inter-beat interval of aubio.tempo's beats (track_beats "
                "reproduces them), halved or doubled "
                "when the spectral flux at and between beats says aubio chose the wrong "
                "metrical level (beat_level_tempo); 0 with no_beat"),
    FeatureSpec("tempo_confidence", "tempo.get_confidence", _TEMPO, "score >= 0", "numpy",
                "aubio's (experimental, unbounded) confidence in its final beat period"),
    FeatureSpec("beat_regularity", "tempo", _TEMPO, "0-1", "numpy",
                "1 - coefficient of variation of aubio's inter-beat intervals, clipped to "
                "[0, 1]; 0 with no_beat"),
    FeatureSpec("onset_rate", "onset", f"'{ONSET_METHOD}', win {ONSET_FRAME_SIZE}, hop "
                f"{ONSET_HOP_SIZE} at {_AT_HALF_RATE}, aubio's default threshold, silence "
                "gate and minimum interval", "onsets/s", "numpy",
                "onsets aubio.onset detects per second of audio (onset_hops reproduces its "
                "detection hop by hop)"),
    FeatureSpec("loudness", "db_spl", f"whole clip, floored at {LEVEL_FLOOR_DB:g} dB", "dB",
                "numpy", "10 log10 of the mean power of the clip"),
    FeatureSpec("loudness_range", "db_spl", f"frames of {FRAME_SIZE}, hop {HOP_SIZE}", "dB",
                "numpy", f"95th minus 5th percentile of frame levels {_ACTIVE}"),
    FeatureSpec("zero_crossing_rate", "zero_crossing_rate", f"frames of {FRAME_SIZE}, hop "
                f"{HOP_SIZE}", "crossings/sample", "numpy",
                f"mean of aubio's per-frame zero-crossing rate {_ACTIVE}"),
    *_summary_specs("spectral_centroid", "specdesc('centroid')", _SPECTRAL, "Hz",
                    "the magnitude-weighted mean frequency"),
    *_summary_specs("spectral_spread", "specdesc('spread')", _SPECTRAL, "Hz",
                    "the magnitude-weighted standard deviation of frequency (square root of "
                    "aubio's variance in bins^2)"),
    *_summary_specs("spectral_rolloff", "specdesc('rolloff')", _SPECTRAL, "Hz",
                    f"the frequency below which {ROLLOFF_FRACTION:.0%} of the energy lies"),
    *_summary_specs("spectral_flatness", "pvoc (aubio has no flatness descriptor)", _SPECTRAL,
                    "0-1", "the geometric over the arithmetic mean of the power spectrum"),
    *_summary_specs("spectral_flux", "specdesc('specflux')", _SPECTRAL, "magnitude",
                    "the summed magnitude increases since the previous frame"),
    *_mfcc_specs("mean", "mean"),
    *_mfcc_specs("std", "standard deviation"),
    FeatureSpec("pitch_confidence", "pitch.get_confidence", _PITCH, "0-1", "aubio",
                "mean YIN confidence (1 - aperiodicity) over the analysed windows above "
                f"{SILENCE_DB:g} dB"),
    FeatureSpec("voiced_fraction", "pitch.get_confidence", _PITCH, "0-1", "aubio",
                f"share of the analysed windows above {SILENCE_DB:g} dB with confidence >= "
                f"{VOICED_CONFIDENCE:g}"),
    FeatureSpec("key", "pvoc (chroma)", _CHROMA, "pitch class 0-11", "numpy",
                "tonic of the key profile best correlated with the clip's chroma; -1 with "
                "no_key"),
    FeatureSpec("mode", "pvoc (chroma)", _CHROMA, "1 major, 0 minor", "numpy",
                "mode of that key profile; -1 with no_key"),
    FeatureSpec("key_strength", "pvoc (chroma)", _CHROMA, "correlation -1-1", "numpy",
                "Pearson correlation of the chroma with that key profile; 0 with no_key"),
)

AUBIO_FEATURE_COLUMNS: tuple[str, ...] = tuple(spec.name for spec in FEATURE_TABLE)

# Continuous features that separate styles, one or two per aspect (rhythm, level, timbre,
# pitch); key and mode are categorical and the many MFCC/std columns would swamp a full-
# covariance mixture fitted on ~1000 tracks.
AUBIO_CLUSTER_FEATURES: tuple[str, ...] = (
    "tempo",
    "beat_regularity",
    "onset_rate",
    "loudness",
    "loudness_range",
    "zero_crossing_rate",
    "spectral_centroid_mean",
    "spectral_flatness_mean",
    "spectral_flux_mean",
    "mfcc_01_mean",
    "mfcc_02_mean",
    "pitch_confidence",
    "voiced_fraction",
)


#: Why a clip stays out of the Aubio mixture fit. Its tempo 0 (and, when silent, its zero
#: timbre summaries) is a placeholder, not a measurement: a few such rows sit far from every
#: real song and would take a mixture component of their own.
UNFIT_FOR_CLUSTERING = (f"{FLAG_NO_BEAT}: no tempo could be measured (tempo 0 is a placeholder); "
                        "left out of the Aubio mixture fit")


def unfit_for_clustering(tempo: Mapping[str, float]) -> dict[str, str]:
    """The clips whose features hold placeholders a mixture must not fit, with the reason.

    ``tempo`` is 0 exactly when the clip carries the ``no_beat`` flag (which every silent
    clip does too), so the stored values alone decide, for cached rows as for new ones.

    Parameters
    ----------
    tempo : mapping of str to float
        Extracted tempo per track (or file) id.

    Returns
    -------
    dict of str to str
        Id to reason, for the clips to leave out.
    """
    return {track: UNFIT_FOR_CLUSTERING for track, value in tempo.items() if value == 0.0}


@dataclass(frozen=True)
class AubioFeatures:
    """Features of one clip.

    Attributes
    ----------
    values : dict of str to float
        One finite value per name in ``AUBIO_FEATURE_COLUMNS``, in that order.
    flags : tuple of str
        Conditions that make some values neutral placeholders (keys of ``FLAG_MEANINGS``),
        in the order of ``FLAG_MEANINGS``.
    """

    values: dict[str, float]
    flags: tuple[str, ...]


def key_name(key: int) -> str:
    """Pitch-class name with sharps (``0 -> "C"``, ``1 -> "C#"``), ``"none"`` for -1."""
    if key == NO_KEY:
        return "none"
    if key not in range(12):
        raise ValueError(f"key must be a pitch class 0-11 or -1 (none), got {key!r}")
    return PITCH_CLASSES[int(key)]


def mode_name(mode: int) -> str:
    """``1 -> "major"``, ``0 -> "minor"``, ``-1 -> "none"``."""
    names = {1: "major", 0: "minor", NO_KEY: "none"}
    if mode not in names:
        raise ValueError(f"mode must be 1 (major), 0 (minor) or -1 (none), got {mode!r}")
    return names[int(mode)]


def extract_file(path: str | Path, *, max_seconds: float = DEFAULT_MAX_SECONDS) -> AubioFeatures:
    """Decode the start of an audio file and extract its features.

    Parameters
    ----------
    path : str or Path
        MP3, WAV, FLAC or OGG file at 8-48 kHz, any channel count.
    max_seconds : float, keyword-only
        Only the first ``max_seconds`` are analysed (flag ``"capped"`` when the file is longer).

    Returns
    -------
    AubioFeatures

    Raises
    ------
    songmix.audio.decode.AudioDecodeError
        When the file cannot be decoded (its ``reason`` says why).
    """
    decoded = decode_file(path, sample_rate=ANALYSIS_SAMPLE_RATE, max_seconds=max_seconds)
    features = extract_features(decoded.samples, decoded.sample_rate)
    if not decoded.capped:
        return features
    return AubioFeatures(features.values, _ordered_flags({*features.flags, FLAG_CAPPED}))


def extract_features(samples: np.ndarray, sample_rate: int) -> AubioFeatures:
    """Extract every feature of ``FEATURE_TABLE`` from mono samples.

    Parameters
    ----------
    samples : array_like of shape (n_samples,)
        Mono audio, finite values (nominally in [-1, 1]); may be empty or silent.
    sample_rate : int
        Rate of ``samples`` in Hz, 8000-48000; resampled to 22050 Hz first.

    Returns
    -------
    AubioFeatures
        Finite values for every column, with flags for what could not be measured.
    """
    samples = resample(_checked_mono(samples, sample_rate), sample_rate, ANALYSIS_SAMPLE_RATE)
    # Zero padding up to the longest window gives every analysis at least one frame (and
    # costs no copy of a clip that is long enough).
    padded = (samples if len(samples) >= LONGEST_WINDOW
              else np.pad(samples, (0, LONGEST_WINDOW - len(samples))))
    frames = sliding_window_view(padded, FRAME_SIZE)[::HOP_SIZE]
    frame_levels = _frame_levels_db(padded, len(frames))
    active = frame_levels > SILENCE_DB
    magnitudes = _magnitude_spectrogram(frames)
    flux = spectral_flux(magnitudes)
    half_rate = _half_rate(padded)

    tempo_values, tempo_flags = _tempo_features(half_rate, onset_strength=flux)
    key_values, key_flags = _key_features(half_rate)
    values = {
        **tempo_values,
        "onset_rate": len(onset_hops(half_rate)) / (len(padded) / ANALYSIS_SAMPLE_RATE),
        **_level_features(samples, frame_levels, active),
        "zero_crossing_rate": _masked_mean(_zero_crossing_rates(padded, len(frames)), active),
        **_spectral_features(magnitudes, flux, active),
        **_mfcc_features(magnitudes, active),
        **_pitch_features(half_rate),
        **key_values,
    }
    flags = tempo_flags | key_flags
    if not active.any():
        flags.add(FLAG_SILENT)
    if len(samples) < SHORT_SECONDS * ANALYSIS_SAMPLE_RATE:
        flags.add(FLAG_SHORT)
    return AubioFeatures(_ordered_finite(values), _ordered_flags(flags))


def _checked_mono(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(
            f"samples must be mono with shape (n_samples,), got shape {samples.shape}; "
            "mix channels first (songmix.audio.decode.load_mono does)"
        )
    if not (isinstance(sample_rate, (int, np.integer))
            and MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE):
        raise ValueError(
            f"sample_rate must be an integer number of Hz between {MIN_SAMPLE_RATE} and "
            f"{MAX_SAMPLE_RATE}, got {sample_rate!r}"
        )
    if not np.isfinite(samples).all():
        raise ValueError("samples contain NaN or infinity; decode the file again or drop it")
    return samples


# --- rhythm: aubio.tempo and aubio.onset at 11025 Hz -------------------------------------


@cache
def _half_band_filter() -> np.ndarray:
    return firwin(HALF_BAND_TAPS, 0.5).astype(np.float32)


def _half_rate(samples: np.ndarray) -> np.ndarray:
    """Low-pass and keep every other sample: 22050 Hz to AUBIO_SAMPLE_RATE.

    The output of ``resample_poly(samples, 1, 2, window=_half_band_filter())``, computed only
    from the filter's nonzero taps: in a half-band filter every other tap but the centre is
    zero (to ~1e-17 in firwin's design), so each output sample is the centre tap times an
    even sample plus, for each odd distance d, one tap times the two odd samples d away.
    Three times faster than resample_poly, which also multiplies by the zero taps.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,), float32

    Returns
    -------
    ndarray of shape (ceil(n_samples / 2),), float32
    """
    taps = _half_band_filter()
    centre = len(taps) // 2
    n_out = (len(samples) + 1) // 2
    reach = (centre + 1) // 2  # odd samples needed on each side of an output
    odd = np.pad(samples[1::2], (reach, n_out - len(samples) // 2 + reach))
    output = taps[centre] * samples[0::2]
    for distance in range(1, centre + 1, 2):
        # samples 2m + d and 2m - d are odd samples m + (d - 1) / 2 and m - (d + 1) / 2
        after = odd[reach + (distance - 1) // 2:][:n_out]
        before = odd[reach - (distance + 1) // 2:][:n_out]
        output += taps[centre - distance] * (after + before)
    return output


def _tempo_features(
    half_rate: np.ndarray, *, onset_strength: np.ndarray
) -> tuple[dict[str, float], set[str]]:
    track = track_beats(half_rate)
    tempo = (beat_level_tempo(track.beat_seconds, onset_strength, period_s=track.period_s,
                              frame_rate=ANALYSIS_SAMPLE_RATE / HOP_SIZE)
             if len(track.beat_seconds) >= MIN_BEATS else 0.0)
    if tempo == 0.0:
        return {"tempo": 0.0, "tempo_confidence": 0.0, "beat_regularity": 0.0}, {FLAG_NO_BEAT}
    intervals = np.diff(track.beat_seconds)
    return {
        "tempo": tempo,
        "tempo_confidence": track.confidence,
        "beat_regularity": float(np.clip(1.0 - intervals.std() / intervals.mean(), 0.0, 1.0)),
    }, set()


@dataclass(frozen=True)
class BeatTrack:
    """What ``aubio.tempo`` reports after a whole clip.

    Attributes
    ----------
    beat_seconds : ndarray of shape (n_beats,)
        Times of the beats it reports (``get_last_s()`` after each hop that returns one).
    period_s : float
        Final beat period in seconds (``get_period_s()``), 0 when none was found.
    confidence : float
        ``get_confidence()``: the context-dependent model's peak over its summed output.
    """

    beat_seconds: np.ndarray
    period_s: float
    confidence: float


@dataclass(frozen=True)
class _TrackerState:
    """aubio_beattracking_t's memory between two steps, in detection-function frames."""

    last_beat: float = 0.0
    counter: int = 0
    flag_step: int = 0
    previous_period: float = 0.0  # rp1, rp2: the Rayleigh model's periods of the last steps
    before_previous_period: float = 0.0
    context_period: float = 0.0  # gp: 0 until the context-dependent model takes over
    beat_period: float = 0.0  # bp
    time_signature: int = 0
    context_weights: np.ndarray | None = None  # gwv
    phase_weights: np.ndarray | None = None  # phwv
    comb_output: np.ndarray | None = None  # acfout after the step


def track_beats(half_rate: np.ndarray) -> BeatTrack:
    """``aubio.tempo(TEMPO_METHOD, ...)`` over a whole clip, its per-hop work done at once.

    aubio's tempo object computes a detection function hop by hop (phase vocoder with
    win == hop, specdesc "specflux", the onset peak picker's thresholded output) and every
    ``step`` hops runs Davies' beat tracker (aubio 0.4.9 src/tempo/beattracking.c) on the
    last ``window`` values. Here the detection function is computed for all hops at once and
    the tracker -- a few vector operations per 1.5 s step -- follows aubio's code line by
    line, including its float32 phase weights (which underflow to 0 far from the expected
    beat and so decide some phases). The tests check beats, period and confidence against
    aubio.tempo.

    Parameters
    ----------
    half_rate : ndarray of shape (n_samples,), at AUBIO_SAMPLE_RATE

    Returns
    -------
    BeatTrack
    """
    threshold, silence_db = _tempo_settings()
    hops = _hops(half_rate, TEMPO_HOP_SIZE)
    detection = spectral_flux(_magnitude_spectrogram(hops))
    # The tracker reads the last BEAT_WINDOW thresholded values, zeros before the clip.
    history = np.r_[np.zeros(BEAT_WINDOW), _peak_picker_thresholded(detection, threshold)]
    silent = _levels_db(hops) < silence_db
    state = _TrackerState()
    beat_samples = []
    for call_hop in range(BEAT_STEP - 1, len(hops), BEAT_STEP):
        state, beats = _beat_tracking_step(history[call_hop: call_hop + BEAT_WINDOW], state)
        # aubio's hop counter restarts at the call: a beat at b falls in hop call + floor(b),
        # at fraction b - floor(b) of it; a fraction of 0 (or a silent hop) reports nothing.
        for beat in beats:
            hop = call_hop + int(np.floor(beat))
            fraction = beat - np.floor(beat)
            if beat < BEAT_STEP and hop < len(hops) and fraction > 0 and not silent[hop]:
                beat_samples.append(hop * TEMPO_HOP_SIZE
                                    + int(np.floor(fraction * TEMPO_HOP_SIZE + 0.5)))
    return BeatTrack(beat_seconds=np.array(beat_samples, dtype=float) / AUBIO_SAMPLE_RATE,
                     period_s=state.beat_period * TEMPO_HOP_SIZE / AUBIO_SAMPLE_RATE,
                     confidence=_tracker_confidence(state))


@cache
def _tempo_settings() -> tuple[float, float]:
    """aubio.tempo's own peak-picker threshold and beat silence gate (dB), read from aubio."""
    tracker = aubio.tempo(TEMPO_METHOD, TEMPO_FRAME_SIZE, TEMPO_HOP_SIZE, AUBIO_SAMPLE_RATE)
    return tracker.get_threshold(), tracker.get_silence()


@cache
def _tracker_weights() -> tuple[np.ndarray, np.ndarray]:
    """aubio's detection-function weighting (dfwv) and Rayleigh period weighting (rwv)."""
    rayleigh = _rayleigh_period()
    positions = np.arange(1, BEAT_WINDOW + 1)
    detection_weights = np.exp(np.log(2.0) / rayleigh * (positions - BEAT_WINDOW - 2))
    lags = np.arange(1, BEAT_LAGS + 1)
    return detection_weights, lags / rayleigh**2 * np.exp(-(lags**2) / (2.0 * rayleigh**2))


def _rayleigh_period() -> float:
    """The Rayleigh weighting's preferred period (120 BPM), in detection-function frames."""
    return 60.0 * AUBIO_SAMPLE_RATE / 120.0 / TEMPO_HOP_SIZE


@cache
def _comb_filterbank(n_elements: int, *, normalised: bool) -> np.ndarray:
    """aubio's shift-invariant comb filterbank as a matrix: ``output = M @ acf``.

    Output lag i (1 to BEAT_LAGS - 2) sums acf[i a + b - 1] for a = 1..n_elements,
    b = 1..2a-1, each divided by 2a - 1 when ``normalised``. Shape (BEAT_LAGS, BEAT_WINDOW).
    """
    matrix = np.zeros((BEAT_LAGS, BEAT_WINDOW))
    for lag in range(1, BEAT_LAGS - 1):
        for element in range(1, n_elements + 1):
            weight = 1.0 / (2 * element - 1) if normalised else 1.0
            matrix[lag, lag * element + np.arange(2 * element - 1)] += weight
    return matrix


def _beat_tracking_step(
    window: np.ndarray, state: _TrackerState
) -> tuple[_TrackerState, list[float]]:
    """One call of aubio_beattracking_do: new state and the beats predicted for the next step.

    Parameters
    ----------
    window : ndarray of shape (BEAT_WINDOW,)
        The last thresholded detection-function values, oldest first.
    state : _TrackerState

    Returns
    -------
    state : _TrackerState
    beats : list of float
        Beat positions in frames from the start of the next step.
    """
    detection_weights, rayleigh_weights = _tracker_weights()
    reversed_window = (window * detection_weights)[::-1]
    # aubio_autocorr: sum of window[j - lag] window[j] over the overlap, over its length
    # (by FFT, zero-padded against wrap-around: several times faster than np.correlate).
    spectrum = scipy.fft.rfft(window, 2 * BEAT_WINDOW, workers=1)
    overlap = np.arange(BEAT_WINDOW, 0, -1)
    acf = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, 2 * BEAT_WINDOW,
                          workers=1)[:BEAT_WINDOW] / overlap
    comb = (_comb_filterbank(state.time_signature or 4, normalised=True) @ acf
            * rayleigh_weights)
    peak = _last_argmax(comb)
    general_period = (_quadratic_peak_position(comb, peak) if 0 < peak < BEAT_LAGS - 1
                      else float(int(_rayleigh_period())))
    state = _check_state(state, acf, general_period=general_period, comb=comb)
    period = state.beat_period
    if period == 0:
        return state, []
    # Phase: the detection function summed at every period from each candidate offset.
    offsets = np.floor(period * np.arange(int(BEAT_WINDOW // period)) + 0.5).astype(int)
    n_candidates = int(np.ceil(period))
    # aubio reads up to one value past the window here; that value is taken as 0.
    padded = np.append(reversed_window, 0.0)
    phase_scores = np.zeros(BEAT_WINDOW)
    phase_scores[:n_candidates] = padded[np.arange(n_candidates)[:, None] + offsets].sum(axis=1)
    phase_scores[: 2 * BEAT_LAGS] *= state.phase_weights
    peak = _last_argmax(phase_scores)
    phase = (BEAT_STEP - state.last_beat if peak >= BEAT_WINDOW - 1
             else _quadratic_peak_position(phase_scores, peak)) + 1.0  # one frame of delay
    beat = period - phase
    if BEAT_STEP - state.last_beat - phase < -BEAT_BACK_OFF * period:
        beat += period  # the next beat would come too early: skip it
    while beat + period < 0:
        beat += period
    beats = [beat] if beat >= 0 else []
    while beat + period <= BEAT_STEP:
        beat += period
        beats.append(beat)
    return replace(state, last_beat=beat), beats


def _check_state(state: _TrackerState, acf: np.ndarray, *, general_period: float,
                 comb: np.ndarray) -> _TrackerState:
    """aubio_beattracking_checkstate: switch between the general and context-dependent model.

    ``general_period`` and ``comb`` are this step's Rayleigh-weighted period and comb output.
    """
    context_period = 0.0
    if state.context_period:
        comb = (_comb_filterbank(state.time_signature, normalised=False) @ acf
                * state.context_weights)
        context_period = _quadratic_peak_position(comb, _last_argmax(comb))
    counter, flag_step, consistent = state.counter, state.flag_step, False
    if counter == 0:
        flag_step = int(abs(context_period - general_period) > 2.0 * BEAT_PERIOD_SPREAD)
        counter = 3 if flag_step else 0
    if counter == 1 and flag_step == 1:
        consistent = (abs(2.0 * general_period - state.previous_period
                          - state.before_previous_period) < BEAT_PERIOD_SPREAD)
        counter = 0 if consistent else 2
    elif counter > 0:
        counter -= 1
    time_signature, context_weights = state.time_signature, state.context_weights
    phase_weights = _flat_phase_weights()
    if consistent:  # first run of a new hypothesis
        context_period = period = general_period
        time_signature = _time_signature(acf, int(context_period))
        lags = np.arange(1, BEAT_LAGS + 1)
        context_weights = np.exp(-0.5 * (lags - context_period) ** 2
                                 / BEAT_PERIOD_SPREAD**2).astype(np.float32)
    elif time_signature:
        period = context_period
        if BEAT_STEP > state.last_beat:
            offsets = 1.0 + np.arange(2 * BEAT_LAGS) - BEAT_STEP + state.last_beat
            # float32 like aubio: far from the expected beat the weights underflow to 0
            phase_weights = np.exp(-0.5 * offsets**2 / (period / 8.0)).astype(np.float32)
    else:
        period = general_period
    while 0 < period < BEAT_MIN_PERIOD:
        period *= 2.0
    return replace(state, counter=counter, flag_step=flag_step, context_period=context_period,
                   beat_period=period, previous_period=general_period,
                   before_previous_period=state.previous_period, time_signature=time_signature,
                   context_weights=context_weights, phase_weights=phase_weights,
                   comb_output=comb)


@cache
def _flat_phase_weights() -> np.ndarray:
    """aubio's phwv outside the context-dependent model: all ones. Shape (2 BEAT_LAGS,)."""
    weights = np.ones(2 * BEAT_LAGS, dtype=np.float32)
    weights.flags.writeable = False
    return weights


def _time_signature(acf: np.ndarray, period: int) -> int:
    """aubio's fvec_gettimesig: 3 or 4 beats, from the acf around 3 and 4 periods."""
    around = np.arange(-2, 2)
    if len(acf) > 6 * period + 2:
        three, four = acf[3 * period + around].sum(), acf[4 * period + around].sum()
    else:
        three = (acf[3 * period + around] + acf[6 * period + around]).sum()
        four = (acf[4 * period + around] + acf[2 * period + around]).sum()
    return 3 if three > four else 4


def _tracker_confidence(state: _TrackerState) -> float:
    """aubio_beattracking_get_confidence: the context model's peak over its summed output."""
    if not state.context_period or state.comb_output is None:
        return 0.0
    total = state.comb_output.sum()
    if total == 0:
        return 0.0
    return float(_quadratic_peak_magnitude(state.comb_output, state.context_period) / total)


def _last_argmax(values: np.ndarray) -> int:
    """aubio's fvec_max_elem: index of the maximum, the last one on ties."""
    return len(values) - 1 - int(np.argmax(values[::-1]))


def _quadratic_peak_position(values: np.ndarray, index: int) -> float:
    """aubio's fvec_quadratic_peak_pos: the vertex of the parabola through index +-1."""
    if index in (0, len(values) - 1):
        return float(index)
    before, at, after = values[index - 1], values[index], values[index + 1]
    return float(index + 0.5 * (before - after) / (before - 2.0 * at + after))


def _quadratic_peak_magnitude(values: np.ndarray, position: float) -> float:
    """aubio's fvec_quadratic_peak_mag: the parabola's value at a fractional position."""
    index = int(position - 0.5) + 1
    if position >= len(values) or position < 0:
        return 0.0
    if index == position:
        return float(values[index])
    before, at, after = values[index - 1], values[index], values[index + 1]
    return float(at - 0.25 * (before - after) * (position - index))


def beat_level_tempo(
    beat_seconds: np.ndarray, onset_strength: np.ndarray, *, period_s: float, frame_rate: float
) -> float:
    """Tempo in BPM from aubio's beats, checked against the onset strength.

    aubio's tracker may change its mind within a clip (e.g. from 166 to 83 BPM), so only the
    beat pairs whose interval is within 20 % of its final period ``period_s`` count (all pairs
    within 20 % of the median interval when none is). The tempo is 60 over their mean interval
    (aubio's own period is quantised to its hop). Onset strength is read as its maximum within
    +-``BEAT_TOLERANCE_FRAMES`` of a time and compared with the median of that same quantity
    over all frames (the background):

    * beats no stronger than ``MIN_BEAT_SALIENCE`` times the background: aubio kept
      predicting beats through audio that has none (a drone, noise); returns 0;
    * every other beat almost silent (weaker median under ``HALVE_BELOW`` of the stronger):
      aubio also tracked the off-beats, the tempo is half;
    * midpoints between beats at least ``DOUBLE_ABOVE`` as strong as the beats and over
      ``DOUBLE_SALIENCE`` times the background: aubio tracked every other beat, the tempo is
      double. aubio's tracker folds tempi into roughly 78-165 BPM, so this is what recovers
      fast songs.

    Parameters
    ----------
    beat_seconds : ndarray of shape (n_beats,), n_beats >= 2
        Beat times in seconds, increasing.
    onset_strength : ndarray of shape (n_frames,)
        Onset detection function (spectral flux) at ``frame_rate`` frames per second.
    period_s : float
        aubio's final beat period in seconds (``tempo.get_period_s()``).
    frame_rate : float
        Frames per second of ``onset_strength``.

    Returns
    -------
    float
        Tempo in beats per minute, or 0.0 when the beats do not stand out.
    """
    intervals = np.diff(beat_seconds)
    if len(intervals) == 0 or np.any(intervals <= 0):
        raise ValueError("beat_seconds must hold at least two strictly increasing times")
    consistent = np.abs(intervals - period_s) <= 0.2 * period_s
    if not consistent.any():
        consistent = np.abs(intervals - np.median(intervals)) <= 0.2 * np.median(intervals)
    starts = beat_seconds[:-1][consistent]

    def strength(seconds: np.ndarray) -> np.ndarray:
        return _strength_at(seconds, onset_strength, frame_rate)

    background = np.median(strength(np.arange(len(onset_strength)) / frame_rate))
    on_beats = strength(starts)
    on_beat = np.median(on_beats)
    midpoint = np.median(strength(starts + intervals[consistent] / 2))
    period = intervals[consistent].mean()
    if _safe_ratio(on_beat, background) < MIN_BEAT_SALIENCE:
        return 0.0
    if len(starts) > 1 and _alternation(on_beats) < HALVE_BELOW:
        period *= 2.0
    elif (_safe_ratio(midpoint, on_beat) >= DOUBLE_ABOVE
          and _safe_ratio(midpoint, background) >= DOUBLE_SALIENCE):
        period /= 2.0
    return float(60.0 / period)


def _alternation(on_beats: np.ndarray) -> float:
    """Median strength of the weaker of even/odd beats over that of the stronger, 0-1."""
    even, odd = np.median(on_beats[0::2]), np.median(on_beats[1::2])
    return float(_safe_ratio(min(even, odd), max(even, odd)))


def _strength_at(seconds: np.ndarray, onset_strength: np.ndarray, frame_rate: float) -> np.ndarray:
    """Largest onset strength within +-BEAT_TOLERANCE_FRAMES of each time. Shape (n_times,)."""
    centres = np.clip(np.round(seconds * frame_rate).astype(int), 0, len(onset_strength) - 1)
    padded = np.pad(onset_strength, BEAT_TOLERANCE_FRAMES)
    windows = sliding_window_view(padded, 2 * BEAT_TOLERANCE_FRAMES + 1)
    return windows[centres].max(axis=1)


@cache
def _onset_settings() -> tuple[float, float, int, int, float]:
    """aubio.onset's own defaults for ONSET_METHOD, read from aubio.

    Returns
    -------
    threshold, compression, min_interval, delay, silence_db
        Peak-picker threshold, log-compression lambda, minimum inter-onset interval and
        start-of-clip delay (both in samples), silence gate (dB).
    """
    detector = aubio.onset(ONSET_METHOD, ONSET_FRAME_SIZE, ONSET_HOP_SIZE, AUBIO_SAMPLE_RATE)
    return (detector.get_threshold(), detector.get_compression(), detector.get_minioi(),
            detector.get_delay(), detector.get_silence())


@cache
def _peak_picker_smoothing() -> np.ndarray:
    """aubio's peak-picker filtfilt over its 7-value window as a matrix. Shape (7, 7).

    ``smoothed = window @ M``: aubio runs its biquad forwards then backwards over the window
    from a zero state on every hop, which is linear in the window.
    """
    size = PEAK_PICKER_OLDER + PEAK_PICKER_NEWER + 1
    forwards = lfilter(PEAK_PICKER_B, PEAK_PICKER_A, np.eye(size), axis=0)
    return lfilter(PEAK_PICKER_B, PEAK_PICKER_A, forwards[::-1], axis=0)[::-1].T


def _peak_picker_thresholded(detection: np.ndarray, threshold: float) -> np.ndarray:
    """aubio peak picker's thresholded input for every hop. Shape (n_hops,).

    At each hop aubio smooths the last 7 detection values (zeros before the clip) and keeps
    the smoothed value one hop back, minus their median, minus ``threshold`` times their mean.
    """
    size = PEAK_PICKER_OLDER + PEAK_PICKER_NEWER + 1
    windows = sliding_window_view(np.pad(detection.astype(np.float64), (size - 1, 0)), size)
    smoothed = windows @ _peak_picker_smoothing()
    return (smoothed[:, PEAK_PICKER_OLDER] - np.median(smoothed, axis=1)
            - threshold * smoothed.mean(axis=1))


def high_frequency_content(magnitudes: np.ndarray, *, compression: float) -> np.ndarray:
    """aubio specdesc "hfc" of log-compressed magnitudes: sum of (bin + 1) log(c |X| + 1).

    Parameters
    ----------
    magnitudes : ndarray of shape (n_frames, n_bins)
    compression : float, keyword-only
        aubio.onset's lambda (``cvec_logmag``).

    Returns
    -------
    ndarray of shape (n_frames,)
    """
    weights = np.arange(1, magnitudes.shape[1] + 1, dtype=np.float32)
    return np.log(np.float32(compression) * magnitudes + np.float32(1.0)) @ weights


def onset_hops(half_rate: np.ndarray) -> np.ndarray:
    """The hops at which ``aubio.onset(ONSET_METHOD, ...)`` reports an onset, for all hops at once.

    Follows aubio 0.4.9's ``aubio_onset_do`` step by step: phase vocoder with win == hop (each
    frame is one Hann-windowed hop), log compression, specdesc "hfc", the peak picker (biquad
    filtfilt over 7 values, then value - median - threshold * mean, a local maximum above 0
    placed by quadratic interpolation), the -70 dB silence gate, the minimum inter-onset
    interval and the onset aubio reports at the start of a clip that does not begin silent.
    The tests check it against aubio.onset on the same audio.

    Parameters
    ----------
    half_rate : ndarray of shape (n_samples,), at AUBIO_SAMPLE_RATE

    Returns
    -------
    ndarray of shape (n_onsets,), int
        Increasing hop indices.
    """
    threshold, compression, min_interval, delay, silence_db = _onset_settings()
    hops = _hops(half_rate, ONSET_HOP_SIZE)
    if len(hops) == 0:
        return np.zeros(0, dtype=int)
    detection = high_frequency_content(_magnitude_spectrogram(hops), compression=compression)
    thresholded = _peak_picker_thresholded(detection, threshold)
    # aubio decides at hop i whether hop i - 1 was a peak of the thresholded function.
    before = np.r_[0.0, 0.0, thresholded[:-2]]
    peak = np.r_[0.0, thresholded[:-1]]
    is_peak = (peak > before) & (peak > thresholded) & (peak > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = 1.0 + 0.5 * (before - thresholded) / (before - 2.0 * peak + thresholded)
    silent = _levels_db(hops) < silence_db
    start_hops = np.arange(min(delay // ONSET_HOP_SIZE + 1, len(hops)))
    # The minimum interval chains each decision to the last accepted onset: a short loop over
    # the candidate hops (peaks and the first few hops), in aubio's order.
    onsets, last = [], 0
    for hop in np.union1d(np.flatnonzero(is_peak & ~silent), start_hops):
        start = int(hop) * ONSET_HOP_SIZE
        if is_peak[hop] and not silent[hop]:
            position = start + int(np.floor(offset[hop] * ONSET_HOP_SIZE + 0.5))
            if last + min_interval < position and not (last > 0 and delay > position):
                last = max(delay, position)
                onsets.append(hop)
        elif not is_peak[hop] and not silent[hop] and (start == 0 or last + min_interval < start):
            last = start + delay
            onsets.append(hop)
    return np.array(onsets, dtype=int)


def _hops(samples: np.ndarray, hop_size: int) -> np.ndarray:
    """Consecutive non-overlapping blocks of shape (n_hops, hop_size), C-contiguous rows."""
    n_hops = len(samples) // hop_size
    return np.ascontiguousarray(samples[: n_hops * hop_size]).reshape(n_hops, hop_size)


# --- level ---------------------------------------------------------------------------------


def _levels_db(frames: np.ndarray) -> np.ndarray:
    """aubio.db_spl of each frame: 10 log10(mean square), floored. Shape (n_frames,)."""
    mean_square = np.einsum("ij,ij->i", frames, frames) / np.float32(frames.shape[1])
    return _power_db(mean_square)


def _power_db(power: np.ndarray | float) -> np.ndarray:
    floor = 10.0 ** (LEVEL_FLOOR_DB / 10.0)
    return 10.0 * np.log10(np.maximum(power, floor))


def _level_features(samples: np.ndarray, frame_levels: np.ndarray,
                    active: np.ndarray) -> dict[str, float]:
    mean_square = float(np.dot(samples, samples)) / len(samples) if len(samples) else 0.0
    active_levels = frame_levels[active]
    spread = (np.percentile(active_levels, 95) - np.percentile(active_levels, 5)
              if len(active_levels) else 0.0)
    return {"loudness": float(_power_db(mean_square)), "loudness_range": float(spread)}


def _frame_levels_db(samples: np.ndarray, n_frames: int) -> np.ndarray:
    """aubio.db_spl of each FRAME_SIZE frame every HOP_SIZE samples. Shape (n_frames,).

    ``_levels_db`` of the frames, from each hop's sum of squares (every sample once, not
    once per frame that holds it).

    Parameters
    ----------
    samples : ndarray of shape (n_samples,), n_samples >= (n_frames - 1) * HOP_SIZE + FRAME_SIZE
    n_frames : int
    """
    hops = _hops(samples, HOP_SIZE)[: n_frames - 1 + FRAME_SIZE // HOP_SIZE]
    squares = _sum_per_frame(np.einsum("ij,ij->i", hops, hops), n_frames)
    return _power_db(squares / FRAME_SIZE)


def _zero_crossing_rates(samples: np.ndarray, n_frames: int) -> np.ndarray:
    """aubio.zero_crossing_rate of each FRAME_SIZE frame every HOP_SIZE samples.

    aubio counts sign changes (negative to >= 0 or back) between neighbouring samples of a
    frame, over the frame length. Counting them once per hop and adding the hops a frame
    spans avoids touching every sample twice.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,), n_samples >= (n_frames - 1) * HOP_SIZE + FRAME_SIZE
    n_frames : int

    Returns
    -------
    ndarray of shape (n_frames,)
    """
    n_hops = n_frames - 1 + FRAME_SIZE // HOP_SIZE
    negative = samples[: n_hops * HOP_SIZE] < 0
    # changes[i] is True when sample i differs in sign from sample i - 1 (never for i = 0).
    changes = np.empty_like(negative)
    changes[0] = False
    np.not_equal(negative[1:], negative[:-1], out=changes[1:])
    per_hop = np.count_nonzero(changes.reshape(n_hops, HOP_SIZE), axis=1)
    # A frame's first sample has no neighbour inside the frame: its change does not count.
    crossings = _sum_per_frame(per_hop, n_frames) - changes[np.arange(n_frames) * HOP_SIZE]
    return crossings / FRAME_SIZE


def _sum_per_frame(per_hop: np.ndarray, n_frames: int) -> np.ndarray:
    """Sums of a per-hop quantity over the FRAME_SIZE // HOP_SIZE hops each frame spans.

    Parameters
    ----------
    per_hop : ndarray of shape (n_frames - 1 + FRAME_SIZE // HOP_SIZE,)
    n_frames : int

    Returns
    -------
    ndarray of shape (n_frames,), float64
    """
    before_hop = np.r_[0.0, np.cumsum(per_hop, dtype=np.float64)]
    first = np.arange(n_frames)
    return before_hop[first + FRAME_SIZE // HOP_SIZE] - before_hop[first]


# --- spectrum: aubio.pvoc and specdesc, vectorised ------------------------------------------


@cache
def _hann(size: int) -> np.ndarray:
    """aubio's default pvoc window ("hanningz"): 0.5 (1 - cos(2 pi n / size))."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(size) / size)).astype(np.float32)


def _magnitude_spectrogram(frames: np.ndarray) -> np.ndarray:
    """|FFT| of Hann-windowed frames, as aubio.pvoc's ``norm``. Shape (n_frames, size//2 + 1).

    Computed STFT_CHUNK frames at a time: the windowed frames and their complex spectrum then
    stay in the CPU cache, which makes a 30 s clip's spectrogram over twice as fast as in one
    go (and 5 MB temporaries fewer).
    """
    window = _hann(frames.shape[1])
    magnitudes = np.empty((len(frames), frames.shape[1] // 2 + 1), dtype=np.float32)
    for start in range(0, len(frames), STFT_CHUNK):
        chunk = slice(start, start + STFT_CHUNK)
        np.abs(scipy.fft.rfft(frames[chunk] * window, axis=1, workers=1), out=magnitudes[chunk])
    return magnitudes


def _spectral_features(
    magnitudes: np.ndarray, flux: np.ndarray, active: np.ndarray
) -> dict[str, float]:
    bin_hz = ANALYSIS_SAMPLE_RATE / FRAME_SIZE
    centroid, spread = spectral_centroid_spread_bins(magnitudes)
    descriptors = {
        "spectral_centroid": centroid * bin_hz,
        "spectral_spread": np.sqrt(spread) * bin_hz,
        "spectral_rolloff": spectral_rolloff_bins(magnitudes) * bin_hz,
        "spectral_flatness": spectral_flatness(magnitudes),
        "spectral_flux": flux,
    }
    values = {}
    for stem, per_frame in descriptors.items():
        values[f"{stem}_mean"] = _masked_mean(per_frame, active)
        values[f"{stem}_std"] = _masked_std(per_frame, active)
    return values


def spectral_centroid_spread_bins(magnitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """aubio specdesc "centroid" and "spread": mean and variance of the bin index.

    Both weight each bin by its magnitude, as aubio does; empty frames give 0.

    Parameters
    ----------
    magnitudes : ndarray of shape (n_frames, n_bins)

    Returns
    -------
    centroid : ndarray of shape (n_frames,)
        In bins.
    spread : ndarray of shape (n_frames,)
        In bins^2.
    """
    bins = np.arange(magnitudes.shape[1], dtype=np.float32)
    # One matrix product gives all three moments (sum, first, second) of every frame.
    moments = (magnitudes @ np.stack([np.ones_like(bins), bins, bins**2], axis=1)).astype(
        np.float64
    )
    centroid = _safe_ratio(moments[:, 1], moments[:, 0])
    second_moment = _safe_ratio(moments[:, 2], moments[:, 0])
    return centroid, np.maximum(second_moment - centroid**2, 0.0)


def spectral_rolloff_bins(magnitudes: np.ndarray) -> np.ndarray:
    """aubio specdesc "rolloff": bins needed to reach 95 % of the squared magnitude sum.

    Parameters
    ----------
    magnitudes : ndarray of shape (n_frames, n_bins)

    Returns
    -------
    ndarray of shape (n_frames,)
        Count of bins (aubio's value), 0 for empty frames.
    """
    power = np.square(magnitudes, dtype=np.float32)
    n_frames, n_bins = power.shape
    # A running sum over every bin is slow in numpy; running sums over blocks of bins find
    # the block where 95 % is reached, and one running sum inside that block the bin. Blocks
    # of equal size that tile the bins (27 for 513) need no padded copy.
    block_size = max(size for size in range(1, ROLLOFF_MAX_BLOCK + 1) if n_bins % size == 0)
    blocks = power.reshape(n_frames, n_bins // block_size, block_size)
    # einsum sums short rows several times faster than sum(axis=2). Sums in float64: where
    # 95 % falls within float32 rounding of a bin edge, aubio's float32 running sum may stop
    # one bin earlier (1 frame in 4000 on demo previews).
    before_block = np.cumsum(np.einsum("fbk->fb", blocks), axis=1, dtype=np.float64)
    total = before_block[:, -1]
    threshold = ROLLOFF_FRACTION * total
    block = np.argmax(before_block >= threshold[:, None], axis=1)
    frames = np.arange(n_frames)
    start = np.where(block > 0, before_block[frames, block - 1], 0.0)
    within = start[:, None] + np.cumsum(blocks[frames, block], axis=1, dtype=np.float64)
    reached = block * block_size + np.argmax(within >= threshold[:, None], axis=1) + 1
    return np.where(total > 0, reached, 0).astype(np.float64)


def spectral_flatness(magnitudes: np.ndarray) -> np.ndarray:
    """Geometric over arithmetic mean of the power spectrum, 0 for empty frames.

    Parameters
    ----------
    magnitudes : ndarray of shape (n_frames, n_bins)

    Returns
    -------
    ndarray of shape (n_frames,), values in [0, 1]
    """
    # log(power) = 2 log(magnitude). A floor keeps log() finite on exactly-zero bins; far
    # below any audible bin's magnitude.
    logs = np.maximum(magnitudes, np.float32(1e-10))
    mean_log_power = 2.0 * np.log(logs, out=logs).mean(axis=1)
    mean_power = np.einsum("ij,ij->i", magnitudes, magnitudes) / magnitudes.shape[1]
    return np.clip(_safe_ratio(np.exp(mean_log_power), mean_power), 0.0, 1.0)


def spectral_flux(magnitudes: np.ndarray) -> np.ndarray:
    """aubio specdesc "specflux": summed magnitude increases since the previous frame.

    Parameters
    ----------
    magnitudes : ndarray of shape (n_frames, n_bins)
        The first frame is compared with silence, as aubio does.

    Returns
    -------
    ndarray of shape (n_frames,)
    """
    flux = np.zeros(len(magnitudes))
    if len(magnitudes):
        flux[0] = magnitudes[0].sum()  # every bin of the first frame is an increase
        increases = magnitudes[1:] - magnitudes[:-1]
        flux[1:] = np.maximum(increases, 0.0, out=increases).sum(axis=1)
    return flux


# --- MFCC: aubio.mfcc with aubio's own filterbank and DCT ----------------------------------


@cache
def _mel_filters() -> np.ndarray:
    """aubio's Slaney mel filterbank for FRAME_SIZE at 22050 Hz. Shape (n_bins, 40)."""
    filterbank = aubio.filterbank(N_MEL_FILTERS, FRAME_SIZE)
    filterbank.set_mel_coeffs_slaney(ANALYSIS_SAMPLE_RATE)
    return np.array(filterbank.get_coeffs(), dtype=np.float32).T


@cache
def _mel_filters_in_range() -> tuple[np.ndarray, int]:
    """``_mel_filters()`` over the bins any filter covers, and the first such bin."""
    return _nonzero_row_span(_mel_filters())


@cache
def _dct_matrix() -> np.ndarray:
    """aubio.dct(40) as a matrix, first 13 columns: ``coefficients = log_energies @ M``."""
    dct = aubio.dct(N_MEL_FILTERS)
    basis = np.eye(N_MEL_FILTERS, dtype=np.float32)
    # aubio returns its own output buffer on every call: copy each row out of it.
    return np.stack([np.array(dct(row)) for row in basis])[:, :N_MFCC]


def mfcc(magnitudes: np.ndarray) -> np.ndarray:
    """aubio.mfcc of each frame: DCT of log10 mel energies of the magnitude spectrum.

    Parameters
    ----------
    magnitudes : ndarray of shape (n_frames, FRAME_SIZE // 2 + 1)

    Returns
    -------
    ndarray of shape (n_frames, 13)
    """
    filters, first_bin = _mel_filters_in_range()
    energies = magnitudes[:, first_bin: first_bin + len(filters)] @ filters
    # aubio's fvec_log10 floors at its VERY_SMALL_NUMBER (2e-42) before the logarithm.
    return np.log10(np.maximum(energies, 2e-42)) @ _dct_matrix()


def _mfcc_features(magnitudes: np.ndarray, active: np.ndarray) -> dict[str, float]:
    if active.any():
        # Selecting the active rows after the filterbank copies 13 values a frame, not 513.
        coefficients = mfcc(magnitudes)[active]
        means, deviations = coefficients.mean(axis=0), coefficients.std(axis=0)
    else:
        means = deviations = np.zeros(N_MFCC)
    return {
        **{f"mfcc_{index:02d}_mean": float(value) for index, value in enumerate(means)},
        **{f"mfcc_{index:02d}_std": float(value) for index, value in enumerate(deviations)},
    }


# --- pitch: aubio.pitch yinfast at 11025 Hz ----------------------------------------------


def _pitch_features(half_rate: np.ndarray) -> dict[str, float]:
    # aubio.pitch's hop cannot exceed its window: windows that do not overlap, fed one by
    # one, are each analysed on their own, so feeding every other one skips the rest.
    detector = aubio.pitch(PITCH_METHOD, PITCH_FRAME_SIZE, PITCH_FRAME_SIZE, AUBIO_SAMPLE_RATE)
    windows = _hops(half_rate, PITCH_HOP_SIZE)[:, :PITCH_FRAME_SIZE]
    confidences = np.empty(len(windows))
    for index, window in enumerate(windows):
        detector(window)
        confidences[index] = detector.get_confidence()
    confidences = np.nan_to_num(confidences)  # aubio can report NaN on silence (issue #7)
    active = _levels_db(windows) > SILENCE_DB
    return {
        "pitch_confidence": _masked_mean(confidences, active),
        "voiced_fraction": _masked_mean((confidences >= VOICED_CONFIDENCE).astype(float), active),
    }


# --- key: chroma of the phase-vocoder spectrum against key profiles --------------------------


@cache
def _chroma_map() -> np.ndarray:
    """Bin-to-pitch-class assignment for CHROMA_FRAME_SIZE bins. Shape (n_bins, 12)."""
    frequencies = np.fft.rfftfreq(CHROMA_FRAME_SIZE, 1.0 / AUBIO_SAMPLE_RATE)
    in_range = (frequencies >= CHROMA_MIN_HZ) & (frequencies <= CHROMA_MAX_HZ)
    pitch_class = np.round(12 * np.log2(np.where(in_range, frequencies, 440.0) / 440.0) + 9)
    assignment = np.zeros((len(frequencies), 12), dtype=np.float32)
    assignment[in_range, pitch_class[in_range].astype(int) % 12] = 1.0
    return assignment


@cache
def _chroma_map_in_range() -> tuple[np.ndarray, int]:
    """``_chroma_map()`` over the bins within the chroma limits, and the first such bin."""
    return _nonzero_row_span(_chroma_map())


@cache
def _key_templates() -> np.ndarray:
    """Centred, unit-norm profiles of the 24 keys. Shape (24, 12): major C..B, minor C..B."""
    profiles = np.stack(
        [np.roll(profile, tonic) for profile in (MAJOR_PROFILE, MINOR_PROFILE)
         for tonic in range(12)]
    )
    centred = profiles - profiles.mean(axis=1, keepdims=True)
    return centred / np.linalg.norm(centred, axis=1, keepdims=True)


def chroma(half_rate: np.ndarray) -> np.ndarray:
    """Clip chroma: per-frame normalised pitch-class magnitude, summed over frames.

    Parameters
    ----------
    half_rate : ndarray of shape (n_samples,), n_samples >= CHROMA_FRAME_SIZE, at
        AUBIO_SAMPLE_RATE

    Returns
    -------
    ndarray of shape (12,), index 0 = C; all zeros when no frame is above ``SILENCE_DB``
        or none has energy in range.
    """
    frames = _hops(half_rate, CHROMA_FRAME_SIZE)
    audible = frames[_levels_db(frames) > SILENCE_DB]
    spectrum = scipy.fft.rfft(audible * _hann(CHROMA_FRAME_SIZE), axis=1, workers=1)
    # Only the bins between the chroma limits count: magnitudes of those alone.
    assignment, first_bin = _chroma_map_in_range()
    per_frame = np.abs(spectrum[:, first_bin: first_bin + len(assignment)]) @ assignment
    # Normalising each frame lets quiet passages vote as much as loud ones.
    return _safe_ratio(per_frame, per_frame.sum(axis=1, keepdims=True)).sum(axis=0)


def estimate_key(clip_chroma: np.ndarray) -> tuple[int, int, float]:
    """Key, mode and strength of a chroma vector by correlation with the key profiles.

    Parameters
    ----------
    clip_chroma : ndarray of shape (12,)

    Returns
    -------
    key : int
        Pitch class 0-11, or -1 when the chroma is flat (no energy or no contrast).
    mode : int
        1 major, 0 minor, -1 with no key.
    strength : float
        Pearson correlation with the winning profile, 0 with no key.
    """
    centred = clip_chroma - clip_chroma.mean()
    norm = np.linalg.norm(centred)
    if norm == 0:
        return NO_KEY, NO_KEY, 0.0
    correlations = _key_templates() @ (centred / norm)
    best = int(np.argmax(correlations))
    return best % 12, 1 if best < 12 else 0, float(correlations[best])


def _key_features(half_rate: np.ndarray) -> tuple[dict[str, float], set[str]]:
    key, mode, strength = estimate_key(chroma(half_rate))
    flags = {FLAG_NO_KEY} if key == NO_KEY else set()
    return {"key": float(key), "mode": float(mode), "key_strength": strength}, flags


# --- helpers --------------------------------------------------------------------------------


def _nonzero_row_span(matrix: np.ndarray) -> tuple[np.ndarray, int]:
    """The rows of a bin-by-band matrix from its first to its last nonzero row.

    ``spectrum[:, first: first + len(rows)] @ rows`` equals ``spectrum @ matrix`` and skips
    the bins no band uses.

    Returns
    -------
    rows : ndarray of shape (n_rows_in_span, n_bands)
    first : int
    """
    used = np.flatnonzero(matrix.any(axis=1))
    return matrix[used[0]: used[-1] + 1], int(used[0])


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, 0.0)


def _masked_mean(per_frame: np.ndarray, mask: np.ndarray) -> float:
    return float(per_frame[mask].mean()) if mask.any() else 0.0


def _masked_std(per_frame: np.ndarray, mask: np.ndarray) -> float:
    return float(per_frame[mask].std()) if mask.any() else 0.0


def _ordered_finite(values: dict[str, float]) -> dict[str, float]:
    ordered = {name: float(values[name]) for name in AUBIO_FEATURE_COLUMNS}
    broken = [name for name, value in ordered.items() if not np.isfinite(value)]
    if broken:  # a bug in one of the helpers above, never a property of the input
        raise RuntimeError(f"non-finite features {broken}; please report with the audio file")
    return ordered


def _ordered_flags(flags: set[str]) -> tuple[str, ...]:
    return tuple(flag for flag in FLAG_MEANINGS if flag in flags)
