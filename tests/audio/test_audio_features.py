from __future__ import annotations

import aubio
import numpy as np
import pytest
from audio_files import SONG_BPM, SONG_KEY, SONG_MODE, write_audio
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.signal import resample_poly

from songmix.audio import features, synthetic
from songmix.audio.accuracy import key_weighted_score, tempo_accuracy
from songmix.audio.decode import resample
from songmix.audio.features import (
    AUBIO_CLUSTER_FEATURES,
    AUBIO_FEATURE_COLUMNS,
    FEATURE_TABLE,
    FLAG_MEANINGS,
    AubioFeatures,
    estimate_key,
    extract_features,
    extract_file,
    key_name,
    mode_name,
)

RATE = 22050


# --- the frame signals are aubio's own, on aligned frames ------------------------------------


def test_spectral_frames_hold_aubio_outputs_of_one_window_every_stride():
    samples = synthetic.song(117.0, 4, 1, seconds=3.0, seed=3)
    frames = features.spectral_frames(samples)
    starts = np.arange(0, len(samples) - features.SPECTRAL_STRIDE + 1, features.SPECTRAL_STRIDE)
    windows = [np.ascontiguousarray(samples[start: start + features.FRAME_SIZE])
               for start in starts]
    phase_vocoder = aubio.pvoc(features.FRAME_SIZE, features.FRAME_SIZE)
    centroid = aubio.specdesc("centroid", features.FRAME_SIZE)
    cepstrum = aubio.mfcc(features.FRAME_SIZE, 40, 13, RATE)
    their_centroids, their_mfcc = [], []
    for window in windows:  # aubio returns its own output buffers: read each before the next
        spectrum = phase_vocoder(window)
        their_centroids.append(centroid(spectrum)[0])
        their_mfcc.append(np.array(cepstrum(spectrum)))

    assert len(frames.levels_db) == len(windows)
    np.testing.assert_allclose(frames.descriptors[:, 0], their_centroids, rtol=1e-5)
    np.testing.assert_allclose(frames.mfcc, their_mfcc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(frames.levels_db,
                               [max(aubio.db_spl(window), -100.0) for window in windows],
                               atol=1e-4)
    np.testing.assert_allclose(frames.zero_crossing_rates,
                               [aubio.zero_crossing_rate(window) for window in windows])


def test_rhythm_frames_hold_aubio_onsets():
    half_rate = features._half_rate(synthetic.song(131.0, 2, 1, seconds=8.0, seed=5))
    detector = aubio.onset(features.ONSET_METHOD, features.RHYTHM_FRAME_SIZE,
                           features.RHYTHM_HOP_SIZE, features.HALF_RATE)
    hops = features._hops(half_rate, features.RHYTHM_HOP_SIZE)
    their_onsets = [detector(hop)[0] > 0 for hop in hops]

    rhythm = features.rhythm_frames(half_rate)

    np.testing.assert_array_equal(rhythm.onsets, their_onsets)
    assert rhythm.onsets.sum() > 10
    assert len(rhythm.onset_strength) == len(rhythm.harmonic_change) == len(hops)


def test_track_beats_collects_aubio_tempo_beats():
    half_rate = features._half_rate(synthetic.drum_pattern(120.0, seconds=10.0))

    beats = features.track_beats(half_rate)

    assert len(beats.beat_seconds) >= 10
    assert np.median(np.diff(beats.beat_seconds)) == pytest.approx(0.5, rel=0.04)


@pytest.mark.parametrize("n_samples", [0, 1, 2, 11, 4096, 4097])
def test_half_rate_equals_resample_poly_with_the_half_band_filter(n_samples):
    samples = np.random.default_rng(11).standard_normal(n_samples).astype(np.float32)
    expected = (resample_poly(samples, 1, 2, window=features._half_band_filter()) if n_samples
                else np.zeros(0))

    np.testing.assert_allclose(features._half_rate(samples), expected, atol=1e-6)


def test_flatness_is_one_for_white_spectra_and_low_for_tones():
    flat = np.ones((2, 513))
    peaked = np.full((2, 513), 1e-4)
    peaked[:, 40] = 10.0

    np.testing.assert_allclose(features.spectral_flatness(flat), 1.0, rtol=1e-6)
    assert features.spectral_flatness(peaked).max() < 0.01


# --- the feature table --------------------------------------------------------------------


def test_every_column_is_documented_once_with_unit_and_source():
    names = [spec.name for spec in FEATURE_TABLE]

    assert len(names) == len(set(names)) == len(AUBIO_FEATURE_COLUMNS)
    assert {"tempo", "onset_rate", "loudness", "loudness_range", "spectral_flux_std",
            "mfcc_12_std", "pitch_confidence", "zero_crossing_rate", "key", "mode"} <= set(names)
    for spec in FEATURE_TABLE:
        assert spec.unit and spec.parameters and spec.aubio_object and spec.description
        assert spec.computed_by in ("aubio", "songmix")
    computed_by_songmix = {spec.name for spec in FEATURE_TABLE if spec.computed_by == "songmix"}
    assert computed_by_songmix == {"tempo", "key", "mode", "key_strength",
                                   "spectral_flatness_mean", "spectral_flatness_std"}


def test_cluster_features_are_continuous_columns():
    assert set(AUBIO_CLUSTER_FEATURES) <= set(AUBIO_FEATURE_COLUMNS)
    assert not {"key", "mode"} & set(AUBIO_CLUSTER_FEATURES)


# --- accuracy on signals with a known tempo and key -----------------------------------------


def test_tempo_of_synthetic_songs_is_at_a_metrical_level_of_the_truth():
    # Accuracy at the notated level is measured on real music (test_audio_realmusic.py);
    # these songs only check that the tempo lies on the beat grid.
    tempi = np.array([84.0, 97.0, 110.0, 123.0, 137.0, 152.0])
    estimates = [
        extract_features(synthetic.song(bpm, 0, 1, seconds=15.0, seed=index), RATE).values["tempo"]
        for index, bpm in enumerate(tempi)
    ]

    assert tempo_accuracy(estimates, tempi).acc2 == 1.0


def test_key_of_chord_progressions_in_every_key():
    keys = [(key, mode) for key in range(12) for mode in (0, 1)]
    results = [extract_features(synthetic.chord_progression(key, mode, seconds=6.0), RATE)
               for key, mode in keys]

    score = key_weighted_score([r.values["key"] for r in results],
                               [r.values["mode"] for r in results],
                               [key for key, _ in keys], [mode for _, mode in keys])
    assert score == 1.0


def test_song_mp3_file(song_mp3):
    result = extract_file(song_mp3)

    assert result.flags == ()
    assert result.values["tempo"] == pytest.approx(SONG_BPM, rel=0.04)
    assert (result.values["key"], result.values["mode"]) == (SONG_KEY, SONG_MODE)
    assert list(result.values) == list(AUBIO_FEATURE_COLUMNS)


def test_brighter_timbre_raises_centroid_and_louder_raises_loudness():
    quiet = 0.1 * synthetic.chord_progression(0, 1, seconds=4.0)
    noisy = quiet + 0.05 * np.random.default_rng(0).standard_normal(len(quiet)).astype(np.float32)

    quiet_values = extract_features(quiet, RATE).values
    noisy_values = extract_features(noisy, RATE).values
    loud_values = extract_features(10 * quiet, RATE).values

    assert noisy_values["spectral_centroid_mean"] > 2 * quiet_values["spectral_centroid_mean"]
    assert noisy_values["spectral_flatness_mean"] > quiet_values["spectral_flatness_mean"]
    assert loud_values["loudness"] == pytest.approx(quiet_values["loudness"] + 20.0, abs=0.01)


def test_pitch_confidence_tells_tones_from_noise():
    tone = (0.5 * np.sin(2 * np.pi * 330 * np.arange(5 * RATE) / RATE)).astype(np.float32)
    noise = (0.3 * np.random.default_rng(1).standard_normal(5 * RATE)).astype(np.float32)

    tone_values = extract_features(tone, RATE).values
    noise_values = extract_features(noise, RATE).values

    assert tone_values["pitch_confidence"] > 0.9 and tone_values["voiced_fraction"] > 0.9
    assert noise_values["pitch_confidence"] < 0.5 and noise_values["voiced_fraction"] < 0.1


# --- bad input: finite values and flags ---------------------------------------------------


def _assert_complete_and_finite(result: AubioFeatures) -> None:
    assert list(result.values) == list(AUBIO_FEATURE_COLUMNS)
    assert np.isfinite(list(result.values.values())).all()
    assert set(result.flags) <= set(FLAG_MEANINGS)


@pytest.mark.parametrize(
    ("samples", "expected_flags"),
    [
        (np.zeros(10 * RATE, dtype=np.float32), {"silent", "no_beat", "no_key"}),
        (np.zeros(0, dtype=np.float32), {"silent", "short", "no_beat", "no_key"}),
        (synthetic.song(120.0, 2, 1, seconds=1.0), {"short", "no_beat"}),
        ((0.2 * np.random.default_rng(2).standard_normal(8 * RATE)).astype(np.float32),
         {"no_beat"}),
        ((0.5 * np.sin(2 * np.pi * 440 * np.arange(6 * RATE) / RATE)).astype(np.float32),
         {"no_beat"}),
    ],
    ids=["silence", "empty", "one-second", "noise", "steady-tone"],
)
def test_degenerate_clips_give_finite_values_and_flags(samples, expected_flags):
    result = extract_features(samples, RATE)

    _assert_complete_and_finite(result)
    assert set(result.flags) == expected_flags
    if "no_beat" in result.flags:
        assert result.values["tempo"] == 0.0
    if "no_key" in result.flags:
        assert result.values["key"] == result.values["mode"] == -1


@pytest.mark.parametrize(("sample_rate", "channels"), [(8000, 1), (48000, 2)])
def test_low_and_high_rate_files_give_the_same_tempo_and_key(tmp_path, sample_rate, channels):
    mono = resample(synthetic.song(104.0, 7, 0, seconds=12.0), RATE, sample_rate)
    path = write_audio(tmp_path / "clip.flac", np.stack([mono] * channels, axis=1), sample_rate)

    result = extract_file(path)

    _assert_complete_and_finite(result)
    assert result.values["tempo"] == pytest.approx(104.0, rel=0.04)
    assert (result.values["key"], result.values["mode"]) == (7, 0)


def test_long_files_are_capped_and_flagged(tmp_path):
    path = write_audio(tmp_path / "long.flac", synthetic.song(100.0, 0, 1, seconds=8.0), RATE)

    result = extract_file(path, max_seconds=6.0)

    assert "capped" in result.flags
    _assert_complete_and_finite(result)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float32, st.integers(0, 3 * RATE),
              elements=st.floats(-1.0, 1.0, width=32)))
