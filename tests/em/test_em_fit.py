"""fit_gmm's contract: seeds, reproducibility, starts, failures, warnings, memory paths."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import songmix.em._estep as estep
import songmix.em._init as init_module
import songmix.em._mstep as mstep
from songmix import em


def test_best_seed_has_the_highest_log_likelihood_and_ties_go_to_the_earliest(blobs):
    X, _ = blobs
    model = em.fit_gmm(X, 3, n_init=6, random_state=0)
    assert len(model.seeds) == 6
    assert [seed.seed for seed in model.seeds] == list(range(6))
    best = model.seeds[model.best_seed]
    highest = max(seed.log_likelihood for seed in model.seeds)
    assert best.log_likelihood == pytest.approx(highest, abs=1e-10)
    assert all(seed.log_likelihood < highest - 1e-10 for seed in model.seeds[: model.best_seed])
    assert model.log_likelihood == best.log_likelihood
    np.testing.assert_array_equal(model.means, best.means)
    assert model.log_likelihood == pytest.approx(em.score_samples(model, X).mean(), abs=1e-12)
    assert model.converged and best.converged


def test_each_seed_reproduces_alone(blobs):
    X, _ = blobs
    model = em.fit_gmm(X, 3, n_init=4, random_state=11)
    for seed in model.seeds:
        alone = em.fit_gmm(X, 3, n_init=1, random_state=seed.random_state)
        # The seeds' shared pass sums blocks in the same order, so the fits agree closely.
        np.testing.assert_allclose(alone.means, seed.means, rtol=1e-9, atol=1e-9)
        assert alone.n_iter == seed.n_iter


def test_same_random_state_same_fit_and_different_states_differ(make_blobs):
    X, _ = make_blobs(400, 4, 3, separation=2.0, seed=1)
    first = em.fit_gmm(X, 4, n_init=3, random_state=5)
    again = em.fit_gmm(X, 4, n_init=3, random_state=5)
    other = em.fit_gmm(X, 4, n_init=3, random_state=6)
    np.testing.assert_array_equal(first.means, again.means)
    assert [s.random_state for s in first.seeds] != [s.random_state for s in other.seeds]


def test_model_is_immutable(blobs):
    X, _ = blobs
    model = em.fit_gmm(X, 3, n_init=1, random_state=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.weights = np.ones(3) / 3
    with pytest.raises(ValueError):
        model.means[0, 0] = 1.0


def test_random_init_is_the_notebook_start(blobs):
    X, _ = blobs
    model = em.fit_gmm(X, 3, init="random", n_init=1, max_iter=0, random_state=0, reg_covar=0.0)
    distance_to_nearest_row = np.abs(X[None, :, :] - model.means[:, None, :]).max(axis=2).min(axis=1)
    assert (distance_to_nearest_row < 1e-12).all()
    np.testing.assert_allclose(model.weights, 1 / 3)
    expected = np.cov(X, rowvar=False, bias=True)
    for covariance in model.covariances:
        np.testing.assert_allclose(covariance, expected, atol=1e-12)


@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_both_inits_recover_separated_blobs(blobs, init):
    X, labels = blobs
    model = em.fit_gmm(X, 3, init=init, n_init=5, random_state=0)
    assert em.adjusted_rand_index(labels, em.predict(model, X)) > 0.95


def test_max_iter_zero_scores_the_start(blobs):
    X, _ = blobs
    model = em.fit_gmm(X, 3, n_init=2, max_iter=0, random_state=0)
    assert model.n_iter == 0 and not model.converged
    assert all(len(seed.log_likelihood_trace) == 1 for seed in model.seeds)


def test_non_convergence_warns(blobs):
    X, _ = blobs
    with pytest.warns(em.ConvergenceWarning, match="max_iter=1"):
        model = em.fit_gmm(X, 3, n_init=2, max_iter=1, random_state=0)
    assert not model.converged and model.n_iter == 1


def test_an_emptied_component_fails_its_seed_with_a_reason():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    far_away = {
        "weights": np.array([0.5, 0.5]),
        "means": np.array([[0.0, 0.0], [1e3, 1e3]]),
        "covariances": np.stack([np.eye(2), 1e-2 * np.eye(2)]),
    }
    with pytest.raises(em.FitFailedError, match="component 1 emptied"):
        em.fit_gmm(X, 2, initial=far_away)


def test_a_component_left_with_one_sample_says_so_and_what_to_change():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    X[0] = [2.0, 2.0]
    on_one_sample = np.zeros((200, 2))
    on_one_sample[:, 0] = 1.0
    on_one_sample[0] = [0.0, 1.0]  # component 1 starts on sample 0 alone
    with pytest.raises(em.FitFailedError) as raised:
        em.fit_gmm(X, 2, initial={"responsibilities": on_one_sample})
    message = str(raised.value)
    # Its count falls a hair under one sample: the message shows by how much, not "1".
    assert "component 1 collapsed onto a single sample: it holds 1 - " in message
    assert "less than the 1 a component needs" in message
    assert "Change initial= so that every component starts on several samples" in message


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_a_collapsed_component_fails_its_seed_not_nan(covariance_type):
    X = np.concatenate([np.random.default_rng(0).normal(size=(50, 1)), [[100.0]]])
    onto_outlier = {
        "weights": np.array([0.9, 0.1]),
        "means": np.array([[0.0], [100.0]]),
        "covariances": np.ones((2, 1, 1)) if covariance_type == "full" else np.ones((2, 1)),
    }
    with pytest.raises(em.FitFailedError, match="component 1 is not positive definite"):
        em.fit_gmm(X, 2, covariance_type=covariance_type, initial=onto_outlier, reg_covar=0.0)
    # With the default regularisation the same start is a (degenerate but finite) fit.
    model = em.fit_gmm(X, 2, covariance_type=covariance_type, initial=onto_outlier)
    assert np.isfinite(model.log_likelihood)


def test_failed_seeds_are_kept_out_of_the_choice(monkeypatch, blobs):
    X, _ = blobs
    # Four components on three blobs: one blob is split, into parts of 35 to 140 samples.
    # Calling a part under 80 samples "empty" fails some seeds but not all.
    monkeypatch.setattr("songmix.em._mstep.MIN_COMPONENT_COUNT", 80.0)
    model = em.fit_gmm(X, 4, n_init=6, random_state=0)
    failed = [seed for seed in model.seeds if seed.failed]
    assert failed, "expected some seed to empty a component at this threshold"
    for seed in failed:
        assert "emptied" in seed.failed_reason
        assert seed.means is None and seed.log_likelihood == -np.inf
    assert not model.seeds[model.best_seed].failed


def test_degenerate_data_never_yields_nan():
    X = np.vstack([np.zeros((40, 3)), np.eye(3)])
    for covariance_type in ("full", "tied", "diag", "spherical"):
        try:
            model = em.fit_gmm(X, 3, covariance_type=covariance_type, n_init=3, random_state=0)
        except em.FitFailedError:
            continue
        assert np.isfinite(model.log_likelihood)
        assert np.isfinite(em.predict_proba(model, X)).all()


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_blocks_threads_and_uncached_features_give_the_same_fit(monkeypatch, make_blobs, covariance_type):
    X, _ = make_blobs(3000, 3, 3, separation=3.0, seed=4)
    reference = em.fit_gmm(X, 3, covariance_type=covariance_type, n_init=3, random_state=0)
    monkeypatch.setattr(estep, "_MIN_BLOCK_VALUES", 1000)  # many blocks, spread over threads
    monkeypatch.setattr(estep, "_MAX_BLOCK_VALUES", 1000)
    monkeypatch.setattr(estep, "_FEATURE_CACHE_BYTES", 0)  # features rebuilt per block
    blocked = em.fit_gmm(X, 3, covariance_type=covariance_type, n_init=3, random_state=0, n_jobs=2)
    np.testing.assert_allclose(blocked.means, reference.means, rtol=1e-9, atol=1e-9)
    assert blocked.log_likelihood == pytest.approx(reference.log_likelihood, abs=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_precision_factors_invert_the_covariances_and_name_the_first_bad_one(covariance_type):
    rng = np.random.default_rng(3)
    mixing = rng.normal(size=(3, 2, 3, 3))
    covariances = mixing @ mixing.transpose(0, 1, 3, 2) + 0.1 * np.eye(3)
    covariances[1, 1] = -np.eye(3)  # not positive definite: seed 1 fails at component 1
    if covariance_type == "tied":
        covariances = covariances[:, 1]
    factors, bad = mstep.precisions_cholesky(covariances.copy(), covariance_type)
    assert list(bad) == ([-1, 0, -1] if covariance_type == "tied" else [-1, 1, -1])
    assert np.isfinite(factors).all()
    usable = bad < 0
    # U U' is the inverse of the covariance for the usable seeds, and U is upper triangular.
    product = covariances[usable] @ (factors[usable] @ np.swapaxes(factors[usable], -1, -2))
    np.testing.assert_allclose(product, np.broadcast_to(np.eye(3), product.shape), atol=1e-9)
    np.testing.assert_array_equal(np.tril(factors[usable], -1), 0.0)


def test_kmeans_plusplus_on_a_subset_for_large_inputs(monkeypatch, blobs):
    X, labels = blobs
    monkeypatch.setattr(init_module, "_KMEANS_PLUSPLUS_MAX_SAMPLES", 50)
    model = em.fit_gmm(X, 3, n_init=3, random_state=0)
    assert em.adjusted_rand_index(labels, em.predict(model, X)) > 0.95


def test_kmeans_plusplus_spreads_its_centers():
    X = np.concatenate([np.zeros((100, 2)), np.full((100, 2), 10.0), np.full((3, 2), -10.0)])
    centers = init_module.kmeans_plusplus(X[None], 3, [np.random.default_rng(0)])[0]
    assert {tuple(c) for c in centers} == {(0.0, 0.0), (10.0, 10.0), (-10.0, -10.0)}


def test_a_sample_between_two_centers_is_split_evenly():
    features = estep.Features.build(np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [3.0, 0.0]]), "full")
    centers = np.array([[[-1.0, 0.0], [1.0, 0.0]]]) - features.center
    counts = init_module._nearest_center_statistics(features, centers, second_order=False)[0, :, -1]
    np.testing.assert_array_equal(counts, [1.5, 2.5])


def test_lloyd_steps_move_centers_to_their_samples_and_leave_a_center_without_any():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]])
    features = estep.Features.build(X, "full")
    centers = np.array([[[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]]]) - features.center
    sums = init_module._nearest_center_statistics(features, centers, second_order=False)
    moved = init_module._centroids(sums, centers) + features.center
    np.testing.assert_allclose(moved[0], [[1.0, 0.0], [11.0, 10.0], [100.0, 100.0]])


@pytest.mark.parametrize("n_rows", [1, 5, 2000])
def test_proportional_draws_land_where_the_running_sum_passes_the_target(n_rows):
    rng = np.random.default_rng(n_rows)
    weights = rng.random((4, n_rows)) * (rng.random((4, n_rows)) > 0.3)  # some rows weigh nothing
    weights[:, 0] = 0.5  # every seed has some weight
    uniforms = rng.random((4, 3))
    rows = init_module._draw_proportionally(weights, uniforms)
    for seed_weights, seed_uniforms, seed_rows in zip(weights, uniforms, rows):
        targets = seed_uniforms * seed_weights.sum()
        before = np.array([seed_weights[:row].sum() for row in seed_rows])
        # The drawn row is the one whose share of the total contains the target.
        assert (before <= targets).all() and (targets <= before + seed_weights[seed_rows]).all()
        assert (seed_weights[seed_rows] > 0).all()


def test_dataframe_columns_name_the_features(blobs):
    pandas = pytest.importorskip("pandas")
    X, _ = blobs
    frame = pandas.DataFrame(X, columns=["energy", "valence", "tempo", "loudness"])
    model = em.fit_gmm(frame, 3, n_init=1, random_state=0)
    assert model.feature_names == ("energy", "valence", "tempo", "loudness")


def test_bic_and_aic_follow_their_formulas(blobs):
    X, _ = blobs
    model = em.fit_gmm(X, 3, n_init=2, random_state=0)
    total = em.score_samples(model, X).sum()
    k, d = 3, X.shape[1]
    assert model.n_parameters == k * d * (d + 1) // 2 + k * d + k - 1
    assert model.bic(X) == pytest.approx(-2 * total + model.n_parameters * np.log(len(X)))
    assert model.aic(X) == pytest.approx(-2 * total + 2 * model.n_parameters)


@pytest.mark.parametrize(
    ("covariance_type", "expected"),
    [("full", 3 * 10 + 12 + 2), ("tied", 10 + 12 + 2), ("diag", 12 + 12 + 2), ("spherical", 3 + 12 + 2)],
)
def test_parameter_counts_match_sklearn(blobs, covariance_type, expected):
    from sklearn.mixture import GaussianMixture

    X, _ = blobs
    model = em.fit_gmm(X, 3, covariance_type=covariance_type, n_init=1, random_state=0)
    reference = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    assert model.n_parameters == expected == reference._n_parameters()
    assert model.bic(X) == pytest.approx(reference.bic(X), rel=1e-6)
