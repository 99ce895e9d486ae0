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
Tempo, beats, onsets and pitch come from aubio's own C objects (``aubio.tempo``,
``aubio.onset``, ``aubio.pitch``), fed hop by hop at 11025 Hz (half the analysis rate: their
detection functions need nothing above 5.5 kHz, and aubio's per-hop FFT dominates their cost).
Everything computed from the phase-vocoder spectrum -- aubio ``specdesc`` centroid / spread /
rolloff / specflux, ``mfcc``, the chroma -- is computed for all frames at once in numpy with
aubio's definitions (the MFCC uses the filters of ``aubio.filterbank.set_mel_coeffs_slaney``
and the matrix of ``aubio.dct``); the tests check them against aubio frame by frame. Calling
aubio once per spectral frame would cost ~20 us of Python and FFT per call and more than double
the extraction time. aubio's beat tracker folds tempi into about 78-165 BPM; a documented check
of the spectral flux at and between its beats (``beat_level_tempo``) picks the metrical level.
``FEATURE_TABLE`` records, for each feature, which aubio object defines it and whether aubio or
numpy computes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import aubio
import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import firwin, resample_poly

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
EXTRACTOR_VERSION = f"songmix-audio-1+aubio-{aubio.version}"

# Spectral frames: the phase vocoder of aubio.pvoc(1024, 512), 46 ms windows every 23 ms.
FRAME_SIZE = 1024
HOP_SIZE = 512
# aubio's onset, tempo and pitch objects run at half the rate: their detection functions need
# no content above 5.5 kHz, and half the samples halve the per-hop FFT cost.
AUBIO_SAMPLE_RATE = ANALYSIS_SAMPLE_RATE // 2
HALF_BAND_TAPS = 11
# Beat tracking (aubio.tempo): a hop of 11.6 ms, the resolution aubio's beat tracker is tuned for
# (512 at 44.1 kHz); at 23 ms its tempo range shifts to ~50-100 BPM and every faster song halves.
TEMPO_METHOD = "specflux"
TEMPO_FRAME_SIZE = 128
TEMPO_HOP_SIZE = 128
# Onsets (aubio.onset): 23 ms windows, not overlapping.
ONSET_METHOD = "hfc"
ONSET_FRAME_SIZE = 256
ONSET_HOP_SIZE = 256
# Pitch (aubio.pitch): 93 ms windows, not overlapping; only a summary is kept. "yinfast" is
# aubio's FFT-based YIN; "yinfft" reports a confidence of 0 for every frame in aubio 0.4.9
# (aubio issue #167), so its confidence cannot be used.
PITCH_METHOD = "yinfast"
PITCH_FRAME_SIZE = 1024
PITCH_HOP_SIZE = 1024
VOICED_CONFIDENCE = 0.85  # YIN's usual tolerance of 0.15 on the normalised difference
# Key: 186 ms windows resolve semitones down to ~100 Hz (5.4 Hz bins).
CHROMA_FRAME_SIZE = 4096
CHROMA_MIN_HZ = 100.0
CHROMA_MAX_HZ = 2000.0
# Mel filterbank of aubio.mfcc: 40 Slaney filters, 13 coefficients.
N_MEL_FILTERS = 40
N_MFCC = 13

