"""Agreement metrics from contingency tables, their uncertainty, and agreement across k."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from songmix.analysis.agreement import (
    METRIC_RANGES,
    agreement_across_k,
    agreement_from_tables,
    agreement_with_uncertainty,
    bootstrap_tables,
    contingency_table,
    half_sample_tables,
    permutation_tables,
)
from songmix.analysis.labels import validate_label_pair


def sklearn_scores(labels_a, labels_b) -> dict[str, float]:
    return {
        "ari": metrics.adjusted_rand_score(labels_a, labels_b),
        "nmi": metrics.normalized_mutual_info_score(labels_a, labels_b),
        "ami": metrics.adjusted_mutual_info_score(labels_a, labels_b),
    }


def related_labels(rng, n_tracks, k_a, k_b, *, share):
    """Labels b copy a (mod k_b) for a `share` of tracks and are random otherwise."""
    labels_a = rng.integers(0, k_a, n_tracks)
    labels_b = np.where(rng.random(n_tracks) < share, labels_a % k_b, rng.integers(0, k_b, n_tracks))
    return labels_a, labels_b


@pytest.mark.parametrize("case", range(60))
def test_table_metrics_equal_sklearn(case):
    rng = np.random.default_rng(case)
    n_tracks = int(rng.integers(2, 300))
    labels_a, labels_b = related_labels(
        rng, n_tracks, int(rng.integers(1, 7)), int(rng.integers(1, 7)), share=rng.random()
    )
    table = contingency_table(validate_label_pair(labels_a, labels_b))
    ours = agreement_from_tables(table)
    for name, expected in sklearn_scores(labels_a, labels_b).items():
        assert ours[name] == pytest.approx(expected, abs=1e-10), name


def test_table_metrics_equal_sklearn_on_bootstrap_resamples_with_empty_clusters():
    rng = np.random.default_rng(7)
    # Tiny clusters so that resamples miss some of them (empty rows/columns in the table).
    labels_a = np.r_[rng.integers(0, 3, 40), [3, 4]]
    labels_b = np.r_[rng.integers(0, 4, 40), [4, 5]]
    pair = validate_label_pair(labels_a, labels_b)
    saw_empty = False
    for _ in range(40):
        resample = rng.integers(0, pair.n_tracks, pair.n_tracks)
        codes = pair.codes_a[resample] * pair.n_clusters_b + pair.codes_b[resample]
        table = np.bincount(codes, minlength=pair.n_clusters_a * pair.n_clusters_b).reshape(
            pair.n_clusters_a, pair.n_clusters_b
        )
        saw_empty |= bool((table.sum(axis=1) == 0).any())
        ours = agreement_from_tables(table[None])
        for name, expected in sklearn_scores(labels_a[resample], labels_b[resample]).items():
            assert ours[name][0] == pytest.approx(expected, abs=1e-10), name
    assert saw_empty


def test_batched_tables_give_the_same_values_as_one_at_a_time():
    rng = np.random.default_rng(3)
    tables = rng.integers(0, 30, size=(5, 3, 4))
    batched = agreement_from_tables(tables)
    for index, table in enumerate(tables):
        single = agreement_from_tables(table)
        for name in batched:
            assert batched[name][index] == pytest.approx(float(single[name]), abs=1e-12)


def test_bootstrap_tables_keep_the_track_count_and_centre_on_the_observed_table():
    table = np.array([[50, 10], [5, 35]])
    draws = bootstrap_tables(table, n_resamples=4000, rng=np.random.default_rng(0))
    assert draws.shape == (4000, 2, 2)
    assert (draws.sum(axis=(1, 2)) == table.sum()).all()
    np.testing.assert_allclose(draws.mean(axis=0), table, rtol=0.05)


def test_half_sample_tables_draw_half_the_tracks_without_replacement():
    table = np.array([[50, 10], [5, 36]])
    draws = half_sample_tables(table, n_resamples=4000, rng=np.random.default_rng(0))
    assert draws.shape == (4000, 2, 2)
    assert (draws.sum(axis=(1, 2)) == table.sum() // 2).all()
    assert (draws <= table).all()
    np.testing.assert_allclose(draws.mean(axis=0), table * (table.sum() // 2) / table.sum(), rtol=0.05)


def test_permutation_tables_keep_both_cluster_sizes_and_centre_on_independence():
    rng = np.random.default_rng(1)
    pair = validate_label_pair(*related_labels(rng, 300, 3, 4, share=0.9))
    observed = contingency_table(pair)
    draws = permutation_tables(pair, n_permutations=2000, rng=np.random.default_rng(2))
    assert draws.shape == (2000, 3, 4)
    assert (draws.sum(axis=2) == observed.sum(axis=1)).all()
    assert (draws.sum(axis=1) == observed.sum(axis=0)).all()
    independent = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / pair.n_tracks
    np.testing.assert_allclose(draws.mean(axis=0), independent, rtol=0.1, atol=0.5)


def test_perfect_agreement_scores_one_and_ignores_label_names():
    rng = np.random.default_rng(0)
    labels_a = rng.integers(0, 4, 200)
    renamed = np.array(["w", "x", "y", "z"])[(labels_a + 2) % 4]
    result = agreement_with_uncertainty(labels_a, renamed, n_bootstrap=200, n_permutations=200)
    for metric in result.metrics:
        assert metric.value == pytest.approx(1.0)
        assert metric.ci_low == pytest.approx(1.0)
        assert metric.p_value == pytest.approx(1 / 201)
    assert not result.degenerate and result.notes == ()


def test_independent_labels_look_like_chance():
    # Over many independent data sets: p-values spread out, intervals cover 0 (chance).
    results = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        labels_a, labels_b = rng.integers(0, 5, 400), rng.integers(0, 4, 400)
        results.append(agreement_with_uncertainty(labels_a, labels_b, n_bootstrap=200, n_permutations=200))
    assert all(abs(result.ari.value) < 0.02 for result in results)
    for name in ("ari", "ami"):
        estimates = [getattr(result, name) for result in results]
        assert sum(e.ci_low <= 0.0 <= e.ci_high for e in estimates) >= 19
        assert sum(e.p_value < 0.05 for e in estimates) <= 3
        assert np.median([e.p_value for e in estimates]) > 0.2
    assert sum(result.nmi.ci_low > result.nmi.null_upper for result in results) <= 3


@pytest.mark.parametrize("interval_method", ["half-sample", "bootstrap"])
def test_interval_methods_agree_on_a_clear_relation(interval_method):
    rng = np.random.default_rng(8)
    labels_a, labels_b = related_labels(rng, 800, 4, 4, share=0.5)
    result = agreement_with_uncertainty(
        labels_a, labels_b, n_bootstrap=300, n_permutations=0, interval_method=interval_method
    )
    assert result.interval_method == interval_method
    for metric in result.metrics:
        assert metric.ci_low < metric.value < metric.ci_high
        assert 0.02 < metric.ci_high - metric.ci_low < 0.15


@pytest.mark.parametrize("interval_method", ["half-sample", "bootstrap"])
def test_intervals_of_a_near_perfect_agreement_stay_inside_each_metrics_range(interval_method):
    # Two of 300 tracks moved: the half-sample spread around 0.984 reaches past 1 unless cut.
    labels_a = np.repeat(np.arange(6), 50)
    labels_b = labels_a.copy()
    labels_b[:2] = 5
    result = agreement_with_uncertainty(labels_a, labels_b, interval_method=interval_method)
    for metric in result.metrics:
        low, high = METRIC_RANGES[metric.name]
        assert low <= metric.ci_low <= metric.value <= metric.ci_high <= high
    assert result.ari.value < 1.0 and result.ari.ci_high == 1.0
    across = agreement_across_k({2: labels_a}, {2: labels_b}, n_bootstrap=200)
    assert (across[["ari_ci_high", "nmi_ci_high", "ami_ci_high"]] <= 1.0).all(axis=None)


def test_related_labels_beat_the_null():
    rng = np.random.default_rng(5)
    labels_a, labels_b = related_labels(rng, 600, 5, 5, share=0.4)
    result = agreement_with_uncertainty(labels_a, labels_b, n_bootstrap=400, n_permutations=400)
    for metric in result.metrics:
        assert metric.p_value < 0.01
        assert metric.ci_low > metric.null_upper
        assert metric.ci_low < metric.value < metric.ci_high
    frame = result.to_frame()
    assert list(frame.index) == ["ari", "nmi", "ami"]
    assert frame.loc["ari", "value"] == pytest.approx(metrics.adjusted_rand_score(labels_a, labels_b))


def test_same_seed_same_answer_and_counts_do_not_disturb_each_other():
    rng = np.random.default_rng(9)
    labels_a, labels_b = related_labels(rng, 200, 3, 3, share=0.3)
    first = agreement_with_uncertainty(labels_a, labels_b, n_bootstrap=100, n_permutations=100, random_state=4)
    again = agreement_with_uncertainty(labels_a, labels_b, n_bootstrap=100, n_permutations=100, random_state=4)
    more_permutations = agreement_with_uncertainty(
        labels_a, labels_b, n_bootstrap=100, n_permutations=300, random_state=4
    )
    pd.testing.assert_frame_equal(first.to_frame(), again.to_frame())
    assert first.ari.ci_low == more_permutations.ari.ci_low


def test_zero_resamples_skip_interval_and_null():
    rng = np.random.default_rng(2)
    result = agreement_with_uncertainty(*related_labels(rng, 50, 2, 2, share=0.5), n_bootstrap=0, n_permutations=0)
    assert np.isfinite(result.ari.value)
    assert np.isnan([result.ari.ci_low, result.ari.null_upper, result.ari.p_value]).all()


def test_one_cluster_is_reported_not_fatal():
    rng = np.random.default_rng(4)
    result = agreement_with_uncertainty(np.zeros(30, dtype=int), rng.integers(0, 3, 30), n_bootstrap=50, n_permutations=50)
    assert result.degenerate
    assert any("one cluster" in note for note in result.notes)
    assert result.ari.value == 0.0 and result.ami.value == 0.0
    assert result.ari.p_value == 1.0


def test_few_tracks_get_a_note():
    result = agreement_with_uncertainty([0, 1, 0, 1, 1], [1, 0, 1, 0, 0], n_bootstrap=20, n_permutations=20)
    assert any("too coarse" in note for note in result.notes)


@pytest.mark.parametrize(
    ("labels_a", "labels_b", "hint"),
    [
        ([0, 1, 1], [0, 1], "align both clusterings"),
        ([0], [0], "at least 2 tracks"),
        ([[0, 1], [1, 0]], [0, 1], "1-D"),
        ([0.2, 0.8, 0.5], [0, 1, 1], "hard labels"),
        ([0.0, np.nan, 1.0], [0, 1, 1], "NaN"),
    ],
)
def test_bad_labels_raise_with_a_hint(labels_a, labels_b, hint):
    with pytest.raises(ValueError, match=hint):
        agreement_with_uncertainty(labels_a, labels_b, n_bootstrap=10, n_permutations=10)


@pytest.mark.parametrize(
    ("option", "value"), [("n_bootstrap", -1), ("n_permutations", 2.5), ("confidence", 1.0), ("interval_method", "jackknife")]
)
def test_bad_options_raise(option, value):
    with pytest.raises(ValueError, match=option):
        agreement_with_uncertainty([0, 1, 0, 1], [0, 1, 1, 1], **{option: value})


def test_agreement_across_k_covers_shared_ks_and_ground_truth():
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 3, 150)
    labels_a_by_k = {k: truth % k for k in (2, 3, 4)}
    labels_b_by_k = {k: np.where(rng.random(150) < 0.5, truth % k, rng.integers(0, k, 150)) for k in (3, 4, 5)}
    table = agreement_across_k(
        labels_a_by_k, labels_b_by_k, ground_truth=truth, name_a="spotify", name_b="aubio", n_bootstrap=50
    )
    pairs = set(zip(table["comparison"], table["k"]))
    assert pairs == {("spotify vs aubio", 3), ("spotify vs aubio", 4)} | {
        ("spotify vs truth", k) for k in (2, 3, 4)
    } | {("aubio vs truth", k) for k in (3, 4, 5)}
    row = table[(table["comparison"] == "spotify vs truth") & (table["k"] == 3)].iloc[0]
    assert row["ari"] == pytest.approx(1.0)
    aubio_row = table[(table["comparison"] == "spotify vs aubio") & (table["k"] == 4)].iloc[0]
    assert aubio_row["ari"] == pytest.approx(metrics.adjusted_rand_score(labels_a_by_k[4], labels_b_by_k[4]))
    assert (table["ari_ci_low"] <= table["ari"] + 1e-12).all()


def test_agreement_across_k_needs_a_shared_k():
    with pytest.raises(ValueError, match="no k in common"):
        agreement_across_k({2: [0, 1, 0]}, {3: [0, 1, 2]})
    with pytest.raises(ValueError, match="positive integers"):
        agreement_across_k({0: [0, 1]}, {0: [0, 1]})
