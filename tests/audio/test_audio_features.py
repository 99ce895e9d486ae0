from __future__ import annotations

import aubio
import numpy as np
import pytest
from audio_files import SONG_BPM, SONG_KEY, SONG_MODE, write_audio
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.lib.stride_tricks import sliding_window_view
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
    beat_level_tempo,
    estimate_key,
    extract_features,
    extract_file,
    key_name,
    mode_name,
)

RATE = 22050


@pytest.fixture(scope="module")
def spectral_frames() -> tuple[np.ndarray, np.ndarray]:
    """Frames of a 3 s song (shape (n, 1024)) and their numpy magnitude spectra."""
    samples = synthetic.song(117.0, 4, 1, seconds=3.0, seed=3)
    frames = sliding_window_view(samples, features.FRAME_SIZE)[:: features.HOP_SIZE]
    return frames, features._magnitude_spectrogram(frames)


def _aubio_per_frame(descriptor, magnitudes: np.ndarray) -> np.ndarray:
    """Run an aubio object that takes a cvec on each magnitude frame. Shape (n_frames, ...)."""
    outputs = []
    for frame in magnitudes:
        grain = aubio.cvec(features.FRAME_SIZE)
        grain.norm = frame.astype(np.float32)
        outputs.append(np.array(descriptor(grain)))
    return np.array(outputs)


# --- numpy versions agree with aubio frame by frame ------------------------------------------


def test_spectrogram_equals_aubio_pvoc(spectral_frames):
    frames, magnitudes = spectral_frames
    signal = frames[:, : features.HOP_SIZE].ravel()  # the hops the frames start at
    phase_vocoder = aubio.pvoc(features.FRAME_SIZE, features.HOP_SIZE)
    hops = signal.reshape(-1, features.HOP_SIZE)
    aubio_norms = np.array([np.array(phase_vocoder(hop).norm) for hop in hops])

    # aubio's frame k ends at hop k, so numpy's frame j (starting at hop j) is aubio's j + 1.
    np.testing.assert_allclose(magnitudes[: len(hops) - 1], aubio_norms[1:], atol=1e-3)


@pytest.mark.parametrize("name", ["centroid", "spread", "rolloff", "specflux"])
def test_spectral_descriptors_equal_aubio_specdesc(spectral_frames, name):
    _, magnitudes = spectral_frames
    centroid, spread = features.spectral_centroid_spread_bins(magnitudes)
    ours = {"centroid": centroid, "spread": spread,
            "rolloff": features.spectral_rolloff_bins(magnitudes),
            "specflux": features.spectral_flux(magnitudes)}[name]

    theirs = _aubio_per_frame(aubio.specdesc(name, features.FRAME_SIZE), magnitudes)[:, 0]

    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3 * np.abs(theirs).max())


def test_mfcc_equals_aubio_mfcc(spectral_frames):
    _, magnitudes = spectral_frames
    reference = aubio.mfcc(features.FRAME_SIZE, features.N_MEL_FILTERS, features.N_MFCC, RATE)

    np.testing.assert_allclose(features.mfcc(magnitudes), _aubio_per_frame(reference, magnitudes),
                               atol=1e-3)


def test_frame_levels_and_zero_crossings_equal_aubio(spectral_frames):
    frames, _ = spectral_frames
    contiguous = [np.ascontiguousarray(frame) for frame in frames]

    # frames overlap by half: the signal is every frame's first hop plus the last frame's rest
    samples = np.r_[frames[:, : features.HOP_SIZE].ravel(), frames[-1, features.HOP_SIZE:]]
    their_levels = [aubio.db_spl(frame) for frame in contiguous]
    np.testing.assert_allclose(features._levels_db(frames), their_levels, atol=1e-3)
    np.testing.assert_allclose(features._frame_levels_db(samples, len(frames)), their_levels,
                               atol=1e-3)
    np.testing.assert_allclose(features._zero_crossing_rates(samples, len(frames)),
                               [aubio.zero_crossing_rate(frame) for frame in contiguous])


@pytest.mark.parametrize(
    "samples",
    [
        synthetic.song(131.0, 2, 1, seconds=8.0, seed=5),
        # starts silent: no onset at the start, then aubio's start-of-clip rule still applies
        np.r_[np.zeros(3000, dtype=np.float32), synthetic.song(96.0, 9, 0, seconds=6.0, seed=6)],
        (0.2 * np.random.default_rng(7).standard_normal(4 * RATE)).astype(np.float32),
        np.zeros(2 * RATE, dtype=np.float32),
    ],
    ids=["song", "silent-start", "noise", "silence"],
)
def test_onset_hops_equal_aubio_onset(samples):
    half_rate = features._half_rate(samples)
    detector = aubio.onset(features.ONSET_METHOD, features.ONSET_FRAME_SIZE,
                           features.ONSET_HOP_SIZE, features.AUBIO_SAMPLE_RATE)
    hops = features._hops(half_rate, features.ONSET_HOP_SIZE)
    theirs = np.flatnonzero([detector(hop)[0] for hop in hops])

    np.testing.assert_array_equal(features.onset_hops(half_rate), theirs)