SILENCE_DB = -70.0  # aubio.onset's default silence threshold
LEVEL_FLOOR_DB = -100.0  # reported level of digital silence
ROLLOFF_FRACTION = 0.95  # aubio specdesc "rolloff"
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
_PITCH = (f"'{PITCH_METHOD}', win {PITCH_FRAME_SIZE}, hop {PITCH_HOP_SIZE} at {_AT_HALF_RATE}")
_CHROMA = (f"pvoc({CHROMA_FRAME_SIZE}, {CHROMA_FRAME_SIZE}) at {ANALYSIS_SAMPLE_RATE} Hz, "
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
    FeatureSpec("tempo", "tempo", _TEMPO, "BPM", "aubio+numpy",
                "60 / mean inter-beat interval of aubio.tempo's beats, halved or doubled "
                "when the spectral flux at and between beats says aubio chose the wrong "
                "metrical level (beat_level_tempo); 0 with no_beat"),
    FeatureSpec("tempo_confidence", "tempo.get_confidence", _TEMPO, "score >= 0", "aubio",
                "aubio's (experimental, unbounded) confidence in its final beat period"),
    FeatureSpec("beat_regularity", "tempo", _TEMPO, "0-1", "aubio+numpy",
                "1 - coefficient of variation of aubio's inter-beat intervals, clipped to "
                "[0, 1]; 0 with no_beat"),
    FeatureSpec("onset_rate", "onset", f"'{ONSET_METHOD}', win {ONSET_FRAME_SIZE}, hop "
                f"{ONSET_HOP_SIZE} at {_AT_HALF_RATE}, default threshold and silence",
                "onsets/s", "aubio", "onsets aubio.onset detects per second of audio"),
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
                f"mean YIN confidence (1 - aperiodicity) {_ACTIVE}"),
    FeatureSpec("voiced_fraction", "pitch.get_confidence", _PITCH, "0-1", "aubio",
                f"share of hops {_ACTIVE} with confidence >= {VOICED_CONFIDENCE:g}"),
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
    # Zero padding up to the longest window gives every analysis at least one frame.
    padded = np.pad(samples, (0, max(0, CHROMA_FRAME_SIZE - len(samples))))
    frames = sliding_window_view(padded, FRAME_SIZE)[::HOP_SIZE]
    frame_levels = _levels_db(frames)
    active = frame_levels > SILENCE_DB
    magnitudes = _magnitude_spectrogram(frames)
    flux = spectral_flux(magnitudes)
    half_rate = _half_rate(padded)

    tempo_values, tempo_flags = _tempo_features(half_rate, onset_strength=flux)
    key_values, key_flags = _key_features(padded)
    values = {
        **tempo_values,
        "onset_rate": _onset_count(half_rate) / (len(padded) / ANALYSIS_SAMPLE_RATE),
        **_level_features(samples, frame_levels, active),
        "zero_crossing_rate": _masked_mean(_zero_crossing_rates(frames), active),
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
    """Low-pass and keep every other sample: 22050 Hz to AUBIO_SAMPLE_RATE."""
    return resample_poly(samples, 1, 2, window=_half_band_filter()).astype(np.float32)


def _tempo_features(
    half_rate: np.ndarray, *, onset_strength: np.ndarray
) -> tuple[dict[str, float], set[str]]:
    tracker = aubio.tempo(TEMPO_METHOD, TEMPO_FRAME_SIZE, TEMPO_HOP_SIZE, AUBIO_SAMPLE_RATE)
    beat_seconds = np.array([tracker.get_last_s() for hop in _hops(half_rate, TEMPO_HOP_SIZE)
                             if tracker(hop)[0]])
    tempo = (beat_level_tempo(beat_seconds, onset_strength, period_s=tracker.get_period_s(),
                              frame_rate=ANALYSIS_SAMPLE_RATE / HOP_SIZE)
             if len(beat_seconds) >= MIN_BEATS else 0.0)
    if tempo == 0.0:
        return {"tempo": 0.0, "tempo_confidence": 0.0, "beat_regularity": 0.0}, {FLAG_NO_BEAT}
    intervals = np.diff(beat_seconds)
    return {
        "tempo": tempo,
        "tempo_confidence": float(tracker.get_confidence()),
        "beat_regularity": float(np.clip(1.0 - intervals.std() / intervals.mean(), 0.0, 1.0)),
    }, set()


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


def _onset_count(half_rate: np.ndarray) -> int:
    detector = aubio.onset(ONSET_METHOD, ONSET_FRAME_SIZE, ONSET_HOP_SIZE, AUBIO_SAMPLE_RATE)
    return sum(bool(detector(hop)[0]) for hop in _hops(half_rate, ONSET_HOP_SIZE))


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


def _zero_crossing_rates(frames: np.ndarray) -> np.ndarray:
    """aubio.zero_crossing_rate of each frame: sign changes / frame length. Shape (n_frames,)."""
    negative = frames < 0
    crossings = np.count_nonzero(negative[:, 1:] != negative[:, :-1], axis=1)
    return crossings / frames.shape[1]


# --- spectrum: aubio.pvoc and specdesc, vectorised ------------------------------------------


@cache
def _hann(size: int) -> np.ndarray:
    """aubio's default pvoc window ("hanningz"): 0.5 (1 - cos(2 pi n / size))."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(size) / size)).astype(np.float32)


def _magnitude_spectrogram(frames: np.ndarray) -> np.ndarray:
    """|FFT| of Hann-windowed frames, as aubio.pvoc's ``norm``. Shape (n_frames, size//2 + 1)."""
    windowed = frames * _hann(frames.shape[1])
    return np.abs(scipy.fft.rfft(windowed, axis=1, workers=1))


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
    # float32 running sums, like aubio's own loop.
    cumulative = np.cumsum(np.square(magnitudes, dtype=np.float32), axis=1)
    threshold = ROLLOFF_FRACTION * cumulative[:, -1:]
    reached = np.argmax(cumulative >= threshold, axis=1) + 1
    return np.where(cumulative[:, -1] > 0, reached, 0).astype(np.float64)


def spectral_flatness(magnitudes: np.ndarray) -> np.ndarray:
    """Geometric over arithmetic mean of the power spectrum, 0 for empty frames.

    Parameters
    ----------
    magnitudes : ndarray of shape (n_frames, n_bins)

    Returns
    -------
    ndarray of shape (n_frames,), values in [0, 1]
    """
    power = np.square(magnitudes, dtype=np.float32)
    # A floor keeps log() finite on exactly-zero bins; far below any audible bin's power.
    mean_log = np.log(np.maximum(power, np.float32(1e-20))).mean(axis=1, dtype=np.float64)
    return np.clip(_safe_ratio(np.exp(mean_log), power.mean(axis=1, dtype=np.float64)), 0.0, 1.0)


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
    previous = np.vstack([np.zeros((1, magnitudes.shape[1]), magnitudes.dtype), magnitudes[:-1]])
    return np.maximum(magnitudes - previous, 0.0).sum(axis=1, dtype=np.float64)


# --- MFCC: aubio.mfcc with aubio's own filterbank and DCT ----------------------------------


@cache
def _mel_filters() -> np.ndarray:
    """aubio's Slaney mel filterbank for FRAME_SIZE at 22050 Hz. Shape (n_bins, 40)."""
    filterbank = aubio.filterbank(N_MEL_FILTERS, FRAME_SIZE)
    filterbank.set_mel_coeffs_slaney(ANALYSIS_SAMPLE_RATE)
    return np.array(filterbank.get_coeffs(), dtype=np.float32).T


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
    energies = magnitudes @ _mel_filters()
    # aubio's fvec_log10 floors at its VERY_SMALL_NUMBER (2e-42) before the logarithm.
    return np.log10(np.maximum(energies, 2e-42)) @ _dct_matrix()


def _mfcc_features(magnitudes: np.ndarray, active: np.ndarray) -> dict[str, float]:
    if active.any():
        coefficients = mfcc(magnitudes[active])
        means, deviations = coefficients.mean(axis=0), coefficients.std(axis=0)
    else:
        means = deviations = np.zeros(N_MFCC)
    return {
        **{f"mfcc_{index:02d}_mean": float(value) for index, value in enumerate(means)},
        **{f"mfcc_{index:02d}_std": float(value) for index, value in enumerate(deviations)},
    }


# --- pitch: aubio.pitch yinfast at 11025 Hz ----------------------------------------------


def _pitch_features(half_rate: np.ndarray) -> dict[str, float]:
    detector = aubio.pitch(PITCH_METHOD, PITCH_FRAME_SIZE, PITCH_HOP_SIZE, AUBIO_SAMPLE_RATE)
    hops = _hops(half_rate, PITCH_HOP_SIZE)
    confidences = np.empty(len(hops))
    for index, hop in enumerate(hops):
        detector(hop)
        confidences[index] = detector.get_confidence()
    confidences = np.nan_to_num(confidences)  # aubio can report NaN on silence (issue #7)
    active = _levels_db(hops) > SILENCE_DB
    return {
        "pitch_confidence": _masked_mean(confidences, active),
        "voiced_fraction": _masked_mean((confidences >= VOICED_CONFIDENCE).astype(float), active),
    }


# --- key: chroma of the phase-vocoder spectrum against key profiles --------------------------


@cache
def _chroma_map() -> np.ndarray:
    """Bin-to-pitch-class assignment for CHROMA_FRAME_SIZE bins. Shape (n_bins, 12)."""
    frequencies = np.fft.rfftfreq(CHROMA_FRAME_SIZE, 1.0 / ANALYSIS_SAMPLE_RATE)
    in_range = (frequencies >= CHROMA_MIN_HZ) & (frequencies <= CHROMA_MAX_HZ)
    pitch_class = np.round(12 * np.log2(np.where(in_range, frequencies, 440.0) / 440.0) + 9)
    assignment = np.zeros((len(frequencies), 12), dtype=np.float32)
    assignment[in_range, pitch_class[in_range].astype(int) % 12] = 1.0
    return assignment


@cache
def _key_templates() -> np.ndarray:
    """Centred, unit-norm profiles of the 24 keys. Shape (24, 12): major C..B, minor C..B."""
    profiles = np.stack(
        [np.roll(profile, tonic) for profile in (MAJOR_PROFILE, MINOR_PROFILE)
         for tonic in range(12)]
    )
    centred = profiles - profiles.mean(axis=1, keepdims=True)
    return centred / np.linalg.norm(centred, axis=1, keepdims=True)


def chroma(samples: np.ndarray) -> np.ndarray:
    """Clip chroma: per-frame normalised pitch-class magnitude, summed over frames.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,), n_samples >= CHROMA_FRAME_SIZE, at 22050 Hz

    Returns
    -------
    ndarray of shape (12,), index 0 = C; all zeros when no frame is above ``SILENCE_DB``
        or none has energy in range.
    """
    frames = _hops(samples, CHROMA_FRAME_SIZE)
    audible = frames[_levels_db(frames) > SILENCE_DB]
    per_frame = _magnitude_spectrogram(audible) @ _chroma_map()
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


def _key_features(samples: np.ndarray) -> tuple[dict[str, float], set[str]]:
    key, mode, strength = estimate_key(chroma(samples))
    flags = {FLAG_NO_KEY} if key == NO_KEY else set()
    return {"key": float(key), "mode": float(mode), "key_strength": strength}, flags


# --- helpers --------------------------------------------------------------------------------


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