def test_any_finite_clip_gives_finite_features(samples):
    _assert_complete_and_finite(extract_features(samples, RATE))


@pytest.mark.parametrize(
    ("samples", "sample_rate", "match"),
    [
        (np.zeros((100, 2)), RATE, "mono"),
        (np.array([0.0, np.nan]), RATE, "NaN"),
        (np.zeros(100), 96000, "sample_rate"),
        (np.zeros(100), 22050.0, "sample_rate"),
    ],
)
def test_invalid_input_raises(samples, sample_rate, match):
    with pytest.raises(ValueError, match=match):
        extract_features(samples, sample_rate)


# --- the tempo: periodicity of aubio's frame signals -------------------------------------


FRAME_RATE = 43.0  # frame signals per second in these tests


def _pulses(period_s: float, seconds: float = 30.0, seed: int = 4) -> np.ndarray:
    """A frame signal with a pulse (three frames wide, as an onset function's peaks are)
    every period_s over weak noise."""
    signal = np.random.default_rng(seed).uniform(0.0, 0.05, int(seconds * FRAME_RATE) + 2)
    peaks = np.round(np.arange(0.0, seconds - 0.1, period_s) * FRAME_RATE).astype(int) + 1
    for offset, height in ((-1, 0.5), (0, 1.0), (1, 0.5)):
        signal[peaks + offset] += height
    return signal


