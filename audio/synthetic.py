"""Synthetic test signals with known tempo and key, for tests and benchmarks.

Every function returns mono float32 samples of shape ``(round(seconds * sample_rate),)`` in
[-1, 1] and is deterministic given its ``seed``. Tempo is in beats per minute, key a pitch
class (0 = C ... 11 = B), mode 1 for major and 0 for minor (Spotify's conventions).
"""

from __future__ import annotations

import numpy as np

_MAJOR_PROGRESSION = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7))  # I  IV V I
_MINOR_PROGRESSION = ((0, 3, 7), (5, 8, 12), (7, 11, 14), (0, 3, 7))  # i  iv V i (harmonic)
_CHORD_ROOT_MIDI = 48  # C3
_N_HARMONICS = 6


def drum_pattern(
    bpm: float, *, seconds: float, sample_rate: int = 22050, seed: int = 0
) -> np.ndarray:
    """A four-on-the-floor kick, snare on the back beats and eighth-note hi-hats.

    Parameters
    ----------
    bpm : float
        Beats per minute (> 0).
    seconds : float
        Length in seconds.
    sample_rate : int
        Rate in Hz.
    seed : int
        Seeds the noise of the snare and hi-hats.

    Returns
    -------
    ndarray of shape (round(seconds * sample_rate),), float32
    """
    _check_positive(bpm=bpm, seconds=seconds, sample_rate=sample_rate)
    rng = np.random.default_rng(seed)
    n_samples = round(seconds * sample_rate)
    beat_seconds = 60.0 / bpm
    kick = _decaying(_sweep(150.0, 50.0, 0.15, sample_rate), 0.05, sample_rate)
    snare = _decaying(rng.standard_normal(round(0.12 * sample_rate)), 0.03, sample_rate)
    hat_noise = np.diff(rng.standard_normal(round(0.03 * sample_rate) + 1))  # high-passed
    hat = 0.12 * _decaying(hat_noise, 0.008, sample_rate)
    out = np.zeros(n_samples)
    beat_times = np.arange(0.0, seconds, beat_seconds)
    _add_at(out, kick, beat_times, sample_rate)
    _add_at(out, 0.6 * snare, beat_times[1::2], sample_rate)
    _add_at(out, hat, np.arange(0.0, seconds, beat_seconds / 2), sample_rate)
    return _normalised(out, peak=0.9)


def chord_progression(
    key: int, mode: int, *, seconds: float, sample_rate: int = 22050, bpm: float = 120.0
) -> np.ndarray:
    """Harmonic-rich triads cycling I-IV-V-I (major) or i-iv-V-i (minor), one bar each.

    Parameters
    ----------
    key : int
        Tonic pitch class, 0-11.
    mode : int
        1 major, 0 minor.
    seconds : float
        Length in seconds.
    sample_rate : int
        Rate in Hz.
    bpm : float
        Tempo that sets the bar length (4 beats).

    Returns
    -------
    ndarray of shape (round(seconds * sample_rate),), float32
    """
    if key not in range(12) or mode not in (0, 1):
        raise ValueError(f"key must be 0-11 and mode 0 or 1, got key={key!r}, mode={mode!r}")
    _check_positive(bpm=bpm, seconds=seconds, sample_rate=sample_rate)
    progression = _MAJOR_PROGRESSION if mode == 1 else _MINOR_PROGRESSION
    n_samples = round(seconds * sample_rate)
    times = np.arange(n_samples) / sample_rate
    bar_index = (times // (4 * 60.0 / bpm)).astype(int) % len(progression)
    out = np.zeros(n_samples)
    for chord_index, chord in enumerate(progression):
        in_bar = bar_index == chord_index
        for interval in chord:
            frequency = 440.0 * 2.0 ** ((_CHORD_ROOT_MIDI + key + interval - 69) / 12)
            out[in_bar] += _harmonic_tone(frequency, times[in_bar])
    return _normalised(out, peak=0.9)


def song(
    bpm: float,
    key: int,
    mode: int,
    *,
    seconds: float = 30.0,
    sample_rate: int = 22050,
    seed: int = 0,
) -> np.ndarray:
    """Drums over chords: a clip with a known tempo, key and mode.

    Returns
    -------
    ndarray of shape (round(seconds * sample_rate),), float32
    """
    drums = drum_pattern(bpm, seconds=seconds, sample_rate=sample_rate, seed=seed)
    chords = chord_progression(key, mode, seconds=seconds, sample_rate=sample_rate, bpm=bpm)
    return _normalised(drums + 0.7 * chords, peak=0.9)


def _harmonic_tone(frequency: float, times: np.ndarray) -> np.ndarray:
    harmonics = np.arange(1, _N_HARMONICS + 1)
    return (np.sin(2 * np.pi * frequency * np.outer(times, harmonics)) / harmonics).sum(axis=1)


def _sweep(start_hz: float, end_hz: float, seconds: float, sample_rate: int) -> np.ndarray:
    frequencies = np.geomspace(start_hz, end_hz, round(seconds * sample_rate))
    return np.sin(2 * np.pi * np.cumsum(frequencies) / sample_rate)


def _decaying(signal: np.ndarray, time_constant: float, sample_rate: int) -> np.ndarray:
    return signal * np.exp(-np.arange(len(signal)) / (time_constant * sample_rate))


def _add_at(out: np.ndarray, sound: np.ndarray, times: np.ndarray, sample_rate: int) -> None:
    for start in np.round(times * sample_rate).astype(int):
        stop = min(start + len(sound), len(out))
        out[start:stop] += sound[: stop - start]


def _normalised(signal: np.ndarray, *, peak: float) -> np.ndarray:
    largest = np.abs(signal).max(initial=0.0)
    scale = peak / largest if largest > 0 else 0.0
    return (signal * scale).astype(np.float32)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
