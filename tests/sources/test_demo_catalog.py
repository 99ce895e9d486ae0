"""The demo catalog: deterministic, Spotify-shaped, valid, and clusterable into its groups."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from songmix.sources.demo_catalog import (
    BLOCK_TRACKS,
    GENRE_PROTOTYPES,
    TRUTH_COLUMNS,
    UNIT_FEATURES,
    _derangement,
    generate_catalog,
)
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES, SPOTIFY_FEATURE_COLUMNS

BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")
ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


def _features_frame(catalog) -> pd.DataFrame:
    return pd.DataFrame(list(catalog.audio_features))


def _gmm_ari(catalog, n_components: int) -> float:
    features = _features_frame(catalog)[list(SPOTIFY_CLUSTER_FEATURES)].to_numpy()
    standardized = (features - features.mean(axis=0)) / features.std(axis=0)
    mixture = GaussianMixture(n_components, covariance_type="full", n_init=3, random_state=0)
    return adjusted_rand_score(catalog.truth["group"], mixture.fit_predict(standardized))


def test_same_arguments_give_the_same_catalog():
    first, second = generate_catalog(50, seed=11), generate_catalog(50, seed=11)
    assert first.tracks == second.tracks
    assert first.audio_features == second.audio_features
    pd.testing.assert_frame_equal(first.truth, second.truth)
    assert first.fingerprint == second.fingerprint


def test_other_seed_gives_other_tracks_and_fingerprint():
    first, second = generate_catalog(50, seed=11), generate_catalog(50, seed=12)
    assert first.fingerprint != second.fingerprint
    assert {t["id"] for t in first.tracks}.isdisjoint(t["id"] for t in second.tracks)
    assert first.audio_features[0]["tempo"] != second.audio_features[0]["tempo"]


def test_fingerprint_covers_every_argument():
    arguments = [
        dict(n_tracks=40), dict(n_tracks=41), dict(n_tracks=40, n_groups=5),
        dict(n_tracks=40, year=2021), dict(n_tracks=40, seed=1),
        dict(n_tracks=40, audio_mismatch=True),
    ]
    fingerprints = {generate_catalog(**a).fingerprint for a in arguments}
    assert len(fingerprints) == len(arguments)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_gaussian_mixture_recovers_three_groups_of_sixty_tracks(seed):
    assert _gmm_ari(generate_catalog(60, n_groups=3, seed=seed), 3) > 0.8


def test_gaussian_mixture_recovers_six_groups_of_a_thousand_tracks():
    assert _gmm_ari(generate_catalog(1000), 6) > 0.9


def test_features_lie_in_spotify_ranges():
    features = _features_frame(generate_catalog(1000, n_groups=len(GENRE_PROTOTYPES)))
    for name in UNIT_FEATURES:
        assert features[name].between(0.0, 1.0).all(), name
    assert features["loudness"].between(-60.0, 0.0).all()
    assert features["tempo"].between(40.0, 250.0).all()
    assert set(features["key"]) <= set(range(12))
    assert set(features["mode"]) == {0, 1}
    assert set(features["time_signature"]) <= {3, 4, 5, 6, 7}
    assert (features["duration_ms"] > 0).all()
    assert set(SPOTIFY_FEATURE_COLUMNS) <= set(features.columns)
    assert (features["type"] == "audio_features").all()


def test_tracks_are_spotify_shaped_with_unique_ids_and_isrcs():
    catalog = generate_catalog(300, year=2020)
    ids = [t["id"] for t in catalog.tracks]
    isrcs = [t["external_ids"]["isrc"] for t in catalog.tracks]
    assert len(set(ids)) == len(ids) and all(BASE62_ID.match(i) for i in ids)
    assert len(set(isrcs)) == len(isrcs) and all(ISRC.match(i) for i in isrcs)
    for track, features in zip(catalog.tracks, catalog.audio_features):
        assert track["uri"] == f"spotify:track:{track['id']}"
        assert track["preview_url"] == f"previews/{track['id']}.mp3"
        assert track["type"] == "track" and track["artists"] and track["name"]
        assert all(BASE62_ID.match(a["id"]) and a["type"] == "artist" for a in track["artists"])
        album = track["album"]
        assert re.match(r"^2020-\d{2}-\d{2}$", album["release_date"])
        assert album["release_date_precision"] == "day" and BASE62_ID.match(album["id"])
        assert 0 <= track["popularity"] <= 100 and track["track_number"] >= 1
        assert features["id"] == track["id"] and features["duration_ms"] == track["duration_ms"]


def test_groups_are_balanced_and_take_the_first_prototypes():
    catalog = generate_catalog(62, n_groups=3)
    sizes = catalog.truth["group"].value_counts()
    assert sizes.max() - sizes.min() <= 1 and len(sizes) == 3
    assert catalog.group_names == tuple(p.name for p in GENRE_PROTOTYPES[:3])
    names = catalog.truth.groupby("group")["group_name"].unique()
    assert all(list(names[g]) == [catalog.group_names[g]] for g in range(3))


@pytest.mark.parametrize("n_small", [1, 37, BLOCK_TRACKS, BLOCK_TRACKS + 5])
def test_a_smaller_catalog_is_the_first_tracks_of_a_larger_one(n_small):
    """Runs of different sizes on one warehouse must agree about the tracks they share."""
    small, large = generate_catalog(n_small), generate_catalog(BLOCK_TRACKS + 40)
    assert small.tracks == large.tracks[:n_small]
    assert small.audio_features == large.audio_features[:n_small]
    pd.testing.assert_frame_equal(small.truth, large.truth.iloc[:n_small])
    sizes = small.truth["group"].value_counts()
    assert sizes.max() - sizes.min() <= 1


class _IdentityPermutation:
    """A generator whose every permutation is the identity: each position a fixed point."""

    def permutation(self, n):
        return np.arange(n)


@pytest.mark.parametrize("n", range(2, 9))
def test_derangements_leave_no_track_on_its_own_audio(n):
    for rng in [_IdentityPermutation(), *(np.random.default_rng(seed) for seed in range(50))]:
        permutation = _derangement(n, rng)
        assert sorted(permutation) == list(range(n))
        assert (permutation != np.arange(n)).all()


def test_truth_matches_the_features_when_audio_matches():
    catalog = generate_catalog(40)
    assert tuple(catalog.truth.columns) == TRUTH_COLUMNS
    features = _features_frame(catalog)
    assert (catalog.truth["audio_track_id"] == catalog.truth["track_id"]).all()
    assert (catalog.truth["audio_group"] == catalog.truth["group"]).all()
    for column in ("tempo", "key", "mode"):
        np.testing.assert_array_equal(catalog.truth[column], features[column])


def test_audio_mismatch_swaps_every_preview_and_keeps_tracks_and_features():
    matched = generate_catalog(40, seed=5)
    mismatched = generate_catalog(40, seed=5, audio_mismatch=True)
    assert mismatched.tracks == matched.tracks
    assert mismatched.audio_features == matched.audio_features
    truth = mismatched.truth
    assert (truth["audio_track_id"] != truth["track_id"]).all()
    assert sorted(truth["audio_track_id"]) == sorted(truth["track_id"])
    source = matched.truth.set_index("track_id").loc[truth["audio_track_id"]]
    for column in ("tempo", "key", "mode"):
        np.testing.assert_array_equal(truth[column], source[column])
    np.testing.assert_array_equal(truth["audio_group"], source["group"])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(n_tracks=0), "n_tracks"),
        (dict(n_tracks=10, n_groups=0), "n_groups"),
        (dict(n_tracks=10, n_groups=len(GENRE_PROTOTYPES) + 1), "n_groups"),
        (dict(n_tracks=10, year=1200), "year"),
        (dict(n_tracks=1, audio_mismatch=True), "audio_mismatch"),
    ],
)
def test_bad_arguments_raise_with_the_argument_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        generate_catalog(**arguments)