def test_periodicity_peaks_at_the_pulse_period_and_its_multiples():
    bpm = np.array([60.0, 90.0, 120.0, 180.0])

    values = features.periodicity(_pulses(0.5), frame_rate=FRAME_RATE, bpm=bpm)

    assert values[2] > 0.8 and values[0] > 0.8  # 120 BPM and its half
    assert values[1] < 0.2 and values[3] < 0.2
    assert ((values >= 0) & (values <= 1)).all()


def test_periodicity_of_a_constant_signal_is_zero():
    values = features.periodicity(np.ones(500), frame_rate=FRAME_RATE, bpm=np.array([100.0]))

    assert values.tolist() == [0.0]


@pytest.mark.parametrize("bpm", [64.0, 93.0, 128.0, 171.0])
def test_clip_tempo_of_a_pulse_with_chord_changes_on_the_beat(bpm):
    period = 60.0 / bpm

    tempo = features.clip_tempo(_pulses(period), _pulses(period, seed=5), frame_rate=FRAME_RATE)

    assert tempo == pytest.approx(bpm, rel=0.04)


def test_harmonic_change_picks_the_beat_among_equal_onsets():
    # Equal notes every 0.375 s (160 per minute); the harmony changes every other note.
    onsets = _pulses(0.375)
    chords = _pulses(0.75, seed=6)

    assert features.clip_tempo(onsets, np.zeros_like(onsets), frame_rate=FRAME_RATE) == (
        pytest.approx(160.0, rel=0.04))
    assert features.clip_tempo(onsets, chords, frame_rate=FRAME_RATE) == (
        pytest.approx(80.0, rel=0.04))


