"""Demo previews: deterministic, carrying the features' tempo, key, level and timbre, cached."""

from __future__ import annotations

import os

import aubio
import numpy as np
import pytest
import soundfile as sf

from songmix.sources.demo_audio import (
    SAMPLE_RATE,
    render_catalog_audio,
    render_preview,
    render_seed,
)
from songmix.sources.demo_catalog import generate_catalog

KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])


@pytest.fixture(scope="module")
def one_track_per_group():
    """A 30-track catalog's first track of each of its six groups, with its rendered clip."""
    catalog = generate_catalog(30, seed=3)
    first_rows = catalog.truth.drop_duplicates("group")
    features_by_id = {f["id"]: f for f in catalog.audio_features}
    return [
        (features_by_id[track_id], render_preview(features_by_id[track_id],
                                                  seed=render_seed(catalog.seed, track_id)))
        for track_id in first_rows["track_id"]
    ]


def _aubio_bpm(samples: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> float:
    # hop 256 at 22.05 kHz is aubio's designed time resolution (512 at 44.1 kHz); hop 512 here
    # halves tempos above ~100 BPM.
    hop = 256
    tracker = aubio.tempo("default", 1024, hop, sample_rate)
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    for start in range(0, len(samples) - hop, hop):
        tracker(samples[start:start + hop])
    return float(tracker.get_bpm())


def _chroma(samples: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Energy per pitch class (C = 0) between 100 and 2000 Hz, from 4096-sample FFT frames."""
    frame = 4096
    frames = np.lib.stride_tricks.sliding_window_view(samples, frame)[::frame // 2]
    power = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2
    frequencies = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    band = (frequencies > 100.0) & (frequencies < 2000.0)
    pitch_classes = np.round(12 * np.log2(frequencies[band] / 440.0) + 69).astype(int) % 12
    return np.bincount(pitch_classes, weights=power[:, band].sum(axis=0), minlength=12)


def _spectral_centroid(samples: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1.0 / SAMPLE_RATE)
    return float(np.sum(frequencies * power) / np.sum(power))


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def test_render_is_deterministic_per_seed(one_track_per_group):
    features, clip = one_track_per_group[0]
    first, again = render_preview(features, seed=7), render_preview(features, seed=7)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(render_preview(features, seed=7), render_preview(features, seed=8))


def test_clip_is_mono_float32_within_full_scale(one_track_per_group):
    for _, clip in one_track_per_group:
        assert clip.dtype == np.float32 and clip.shape == (30 * SAMPLE_RATE,)
        assert np.isfinite(clip).all() and np.abs(clip).max() <= 1.0
        assert _rms(clip) > 1e-3


def test_aubio_finds_the_feature_tempo(one_track_per_group):
    errors = [abs(_aubio_bpm(clip) / f["tempo"] - 1.0) for f, clip in one_track_per_group]
    assert max(errors) < 0.04, errors


def test_tonic_is_among_the_three_strongest_pitch_classes(one_track_per_group):
    for features, clip in one_track_per_group:
        strongest = np.argsort(_chroma(clip))[-3:]
        assert features["key"] in strongest, (features["key"], strongest)


def test_major_clips_correlate_best_with_their_own_major_key(one_track_per_group):
    for features, _ in one_track_per_group:
        major = {**features, "mode": 1}
        chroma = _chroma(render_preview(major, seed=1))
        correlations = [
            np.corrcoef(np.roll(KRUMHANSL_MAJOR, key), chroma)[0, 1] for key in range(12)
        ]
        assert int(np.argmax(correlations)) == features["key"]


def test_loudness_sets_the_level():
    features = generate_catalog(6, seed=1).audio_features[0]
    quiet = render_preview({**features, "loudness": -24.0}, seed=1)
    loud = render_preview({**features, "loudness": -8.0}, seed=1)
    assert 20 * np.log10(_rms(loud) / _rms(quiet)) > 10.0


def test_acousticness_darkens_the_timbre():
    features = generate_catalog(6, seed=1).audio_features[0]
    acoustic = render_preview({**features, "acousticness": 0.95, "liveness": 0.1}, seed=1)
    electronic = render_preview({**features, "acousticness": 0.02, "liveness": 0.1}, seed=1)
    assert _spectral_centroid(acoustic) < 0.8 * _spectral_centroid(electronic)


@pytest.mark.parametrize(
    "change, message",
    [({"tempo": None}, "tempo"), ({"tempo": 0.0}, "tempo"), ({"energy": None}, "energy")],
)
def test_bad_features_raise(change, message):
    features = {**generate_catalog(6, seed=1).audio_features[0], **change}
    with pytest.raises(ValueError, match=message):
        render_preview(features, seed=1)


def test_catalog_audio_is_rendered_once_and_decodes(tmp_path):
    catalog = generate_catalog(4, seed=9)
    reports = []
    paths = render_catalog_audio(catalog, tmp_path, workers=2,
                                 progress=lambda done, total: reports.append((done, total)))
    assert set(paths) == {t["id"] for t in catalog.tracks}
    assert reports[0] == (0, 4) and reports[-1] == (4, 4)
    for path in paths.values():
        assert path.parent == tmp_path / catalog.fingerprint
        samples, sample_rate = sf.read(path, dtype="float32")
        assert sample_rate == SAMPLE_RATE and samples.ndim == 1
        assert abs(len(samples) / SAMPLE_RATE - 30.0) < 0.2
    assert sorted(p.name for p in (tmp_path / catalog.fingerprint).iterdir()) == sorted(
        p.name for p in paths.values()
    ), "no temporary files may be left behind"

    modified = {track_id: os.stat(path).st_mtime_ns for track_id, path in paths.items()}
    reports.clear()
    again = render_catalog_audio(catalog, tmp_path, workers=2,
                                 progress=lambda done, total: reports.append((done, total)))
    assert again == paths and reports == [(4, 4)]
    assert {track_id: os.stat(path).st_mtime_ns for track_id, path in again.items()} == modified


def test_mismatched_catalog_serves_another_tracks_audio(tmp_path):
    matched = generate_catalog(3, seed=4)
    mismatched = generate_catalog(3, seed=4, audio_mismatch=True)
    matched_paths = render_catalog_audio(matched, tmp_path, workers=1)
    mismatched_paths = render_catalog_audio(mismatched, tmp_path, workers=1)
    truth = mismatched.truth
    for track_id, source_id in zip(truth["track_id"], truth["audio_track_id"]):
        assert source_id != track_id
        assert mismatched_paths[track_id].read_bytes() == matched_paths[source_id].read_bytes()