@pytest.mark.parametrize(
    "samples",
    [
        synthetic.song(150.0, 2, 1, seconds=12.0, seed=8),
        # silent start: aubio's silence gate drops the beats predicted there
        np.r_[np.zeros(2 * RATE, dtype=np.float32), synthetic.song(88.0, 5, 0, seconds=10.0,
                                                                  seed=9)],
        (0.2 * np.random.default_rng(10).standard_normal(8 * RATE)).astype(np.float32),
        np.zeros(6 * RATE, dtype=np.float32),
    ],
    ids=["song", "silent-start", "noise", "silence"],
)
def test_track_beats_equals_aubio_tempo(samples):
    half_rate = features._half_rate(samples)
    tracker = aubio.tempo(features.TEMPO_METHOD, features.TEMPO_FRAME_SIZE,
                          features.TEMPO_HOP_SIZE, features.AUBIO_SAMPLE_RATE)
    hops = features._hops(half_rate, features.TEMPO_HOP_SIZE)
    their_beats = [tracker.get_last_s() for hop in hops if tracker(hop)[0]]

    ours = features.track_beats(half_rate)

    # aubio computes in float32: a beat may land a sample or two away (0.2 ms at 11025 Hz)
    np.testing.assert_allclose(ours.beat_seconds, their_beats, atol=5e-4)
    assert ours.period_s == pytest.approx(tracker.get_period_s(), rel=1e-5)
    assert ours.confidence == pytest.approx(tracker.get_confidence(), rel=1e-4, abs=1e-6)


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
        assert spec.computed_by in ("aubio", "numpy", "aubio+numpy")


def test_cluster_features_are_continuous_columns():
    assert set(AUBIO_CLUSTER_FEATURES) <= set(AUBIO_FEATURE_COLUMNS)
    assert not {"key", "mode"} & set(AUBIO_CLUSTER_FEATURES)


# --- accuracy on signals with a known tempo and key -----------------------------------------


def test_tempo_of_synthetic_songs_is_within_four_percent():
    # aubio's own range; outside it the metrical level depends on the arrangement
    # (the demo catalog's accuracy over 66-190 BPM is measured by benchmarks/extract.py).
    tempi = np.array([84.0, 97.0, 110.0, 123.0, 137.0, 152.0])
    estimates = [
        extract_features(synthetic.song(bpm, 0, 1, seconds=15.0, seed=index), RATE).values["tempo"]
        for index, bpm in enumerate(tempi)
    ]

    assert tempo_accuracy(estimates, tempi).acc1 >= 0.9


def test_key_of_chord_progressions_in_every_key():
    keys = [(key, mode) for key in range(12) for mode in (0, 1)]
    results = [extract_features(synthetic.chord_progression(key, mode, seconds=6.0), RATE)
               for key, mode in keys]

    score = key_weighted_score([r.values["key"] for r in results],
                               [r.values["mode"] for r in results],
                               [key for key, _ in keys], [mode for _, mode in keys])
    assert score >= 0.7


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


# --- the metrical-level check -------------------------------------------------------------


FRAME_RATE = 40.0  # onset-strength frames per second in these tests


def _pulses(period_s: float, strengths: tuple[float, ...], seconds: float = 20.0) -> np.ndarray:
    """Onset strength with pulses every period_s cycling through strengths, over noise."""
    envelope = np.random.default_rng(4).uniform(0.0, 0.05, int(seconds * FRAME_RATE))
    for index, start in enumerate(np.arange(0.0, seconds - 0.1, period_s)):
        envelope[round(start * FRAME_RATE)] += strengths[index % len(strengths)]
    return envelope


def test_beats_on_the_pulse_keep_their_tempo():
    envelope = _pulses(0.25, (1.0, 0.1))  # quarter notes at 120 BPM with weak eighths
    beats = np.arange(0.0, 19.0, 0.5)

    assert beat_level_tempo(beats, envelope, period_s=0.5, frame_rate=FRAME_RATE) == (
        pytest.approx(120.0))


def test_every_other_beat_tracked_doubles_the_tempo():
    envelope = _pulses(0.25, (1.0, 0.8))  # 240 BPM of nearly equal pulses
    beats = np.arange(0.0, 19.0, 0.5)  # aubio at 120

    assert beat_level_tempo(beats, envelope, period_s=0.5, frame_rate=FRAME_RATE) == (
        pytest.approx(240.0))


def test_off_beats_tracked_halves_the_tempo():
    envelope = _pulses(0.5, (1.0,))  # 120 BPM, nothing between beats
    beats = np.arange(0.0, 19.0, 0.25)  # aubio at 240, every other beat on silence

    assert beat_level_tempo(beats, envelope, period_s=0.25, frame_rate=FRAME_RATE) == (
        pytest.approx(120.0))


def test_beats_that_do_not_stand_out_give_no_tempo():
    envelope = np.random.default_rng(5).uniform(0.5, 1.0, 800)
    beats = np.arange(0.0, 19.0, 0.5)

    assert beat_level_tempo(beats, envelope, period_s=0.5, frame_rate=FRAME_RATE) == 0.0


def test_beat_level_tempo_ignores_beats_off_aubio_final_period():
    envelope = _pulses(0.25, (1.0, 0.1))
    # aubio wandered at 0.7 s for most of the clip, then settled on 0.5 s
    beats = np.r_[np.arange(0.0, 12.0, 0.7), np.arange(12.0, 19.0, 0.5)]

    assert beat_level_tempo(beats, envelope, period_s=0.5, frame_rate=FRAME_RATE) == (
        pytest.approx(120.0))


def test_beat_level_tempo_rejects_unordered_beats():
    with pytest.raises(ValueError, match="increasing"):
        beat_level_tempo(np.array([1.0, 0.5]), np.ones(10), period_s=0.5, frame_rate=FRAME_RATE)


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