def test_clip_tempo_of_noise_is_zero():
    noise = np.random.default_rng(7).uniform(0.0, 1.0, int(30 * FRAME_RATE))

    assert features.clip_tempo(noise, noise[::-1].copy(), frame_rate=FRAME_RATE) == 0.0


def test_harmonic_change_rises_at_a_chord_change_only():
    frequencies = np.fft.rfftfreq(512, 1.0 / features.HALF_RATE)

    def chord(pitches: list[float]) -> np.ndarray:
        spectrum = np.zeros(len(frequencies), dtype=np.float32)
        for pitch in pitches:
            spectrum[np.argmin(np.abs(frequencies - pitch))] = 1.0
        return spectrum

    c_major, f_major = chord([261.6, 329.6, 392.0]), chord([349.2, 440.0, 523.3])
    change = features.harmonic_change(np.stack([c_major, c_major, f_major, f_major]),
                                      features.HALF_RATE)

    assert change[1] == change[3] == 0.0
    assert change[2] > 0.5


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "mode"), [(0, 1), (9, 0), (6, 1), (11, 0)])
def test_estimate_key_recovers_a_rotated_profile(key, mode):
    profile = features.MAJOR_PROFILE if mode == 1 else features.MINOR_PROFILE

    estimated_key, estimated_mode, strength = estimate_key(np.roll(profile, key))

    assert (estimated_key, estimated_mode) == (key, mode)
    assert strength == pytest.approx(1.0)


def test_flat_chroma_has_no_key():
    assert estimate_key(np.ones(12)) == (-1, -1, 0.0)


def test_key_and_mode_names():
    assert [key_name(key) for key in (0, 1, 11, -1)] == ["C", "C#", "B", "none"]
    assert [mode_name(mode) for mode in (1, 0, -1)] == ["major", "minor", "none"]
    with pytest.raises(ValueError, match="pitch class"):
        key_name(12)
    with pytest.raises(ValueError, match="mode"):
        mode_name(2)
