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
Aubio computes every frame-level signal it provides, hop by hop, with its own objects:
``aubio.pvoc`` and ``aubio.specdesc`` (centroid, spread, rolloff, spectral flux),
``aubio.mfcc``, ``aubio.db_spl`` and ``aubio.zero_crossing_rate`` at 22050 Hz;
``aubio.onset`` (its detections and its onset detection function); ``aubio.tempo`` (beats,
confidence) and ``aubio.pitch`` (confidence) at 11025 Hz. numpy only summarises those frame
values over the clip, and adds what aubio does not have (``FEATURE_TABLE.computed_by`` says
``"songmix"`` for these):

* spectral flatness, from aubio's phase-vocoder magnitudes;
* the key and mode: a chroma of aubio's phase-vocoder power spectrum, correlated with the
  Albrecht & Shanahan (2013) key profiles (``estimate_key``);
* the clip's tempo at the metrical level of the notated beat (``clip_tempo``): aubio's beat
  tracker is a causal, real-time follower whose period settles within roughly 80-160 BPM,
  so the clip tempo is read from the periodicity of two of aubio's frame signals -- its onset
  detection function and the change of the chroma (harmonic rhythm) -- weighted by the
  perceptual tempo prior of Ellis (2007) that librosa also uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import aubio
import numpy as np
from scipy.signal import firwin

from songmix.audio.decode import (
    ANALYSIS_SAMPLE_RATE,
    DEFAULT_MAX_SECONDS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    decode_file,
    halve_rate,
    resample,
)
from songmix.sources.schema import PITCH_CLASSES

# Identifies what the extractor computes; bump the number whenever a feature's definition or
# parameters change, so that stored features of an older version are recomputed.
EXTRACTOR_VERSION = f"songmix-audio-4+aubio-{aubio.version}"

# Timbre: aubio.pvoc on 46 ms windows at 22050 Hz, one window every 93 ms. Only clip
# summaries are kept: analysing every other window leaves them as they are (the spectral
# flux, aubio's change since the previous analysed window, then spans 93 ms) at half the cost.
FRAME_SIZE = 1024
SPECTRAL_STRIDE = 2048
SPECTRAL_DESCRIPTORS = ("centroid", "spread", "rolloff", "specflux")
# Rhythm, pitch and key run at half the rate: they need nothing above 5.5 kHz.
HALF_RATE = ANALYSIS_SAMPLE_RATE // 2
HALF_BAND_TAPS = 11
# Onsets and the tempo's frame signals: 46 ms windows every 23 ms. aubio.onset runs with its
# own defaults for the method (log compression, adaptive whitening, threshold, minimum
# inter-onset interval); aubio.pvoc of the same windows gives the chroma's change.
ONSET_METHOD = "specflux"
RHYTHM_FRAME_SIZE = 512
RHYTHM_HOP_SIZE = 256
# Beats: aubio.tempo at plain aubio's time resolution (its 1024 / 512 at 44.1 kHz, 11.6 ms).
TEMPO_METHOD = "default"
TEMPO_FRAME_SIZE = 256
TEMPO_HOP_SIZE = 128
MIN_BEATS = 4  # fewer beats than this: aubio found no pulse to follow
# Pitch: aubio.pitch on 93 ms windows, one analysed every 186 ms (only a summary is kept).
# "yinfast" is aubio's FFT-based YIN; "yinfft" reports a confidence of 0 for every frame in
# aubio 0.4.9 (aubio issue #167), so its confidence cannot be used.
PITCH_METHOD = "yinfast"
PITCH_FRAME_SIZE = 1024
PITCH_STRIDE = 2048
VOICED_CONFIDENCE = 0.85  # YIN's usual tolerance of 0.15 on the normalised difference
# Key: aubio.pvoc(4096, 4096) at 11025 Hz, back-to-back 0.37 s windows with 2.7 Hz bins,
# which resolve semitones from the lowest chroma pitch up. Chroma covers C2-C7 (65-2093 Hz).
CHROMA_FRAME_SIZE = 4096
CHROMA_MIN_HZ = 65.4
CHROMA_MAX_HZ = 2093.0
# Tempo search and prior: Ellis (2007) and librosa's defaults (a log-normal weighting centred
# on 120 BPM, one octave wide), over librosa's range of candidate tempi.
TEMPO_PRIOR_BPM = 120.0
TEMPO_PRIOR_OCTAVES = 1.0
MIN_TEMPO_BPM = 30.0
MAX_TEMPO_BPM = 320.0
TEMPO_GRID_PER_OCTAVE = 480  # candidate tempi 0.14 % apart, well inside the 4 % tolerance
# A periodicity counts as a pulse when the onset function's autocorrelation at its period
# exceeds this many standard errors of a pulse-free signal's (1 / sqrt(frames)).
PULSE_SIGNIFICANCE = 4.0

