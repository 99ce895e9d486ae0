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
