"""Contingency, Hungarian matching, cluster profiles and cluster names."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from songmix.analysis.compare import (
    cluster_feature_means,
    compare_clusterings,
    matched_cluster_profiles,
    name_clusters,
)


def test_relabelled_copy_matches_every_cluster_perfectly():
    rng = np.random.default_rng(0)
    labels_a = rng.integers(0, 4, 120)
    relabel = np.array([2, 0, 3, 1])
    result = compare_clusterings(labels_a, relabel[labels_a], name_a="spotify", name_b="aubio")
    assert result.ari == pytest.approx(1.0) and result.nmi == pytest.approx(1.0) and result.ami == pytest.approx(1.0)
    assert [(p.cluster_a, p.cluster_b) for p in result.matched_pairs] == [(a, int(relabel[a])) for a in range(4)]
    assert all(p.precision == p.recall == p.jaccard == 1.0 for p in result.matched_pairs)
    matched = result.matched_contingency.to_numpy()
    assert (matched == np.diag(np.diag(matched))).all()
    assert result.contingency.index.name == "spotify" and result.contingency.columns.name == "aubio"
    assert not result.degenerate and result.notes == ()


def test_pair_statistics_follow_their_definitions():
    rng = np.random.default_rng(1)
    labels_a = rng.integers(0, 3, 300)
    labels_b = np.where(rng.random(300) < 0.7, (labels_a + 1) % 3, rng.integers(0, 3, 300))
    result = compare_clusterings(labels_a, labels_b)
    assert result.ari == pytest.approx(metrics.adjusted_rand_score(labels_a, labels_b))
    assert [pair.cluster_b for pair in result.matched_pairs] == [1, 2, 0]
    for pair in result.matched_pairs:
        in_a, in_b = labels_a == pair.cluster_a, labels_b == pair.cluster_b
        overlap = int((in_a & in_b).sum())
        assert pair.overlap == overlap == result.contingency.loc[pair.cluster_a, pair.cluster_b]
        assert pair.precision == pytest.approx(overlap / in_b.sum())
        assert pair.recall == pytest.approx(overlap / in_a.sum())
        assert pair.jaccard == pytest.approx(overlap / (in_a | in_b).sum())


def test_unequal_cluster_counts_leave_the_surplus_unmatched():
    labels_a = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    labels_b = np.array(["x", "x", "x", "y", "y", "y", "y", "y"])
    result = compare_clusterings(labels_a, labels_b)
    assert len(result.matched_pairs) == 2
    assert result.unmatched_a == (2,) and result.unmatched_b == ()
    assert list(result.matched_contingency.index) == [0, 1, 2]
    assert result.matched_contingency.loc[2].sum() == 2


def test_one_cluster_is_flagged_not_fatal():
    result = compare_clusterings(np.zeros(25, dtype=int), np.arange(25) % 3)
    assert result.degenerate
    assert result.ari == 0.0 and result.nmi == 0.0
    assert len(result.matched_pairs) == 1
    assert any("one cluster" in note for note in result.notes)


def test_bad_input_raises_with_a_hint():
    with pytest.raises(ValueError, match="align both clusterings"):
        compare_clusterings([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="at least 2 tracks"):
        compare_clusterings([], [])


@pytest.fixture
def quiet_and_loud_tracks():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 40)
    features = pd.DataFrame(
        {
            "acousticness": np.r_[rng.normal(0.9, 0.05, 40), rng.normal(0.1, 0.05, 80)],
            "loudness": np.r_[rng.normal(-20, 1, 40), rng.normal(-5, 1, 40), rng.normal(-12, 1, 40)],
            "valence": rng.normal(0.5, 0.1, 120),
            "title": ["song"] * 120,
        }
    )
    return labels, features


def test_cluster_feature_means_per_cluster(quiet_and_loud_tracks):
    labels, features = quiet_and_loud_tracks
    means = cluster_feature_means(labels, features)
    assert list(means.columns) == ["n_tracks", "acousticness", "loudness", "valence"]
    assert list(means["n_tracks"]) == [40, 40, 40]
    assert means.loc[1, "loudness"] == pytest.approx(features["loudness"][labels == 1].mean())
    with pytest.raises(ValueError, match="same order"):
        cluster_feature_means(labels[:-1], features)


def test_names_come_from_the_most_deviant_features(quiet_and_loud_tracks):
    labels, features = quiet_and_loud_tracks
    means = cluster_feature_means(labels, features)
    names = name_clusters(means, features)
    assert names[0] == "acoustic, quiet"
    assert names[1].startswith("loud") or names[1].startswith("electric")
    assert "acoustic" not in names[1]
    assert name_clusters(means, features) == names
    overall = features[["acousticness", "loudness", "valence"]].mean().to_frame().T
    assert name_clusters(overall, features) == ["typical"]
    assert name_clusters(means, features, n_words=1)[0] in {"acoustic", "quiet"}
    assert name_clusters(means, features, words={})[0].startswith("high acousticness")


def test_profiles_pair_up_named_clusters(quiet_and_loud_tracks):
    labels, features = quiet_and_loud_tracks
    other = np.where(labels == 2, 6, labels + 5)  # b merges clusters 1 and 2 of a
    comparison = compare_clusterings(labels, other)
    profiles = matched_cluster_profiles(comparison, labels, other, features, name_a="spotify", name_b="aubio")
    assert list(profiles.columns[:5]) == ["pair", "side", "cluster", "n_tracks", "cluster_name"]
    assert len(profiles) == 2 * len(comparison.matched_pairs) + len(comparison.unmatched_a)
    first = profiles[profiles["pair"] == 1]
    assert list(first["side"]) == ["spotify", "aubio"]
    assert list(first["cluster_name"]) == ["acoustic, quiet", "acoustic, quiet"]
    assert profiles["pair"].isna().sum() == 1
    with pytest.raises(ValueError, match="feature_columns"):
        matched_cluster_profiles(comparison, labels, other, features, feature_columns=["tempo"])
