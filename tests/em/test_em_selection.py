"""select_k: the information criteria find the generating number of components."""

from __future__ import annotations

import numpy as np
import pytest

from songmix import em


@pytest.mark.parametrize(
    ("n_components", "covariance_type", "seed"),
    [(2, "full", 0), (3, "full", 1), (4, "full", 2), (3, "diag", 3), (5, "spherical", 4)],
)
def test_bic_picks_the_generating_k_on_separated_mixtures(make_blobs, n_components, covariance_type, seed):
    X, _ = make_blobs(
        150 * n_components, n_components, 3, separation=8.0, seed=seed, covariance_type=covariance_type
    )
    selection = em.select_k(
        X, range(1, 8), covariance_type=covariance_type, n_init=3, random_state=0
    )
    assert selection.chosen_k == n_components
    assert selection.ks == tuple(range(1, 8))
    assert selection.values is selection.bic
    assert selection.chosen_model.n_components == n_components
    assert int(np.argmin(selection.bic)) == selection.ks.index(n_components)


def test_curves_come_from_the_models(blobs):
    X, _ = blobs
    selection = em.select_k(X, [2, 3], criterion="aic", n_init=2, random_state=0)
    for k, model, bic, aic in zip(selection.ks, selection.models, selection.bic, selection.aic):
        assert model.n_components == k
        assert bic == pytest.approx(model.bic(X))
        assert aic == pytest.approx(model.aic(X))
    assert selection.values is selection.aic
    assert selection.failures == (None, None)


def test_standardized_selection_stores_the_scaler(blobs):
    X, _ = blobs
    selection = em.select_k(X * [1, 10, 100, 1000], [2, 3], n_init=2, random_state=0, standardize=True)
    assert all(model.scaler is not None for model in selection.models)
    assert selection.chosen_k == 3


def test_a_k_that_fails_is_recorded_and_not_chosen(monkeypatch, blobs):
    X, _ = blobs
    # Components under 80 samples count as empty: k = 8 (75 samples each) cannot succeed.
    monkeypatch.setattr("songmix.em._mstep.MIN_COMPONENT_COUNT", 80.0)
    selection = em.select_k(X, [3, 8], n_init=2, random_state=0)
    assert selection.models[1] is None
    assert selection.bic[1] == np.inf and selection.aic[1] == np.inf
    assert "emptied" in selection.failures[1]
    assert selection.chosen_k == 3


@pytest.mark.parametrize(
    ("ks", "options", "message"),
    [
        ([], {}, "ks is empty"),
        ([0, 2], {}, r"outside \[1, 600\]"),
        ([2, 601], {}, r"outside \[1, 600\]"),
        ([2], {"criterion": "icl"}, "Unknown criterion 'icl'"),
        ([2], {"covariance_type": "banded"}, "Unknown covariance_type 'banded'"),
    ],
)
def test_bad_selection_requests_are_refused(blobs, ks, options, message):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        em.select_k(X, ks, **options)


@pytest.mark.parametrize(("covariance_type", "seed"), [("diag", 3), ("spherical", 4), ("full", 5)])
def test_select_model_picks_the_generating_covariance_type_and_k(make_blobs, covariance_type, seed):
    X, _ = make_blobs(600, 3, 3, separation=8.0, seed=seed, covariance_type=covariance_type)
    selection = em.select_model(X, range(1, 6), n_init=3, random_state=0)
    assert (selection.chosen_covariance_type, selection.chosen_k) == (covariance_type, 3)
    assert selection.chosen_model.covariance_type == covariance_type
    best = min((row for row in selection.candidates() if row["status"] == "fitted"), key=lambda r: r["bic"])
    assert (best["covariance_type"], best["k"]) == (covariance_type, 3) and best["chosen"]
    assert em.selection_warnings(selection) == []


def test_pairs_the_data_cannot_support_are_left_out_with_the_reason():
    X = np.random.default_rng(0).normal(size=(100, 9))
    selection = em.select_model(X, range(2, 11), n_init=2, random_state=0)
    left_out = {(pair.covariance_type, pair.k): pair.reason for pair in selection.left_out}
    # A full 9 x 9 covariance has 45 free parameters: 100 tracks support 2 components.
    assert sorted(k for covariance_type, k in left_out if covariance_type == "full") == list(range(3, 11))
    assert "45 free parameters" in left_out[("full", 3)] and "33.3 each" in left_out[("full", 3)]
    # 9 variances per component: 11 components would be needed to leave one out.
    assert not any(covariance_type in ("tied", "diag", "spherical") for covariance_type, _ in left_out)
    assert selection.by_type["full"].ks == (2,)
    statuses = {(row["covariance_type"], row["k"]): row["status"] for row in selection.candidates()}
    assert len(statuses) == 4 * 9 and statuses[("full", 3)] == "left out" and statuses[("tied", 10)] == "fitted"
    assert em.unsupported_reason("tied", 10, 45, 9) == (
        "the tied covariance has 45 free parameters but there are only 45 samples to estimate it from")


def test_under_a_prior_every_pair_is_fitted():
    X = np.random.default_rng(0).normal(size=(60, 9))
    selection = em.select_model(X, [2, 6], covariance_types=["full"], n_init=2, random_state=0,
                                prior=em.ConjugatePrior())
    assert selection.left_out == () and selection.by_type["full"].ks == (2, 6)
    assert all(model is not None for model in selection.by_type["full"].models)


def test_a_choice_at_the_edge_of_the_range_is_flagged(make_blobs):
    X, _ = make_blobs(600, 5, 2, separation=10.0, seed=1, covariance_type="spherical")
    selection = em.select_model(X, [2, 3, 4], covariance_types=["spherical"], n_init=3, random_state=0)
    assert selection.chosen_k == 4
    assert em.selection_warnings(selection) == [
        "k = 4 is the largest k tried: the BIC may fall further beyond it (try a wider --ks)"]


def test_the_largest_supported_k_is_flagged_too(make_blobs):
    # 60 samples of 9 features: full covariances support k = 1 only; diag up to 6.
    X, _ = make_blobs(60, 8, 9, separation=12.0, seed=2, covariance_type="diag")
    selection = em.select_model(X, range(2, 11), covariance_types=["diag"], n_init=3, random_state=0)
    assert max(selection.chosen.ks) == 6 and selection.chosen_k == 6
    assert "k = 6 is the largest k the data support with diag covariances" in em.selection_warnings(selection)[0]


def test_a_fixed_k_chooses_only_the_covariance_type_and_flags_small_components(make_blobs):
    X, _ = make_blobs(90, 2, 2, separation=8.0, seed=0, covariance_type="spherical")
    selection = em.select_model(X, [2, 3, 20], fixed_k=20, n_init=2, random_state=0)
    assert selection.chosen_k == 20 and selection.fixed_k
    assert {row["k"] for row in selection.candidates()} == {20}
    sizes = selection.chosen_model.weights * len(X)
    small = sizes < 2 + (0 if selection.chosen_covariance_type == "tied" else 1)  # mean, own variance
    warnings = em.selection_warnings(selection)
    assert small.any() and len(warnings) == 1
    assert warnings[0].startswith(f"{small.sum()} of 20 components (")
    assert "hold fewer samples" in warnings[0] and "parameters each estimates" in warnings[0]
    with pytest.raises(ValueError, match="fixed_k=5 is not among ks"):
        em.select_model(X, [2, 3], fixed_k=5)


def test_no_supported_pair_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(20, 9))
    with pytest.raises(ValueError, match="support no mixture of"):
        em.select_model(X, [3, 4], covariance_types=["full"])