SILENCE_DB = -70.0  # aubio.onset's default silence threshold
LEVEL_FLOOR_DB = -100.0  # reported level of digital silence
SHORT_SECONDS = 5.0  # tempo needs several seconds of onsets

# Albrecht & Shanahan (2013), "The use of large corpora to train a new type of key-finding
# algorithm: an improved treatment of the minor mode", Music Perception 31(1): the share of
# each scale degree in a corpus of common-practice pieces, index 0 = tonic.
MAJOR_PROFILE = np.array(
    [0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081])
MINOR_PROFILE = np.array(
    [0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052])
NO_KEY = -1

FLAG_SILENT = "silent"
FLAG_SHORT = "short"
FLAG_NO_BEAT = "no_beat"
FLAG_NO_KEY = "no_key"
FLAG_CAPPED = "capped"
FLAG_MEANINGS: dict[str, str] = {
    FLAG_SILENT: f"no frame above {SILENCE_DB:g} dB: spectral, MFCC and pitch summaries are 0",
    FLAG_SHORT: f"shorter than {SHORT_SECONDS:g} s: tempo and onset rate are unreliable",
    FLAG_NO_BEAT: f"aubio.tempo found fewer than {MIN_BEATS} beats, or aubio's onset function "
    "repeats no more than noise would: tempo, confidence and regularity are 0",
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
        The aubio object (or function) whose output the feature summarises or builds on.
    parameters : str
        Window, hop, method and thresholds used.
    unit : str
        Unit of the value.
    computed_by : str
        ``"aubio"`` when aubio's objects compute the frame values (numpy only summarises
        them), ``"songmix"`` when songmix computes what aubio has no object for, from
        aubio's outputs.
    description : str
        What the number means.
    """

    name: str
    aubio_object: str
    parameters: str
    unit: str
    computed_by: str
    description: str

    @property
    def documentation(self) -> str:
        """The whole row as one line (the ``aubio_features`` column's comment)."""
        return (f"{self.description} [{self.unit}; aubio {self.aubio_object}, {self.parameters}; "
                f"computed by {self.computed_by}]")


_SPECTRAL = (f"pvoc({FRAME_SIZE}, {FRAME_SIZE}), Hann window, one window every "
             f"{SPECTRAL_STRIDE} samples at {ANALYSIS_SAMPLE_RATE} Hz")
_AT_HALF_RATE = f"{HALF_RATE} Hz"
_ACTIVE = f"over frames above {SILENCE_DB:g} dB"
_ONSET = (f"'{ONSET_METHOD}', win {RHYTHM_FRAME_SIZE}, hop {RHYTHM_HOP_SIZE} at {_AT_HALF_RATE}"
          ", aubio's defaults for the method")
_TEMPO = f"'{TEMPO_METHOD}', win {TEMPO_FRAME_SIZE}, hop {TEMPO_HOP_SIZE} at {_AT_HALF_RATE}"
_PITCH = (f"'{PITCH_METHOD}', win {PITCH_FRAME_SIZE}, one window every {PITCH_STRIDE} "
          f"samples at {_AT_HALF_RATE}")
_CHROMA = (f"pvoc({CHROMA_FRAME_SIZE}, {CHROMA_FRAME_SIZE}) at {_AT_HALF_RATE}, power in bins "
           f"{CHROMA_MIN_HZ:g}-{CHROMA_MAX_HZ:g} Hz, Albrecht-Shanahan profiles")


def _summary_specs(
    stem: str, aubio_object: str, parameters: str, unit: str, computed_by: str, what: str
) -> tuple[FeatureSpec, ...]:
    return tuple(
        FeatureSpec(f"{stem}_{statistic}", aubio_object, parameters, unit, computed_by,
                    f"{label} of {what} {_ACTIVE}")
        for statistic, label in (("mean", "mean"), ("std", "standard deviation"))
    )


def _mfcc_specs(statistic: str, label: str) -> tuple[FeatureSpec, ...]:
    return tuple(
        FeatureSpec(
            f"mfcc_{index:02d}_{statistic}",
            "mfcc",
            f"{_SPECTRAL}; 40 Slaney mel filters, coefficient {index} of 13",
            "log10 magnitude",
            "aubio",
            f"{label} of MFCC coefficient {index} {_ACTIVE}",
        )
        for index in range(13)
    )


FEATURE_TABLE: tuple[FeatureSpec, ...] = (
    FeatureSpec("tempo", "onset.get_descriptor, pvoc (chroma)",
                f"onset {_ONSET}; chroma of pvoc({RHYTHM_FRAME_SIZE}, {RHYTHM_HOP_SIZE}) at "
                f"{_AT_HALF_RATE}; prior {TEMPO_PRIOR_BPM:g} BPM, "
                f"{TEMPO_PRIOR_OCTAVES:g} octave", "BPM", "songmix",
                "the tempo whose period the clip repeats most: autocorrelation of aubio's onset "
                "detection function plus that of the chroma's change, weighted by a "
                "log-normal tempo prior (clip_tempo); 0 with no_beat"),
    FeatureSpec("tempo_confidence", "tempo.get_confidence", _TEMPO, "score >= 0", "aubio",
                "aubio's (experimental, unbounded) confidence in its final beat period"),
    FeatureSpec("beat_regularity", "tempo", _TEMPO, "0-1", "aubio",
                "1 - coefficient of variation of aubio's inter-beat intervals, clipped to "
                "[0, 1]; 0 with no_beat"),
    FeatureSpec("onset_rate", "onset", _ONSET, "onsets/s", "aubio",
                "onsets aubio.onset detects per second of audio"),
    FeatureSpec("loudness", "db_spl", f"whole clip, floored at {LEVEL_FLOOR_DB:g} dB", "dB",
                "aubio", "aubio.db_spl of the whole clip: 10 log10 of its mean power"),
    FeatureSpec("loudness_range", "db_spl", f"the windows of {_SPECTRAL}", "dB",
                "aubio", f"95th minus 5th percentile of frame levels {_ACTIVE}"),
    FeatureSpec("zero_crossing_rate", "zero_crossing_rate", f"the windows of {_SPECTRAL}",
                "crossings/sample", "aubio",
                f"mean of aubio's per-frame zero-crossing rate {_ACTIVE}"),
    *_summary_specs("spectral_centroid", "specdesc('centroid')", _SPECTRAL, "Hz", "aubio",
                    "the magnitude-weighted mean frequency"),
    *_summary_specs("spectral_spread", "specdesc('spread')", _SPECTRAL, "Hz", "aubio",
                    "the magnitude-weighted standard deviation of frequency (square root of "
                    "aubio's variance in bins^2)"),
    *_summary_specs("spectral_rolloff", "specdesc('rolloff')", _SPECTRAL, "Hz", "aubio",
                    "the frequency below which 95% of the energy lies"),
    *_summary_specs("spectral_flatness", "pvoc (aubio has no flatness descriptor)", _SPECTRAL,
                    "0-1", "songmix",
                    "the geometric over the arithmetic mean of the power spectrum"),
    *_summary_specs("spectral_flux", "specdesc('specflux')", _SPECTRAL, "magnitude", "aubio",
                    "the summed magnitude increases since the previous frame"),
    *_mfcc_specs("mean", "mean"),
    *_mfcc_specs("std", "standard deviation"),
    FeatureSpec("pitch_confidence", "pitch.get_confidence", _PITCH, "0-1", "aubio",
                "mean YIN confidence (1 - aperiodicity) over the analysed windows above "
                f"{SILENCE_DB:g} dB"),
    FeatureSpec("voiced_fraction", "pitch.get_confidence", _PITCH, "0-1", "aubio",
                f"share of the analysed windows above {SILENCE_DB:g} dB with confidence >= "
                f"{VOICED_CONFIDENCE:g}"),
    FeatureSpec("key", "pvoc (chroma)", _CHROMA, "pitch class 0-11", "songmix",
                "tonic of the key profile best correlated with the clip's chroma; -1 with "
                "no_key"),
    FeatureSpec("mode", "pvoc (chroma)", _CHROMA, "1 major, 0 minor", "songmix",
                "mode of that key profile; -1 with no_key"),
    FeatureSpec("key_strength", "pvoc (chroma)", _CHROMA, "correlation -1-1", "songmix",
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
    padded = _padded_to(samples, 2 * CHROMA_FRAME_SIZE)
    frames = spectral_frames(padded)
    half_rate = _half_rate(padded)
    rhythm = rhythm_frames(half_rate)
    tempo = clip_tempo(rhythm.onset_strength, rhythm.harmonic_change,
                       frame_rate=HALF_RATE / RHYTHM_HOP_SIZE)
    key, mode, key_strength = estimate_key(chroma(half_rate))
    active = frames.levels_db > SILENCE_DB
    seconds = len(padded) / ANALYSIS_SAMPLE_RATE
    values = {
        **_beat_features(track_beats(half_rate), tempo),
        "onset_rate": float(rhythm.onsets.sum()) / seconds,
        "loudness": _level_db(samples),
        "loudness_range": _spread_db(frames.levels_db[active]),
        "zero_crossing_rate": _masked_mean(frames.zero_crossing_rates, active),
        **_spectral_features(frames, active),
        **_pitch_features(half_rate),
        "key": float(key), "mode": float(mode), "key_strength": key_strength,
    }
    flags = set()
    if values["tempo"] == 0.0:
        flags.add(FLAG_NO_BEAT)
    if key == NO_KEY:
        flags.add(FLAG_NO_KEY)
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


def _padded_to(samples: np.ndarray, length: int) -> np.ndarray:
    """``samples`` followed by zeros up to ``length`` (no copy when already that long)."""
    return samples if len(samples) >= length else np.pad(samples, (0, length - len(samples)))


def _hops(samples: np.ndarray, hop_size: int) -> np.ndarray:
    """Consecutive non-overlapping blocks of shape (n_hops, hop_size), C-contiguous rows."""
    n_hops = len(samples) // hop_size
    return np.ascontiguousarray(samples[: n_hops * hop_size]).reshape(n_hops, hop_size)


def _level_db(samples: np.ndarray) -> float:
    """``aubio.db_spl`` of samples, floored at LEVEL_FLOOR_DB (digital silence is -inf)."""
    return max(float(aubio.db_spl(samples)), LEVEL_FLOOR_DB) if len(samples) else LEVEL_FLOOR_DB


# --- 22050 Hz: aubio's phase vocoder, spectral descriptors, MFCC and levels ------------------


@dataclass(frozen=True)
class SpectralFrames:
    """aubio's frame signals of a clip at 22050 Hz, one row per analysed window.

    Window i is ``FRAME_SIZE`` samples from sample ``i * SPECTRAL_STRIDE``.

    Attributes
    ----------
    magnitudes : ndarray of shape (n_frames, FRAME_SIZE // 2 + 1), float32
        ``aubio.pvoc`` magnitudes.
    descriptors : ndarray of shape (n_frames, len(SPECTRAL_DESCRIPTORS))
        ``aubio.specdesc`` of each method, in bins (centroid, rolloff), bins^2 (spread) or
        magnitude (specflux).
    mfcc : ndarray of shape (n_frames, 13)
        ``aubio.mfcc`` coefficients.
    levels_db : ndarray of shape (n_frames,)
        ``aubio.db_spl`` of each frame, floored at ``LEVEL_FLOOR_DB``.
    zero_crossing_rates : ndarray of shape (n_frames,)
        ``aubio.zero_crossing_rate`` of each frame.
    """

    magnitudes: np.ndarray
    descriptors: np.ndarray
    mfcc: np.ndarray
    levels_db: np.ndarray
    zero_crossing_rates: np.ndarray


def spectral_frames(samples: np.ndarray) -> SpectralFrames:
    """Run aubio's 22050 Hz objects over a clip, hop by hop.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,), float32, at ANALYSIS_SAMPLE_RATE

    Returns
    -------
    SpectralFrames
    """
    # With hop == window each call analyses just the window it is given, so feeding one
    # window every SPECTRAL_STRIDE samples skips the rest.
    windows = _hops(samples, SPECTRAL_STRIDE)[:, :FRAME_SIZE]
    n_frames = len(windows)
    phase_vocoder = aubio.pvoc(FRAME_SIZE, FRAME_SIZE)
    centroid, spread, rolloff, flux = (aubio.specdesc(method, FRAME_SIZE)
                                       for method in SPECTRAL_DESCRIPTORS)
    cepstrum = aubio.mfcc(FRAME_SIZE, 40, 13, ANALYSIS_SAMPLE_RATE)
    magnitudes = np.empty((n_frames, FRAME_SIZE // 2 + 1), dtype=np.float32)
    descriptors = np.empty((n_frames, len(SPECTRAL_DESCRIPTORS)), dtype=np.float32)
    coefficients = np.empty((n_frames, 13), dtype=np.float32)
    levels = np.empty(n_frames)
    crossings = np.empty(n_frames)
    for index, window in enumerate(windows):
        spectrum = phase_vocoder(window)
        magnitudes[index] = spectrum.norm
        row = descriptors[index]
        row[0], row[1], row[2], row[3] = (centroid(spectrum)[0], spread(spectrum)[0],
                                          rolloff(spectrum)[0], flux(spectrum)[0])
        coefficients[index] = cepstrum(spectrum)
        levels[index] = aubio.db_spl(window)
        crossings[index] = aubio.zero_crossing_rate(window)
    levels = np.maximum(np.nan_to_num(levels, nan=LEVEL_FLOOR_DB, neginf=LEVEL_FLOOR_DB),
                        LEVEL_FLOOR_DB)
    return SpectralFrames(magnitudes=magnitudes, descriptors=descriptors, mfcc=coefficients,
                          levels_db=levels, zero_crossing_rates=crossings)


def _spectral_features(frames: SpectralFrames, active: np.ndarray) -> dict[str, float]:
    bin_hz = ANALYSIS_SAMPLE_RATE / FRAME_SIZE
    centroid, spread, rolloff, flux = frames.descriptors.T
    per_frame = {
        "spectral_centroid": centroid * bin_hz,
        "spectral_spread": np.sqrt(np.maximum(spread, 0.0)) * bin_hz,
        "spectral_rolloff": rolloff * bin_hz,
        "spectral_flatness": spectral_flatness(frames.magnitudes),
        "spectral_flux": flux,
    }
    values = {}
    for stem, frame_values in per_frame.items():
        values[f"{stem}_mean"] = _masked_mean(frame_values, active)
        values[f"{stem}_std"] = _masked_std(frame_values, active)
    for index in range(frames.mfcc.shape[1]):
        values[f"mfcc_{index:02d}_mean"] = _masked_mean(frames.mfcc[:, index], active)
        values[f"mfcc_{index:02d}_std"] = _masked_std(frames.mfcc[:, index], active)
    return values


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
    mean_log_power = 2.0 * np.log(np.maximum(magnitudes, np.float32(1e-10))).mean(axis=1)
    mean_power = np.einsum("ij,ij->i", magnitudes, magnitudes) / magnitudes.shape[1]
    return np.clip(_safe_ratio(np.exp(mean_log_power), mean_power), 0.0, 1.0)


def _spread_db(levels_db: np.ndarray) -> float:
    """95th minus 5th percentile of frame levels, 0 without frames."""
    if not len(levels_db):
        return 0.0
    return float(np.percentile(levels_db, 95) - np.percentile(levels_db, 5))


# --- 11025 Hz: aubio's onsets, beat tracker and pitch --------------------------------------


@cache
def _half_band_filter() -> np.ndarray:
    return firwin(HALF_BAND_TAPS, 0.5).astype(np.float32)


def _half_rate(samples: np.ndarray) -> np.ndarray:
    """22050 Hz to HALF_RATE through a short half-band filter (nothing analysed at this rate
    lies near its 5.5 kHz edge). Shape (ceil(n_samples / 2),), float32."""
    return halve_rate(samples, _half_band_filter())


@dataclass(frozen=True)
class RhythmFrames:
    """aubio's rhythm signals of a clip at HALF_RATE, one value per hop of RHYTHM_HOP_SIZE.

    Attributes
    ----------
    onsets : ndarray of shape (n_hops,), bool
        Hops at which ``aubio.onset`` reported an onset.
    onset_strength : ndarray of shape (n_hops,)
        ``aubio.onset.get_descriptor()`` after each hop: its onset detection function.
    harmonic_change : ndarray of shape (n_hops,)
        ``harmonic_change`` of ``aubio.pvoc`` spectra of the same windows.
    """

    onsets: np.ndarray
    onset_strength: np.ndarray
    harmonic_change: np.ndarray


def rhythm_frames(half_rate: np.ndarray) -> RhythmFrames:
    """Run aubio.onset and aubio.pvoc over a clip at HALF_RATE, hop by hop.

    Parameters
    ----------
    half_rate : ndarray of shape (n_samples,), float32, at HALF_RATE

    Returns
    -------
    RhythmFrames
    """
    hops = _hops(half_rate, RHYTHM_HOP_SIZE)
    detector = aubio.onset(ONSET_METHOD, RHYTHM_FRAME_SIZE, RHYTHM_HOP_SIZE, HALF_RATE)
    phase_vocoder = aubio.pvoc(RHYTHM_FRAME_SIZE, RHYTHM_HOP_SIZE)
    onsets = np.zeros(len(hops), dtype=bool)
    strength = np.empty(len(hops))
    magnitudes = np.empty((len(hops), RHYTHM_FRAME_SIZE // 2 + 1), dtype=np.float32)
    descriptor = detector.get_descriptor
    for index, hop in enumerate(hops):
        onsets[index] = detector(hop)[0] > 0
        strength[index] = descriptor()
        magnitudes[index] = phase_vocoder(hop).norm
    return RhythmFrames(onsets=onsets, onset_strength=strength,
                        harmonic_change=harmonic_change(magnitudes, HALF_RATE))


@dataclass(frozen=True)
class BeatTrack:
    """What ``aubio.tempo`` reports over a whole clip.

    Attributes
    ----------
    beat_seconds : ndarray of shape (n_beats,)
        Times of the beats it reports (``get_last_s()`` after each hop that returns one).
    confidence : float
        ``get_confidence()`` after the last hop.
    """

    beat_seconds: np.ndarray
    confidence: float


def track_beats(half_rate: np.ndarray) -> BeatTrack:
    """Feed a clip at HALF_RATE to ``aubio.tempo`` hop by hop and collect its beats.

    Parameters
    ----------
    half_rate : ndarray of shape (n_samples,), float32, at HALF_RATE

    Returns
    -------
    BeatTrack
    """
    tracker = aubio.tempo(TEMPO_METHOD, TEMPO_FRAME_SIZE, TEMPO_HOP_SIZE, HALF_RATE)
    beats = [tracker.get_last_s() for hop in _hops(half_rate, TEMPO_HOP_SIZE) if tracker(hop)[0]]
    return BeatTrack(beat_seconds=np.array(beats, dtype=float),
                     confidence=float(np.nan_to_num(tracker.get_confidence())))


def _beat_features(beats: BeatTrack, tempo: float) -> dict[str, float]:
    intervals = np.diff(beats.beat_seconds)
    if len(beats.beat_seconds) < MIN_BEATS or tempo == 0.0 or intervals.mean() <= 0:
        return {"tempo": 0.0, "tempo_confidence": 0.0, "beat_regularity": 0.0}
    return {
        "tempo": tempo,
        "tempo_confidence": beats.confidence,
        "beat_regularity": float(np.clip(1.0 - intervals.std() / intervals.mean(), 0.0, 1.0)),
    }


def _pitch_features(half_rate: np.ndarray) -> dict[str, float]:
    # aubio.pitch's hop cannot exceed its window: windows that do not overlap, fed one by
    # one, are each analysed on their own, so feeding one every PITCH_STRIDE skips the rest.
    detector = aubio.pitch(PITCH_METHOD, PITCH_FRAME_SIZE, PITCH_FRAME_SIZE, HALF_RATE)
    windows = _hops(half_rate, PITCH_STRIDE)[:, :PITCH_FRAME_SIZE]
    confidences = np.empty(len(windows))
    active = np.empty(len(windows), dtype=bool)
    for index, window in enumerate(windows):
        detector(window)
        confidences[index] = detector.get_confidence()
        active[index] = _level_db(window) > SILENCE_DB
    confidences = np.nan_to_num(confidences)  # aubio can report NaN on silence (issue #7)
    return {
        "pitch_confidence": _masked_mean(confidences, active),
        "voiced_fraction": _masked_mean((confidences >= VOICED_CONFIDENCE).astype(float), active),
    }


# --- tempo at the beat's metrical level ------------------------------------------------------


@cache
def _tempo_grid() -> tuple[np.ndarray, np.ndarray]:
    """Candidate tempi (log-spaced, BPM) and the log-normal prior's weight of each.

    The prior is Ellis's (2007) weighting of periods by closeness to a preferred tempo in
    octaves, as librosa's ``feature.tempo`` applies it (``start_bpm=120``, ``std_bpm=1``).
    """
    n_octaves = np.log2(MAX_TEMPO_BPM / MIN_TEMPO_BPM)
    bpm = MIN_TEMPO_BPM * 2.0 ** (np.arange(int(n_octaves * TEMPO_GRID_PER_OCTAVE) + 1)
                                  / TEMPO_GRID_PER_OCTAVE)
    prior = np.exp(-0.5 * (np.log2(bpm / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES) ** 2)
    return bpm, prior


def periodicity(signal: np.ndarray, *, frame_rate: float, bpm: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of a frame signal at the periods of the given tempi.

    The signal's mean is removed; each lag's sum is divided by the number of products it
    holds (so long lags are not penalised for overlapping less) and by the lag-0 value; lags
    between frames are interpolated linearly. Negative correlations count as none.

    Parameters
    ----------
    signal : ndarray of shape (n_frames,)
    frame_rate : float, keyword-only
        Frames per second of ``signal``.
    bpm : ndarray of shape (n_tempi,)
        Tempi whose periods (60 frame_rate / bpm frames) are read.

    Returns
    -------
    ndarray of shape (n_tempi,), values in [0, 1]; all 0 for a constant signal.
    """
    centred = np.asarray(signal, dtype=np.float64) - np.mean(signal)
    n_frames = len(centred)
    lags = 60.0 * frame_rate / bpm
    max_lag = min(int(np.ceil(lags.max())) + 1, n_frames - 1)
    if max_lag < 1:
        return np.zeros(len(bpm))
    spectrum = np.fft.rfft(centred, 2 * n_frames)
    products = np.fft.irfft(spectrum.real**2 + spectrum.imag**2)[: max_lag + 1]
    correlation = products / (n_frames - np.arange(max_lag + 1))
    if correlation[0] <= 0:
        return np.zeros(len(bpm))
    values = np.interp(lags, np.arange(max_lag + 1), correlation / correlation[0], right=0.0)
    return np.maximum(values, 0.0)


def harmonic_change(magnitudes: np.ndarray, sample_rate: int) -> np.ndarray:
    """How much the pitch-class distribution of each frame moved since the previous one.

    The half-wave rectified difference of consecutive frames' chroma, each normalised to sum
    to 1: a chord or bass change raises it, a note repeated or held does not. Harmonic rhythm
    marks the beat where onsets alone cannot tell it from its subdivisions (Goto 2001).

    Parameters
    ----------
    magnitudes : ndarray of shape (n_frames, n_bins)
        aubio.pvoc magnitudes of windows of 2 (n_bins - 1) samples.
    sample_rate : int
        Rate of the analysed samples in Hz.

    Returns
    -------
    ndarray of shape (n_frames,), values in [0, 1]
    """
    frame_size = 2 * (magnitudes.shape[1] - 1)
    pitch_classes = _chroma_shares(magnitudes, _chroma_map(frame_size, sample_rate))
    change = np.diff(pitch_classes, axis=0, prepend=pitch_classes[:1])
    return np.maximum(change, 0.0).sum(axis=1)


def clip_tempo(onset_strength: np.ndarray, harmonic: np.ndarray, *, frame_rate: float) -> float:
    """The clip's tempo at the metrical level of its beat, or 0 when it has no pulse.

    Each tempo on a log-spaced grid of ``MIN_TEMPO_BPM``-``MAX_TEMPO_BPM`` is scored by the
    periodicity of the onset detection function plus that of the harmonic change at its
    period (two cues to the beat: where notes start and where the harmony moves), times the
    log-normal tempo prior of Ellis (2007). The best score's tempo is refined by a parabola
    through its neighbours. A clip whose onset function is no more periodic at that tempo
    than ``PULSE_SIGNIFICANCE`` standard errors of a pulse-free signal has no tempo.

    Parameters
    ----------
    onset_strength, harmonic : ndarray of shape (n_frames,)
        Onset detection function and harmonic change, at ``frame_rate`` frames per second.
    frame_rate : float, keyword-only

    Returns
    -------
    float
        Beats per minute, or 0.0.
    """
    bpm, prior = _tempo_grid()
    onset_periodicity = periodicity(onset_strength, frame_rate=frame_rate, bpm=bpm)
    score = (onset_periodicity + periodicity(harmonic, frame_rate=frame_rate, bpm=bpm)) * prior
    best = int(np.argmax(score))
    if onset_periodicity[best] <= PULSE_SIGNIFICANCE / np.sqrt(len(onset_strength)):
        return 0.0
    return float(bpm[0] * 2.0 ** (_parabolic_peak(score, best) / TEMPO_GRID_PER_OCTAVE))


def _parabolic_peak(values: np.ndarray, index: int) -> float:
    """Position of the vertex of the parabola through values[index - 1: index + 2]."""
    if not 0 < index < len(values) - 1:
        return float(index)
    before, at, after = values[index - 1], values[index], values[index + 1]
    curvature = before - 2.0 * at + after
    return float(index + 0.5 * (before - after) / curvature) if curvature < 0 else float(index)


# --- key: chroma of aubio's phase-vocoder power spectrum against key profiles -----------------


@cache
def _chroma_map(frame_size: int, sample_rate: int) -> np.ndarray:
    """Bin-to-pitch-class assignment between the chroma limits. Shape (n_bins, 12)."""
    frequencies = np.fft.rfftfreq(frame_size, 1.0 / sample_rate)
    in_range = (frequencies >= CHROMA_MIN_HZ) & (frequencies <= CHROMA_MAX_HZ)
    pitch_class = np.round(12 * np.log2(np.where(in_range, frequencies, 440.0) / 440.0) + 9)
    assignment = np.zeros((len(frequencies), 12))
    assignment[in_range, pitch_class[in_range].astype(int) % 12] = 1.0
    return assignment


def _chroma_shares(magnitudes: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    """Each frame's power per pitch class over its total (0 for frames without any).

    Returns
    -------
    ndarray of shape (n_frames, 12)
    """
    power = np.square(magnitudes, dtype=np.float64) @ assignment
    return _safe_ratio(power, power.sum(axis=1, keepdims=True))


def chroma(half_rate: np.ndarray) -> np.ndarray:
    """Clip chroma: the pitch-class shares of aubio.pvoc's power spectrum, summed over frames.

    Normalising each frame first lets every stretch of the clip vote by its duration, as the
    notes' durations do in symbolic key finding, not by its loudness.

    Parameters
    ----------
    half_rate : ndarray of shape (n_samples,), float32, at HALF_RATE

    Returns
    -------
    ndarray of shape (12,), index 0 = C; all zeros when no frame has energy in range.
    """
    phase_vocoder = aubio.pvoc(CHROMA_FRAME_SIZE, CHROMA_FRAME_SIZE)
    windows = _hops(half_rate, CHROMA_FRAME_SIZE)
    magnitudes = np.empty((len(windows), CHROMA_FRAME_SIZE // 2 + 1), dtype=np.float32)
    audible = np.empty(len(windows), dtype=bool)
    for index, window in enumerate(windows):
        magnitudes[index] = phase_vocoder(window).norm
        audible[index] = _level_db(window) > SILENCE_DB
    shares = _chroma_shares(magnitudes[audible], _chroma_map(CHROMA_FRAME_SIZE, HALF_RATE))
    return shares.sum(axis=0)


@cache
def _key_templates() -> np.ndarray:
    """Centred, unit-norm profiles of the 24 keys. Shape (24, 12): major C..B, minor C..B."""
    profiles = np.stack(
        [np.roll(profile, tonic) for profile in (MAJOR_PROFILE, MINOR_PROFILE)
         for tonic in range(12)]
    )
    centred = profiles - profiles.mean(axis=1, keepdims=True)
    return centred / np.linalg.norm(centred, axis=1, keepdims=True)


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
