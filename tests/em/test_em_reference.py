"""Same start as scikit-learn's GaussianMixture -> same fit; densities match scipy's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.mixture import GaussianMixture
from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters

from songmix import em

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _data_start(X: np.ndarray, n_components: int, covariance_type: str, seed: int) -> dict:
    """Equal weights, distinct random rows as means, the data covariance shaped per type."""
    rng = np.random.default_rng(seed)
    n_features = X.shape[1]
    covariance = np.cov(X, rowvar=False)
    shaped = {
        "full": np.stack([covariance] * n_components),
        "tied": covariance,
        "diag": np.tile(np.diag(covariance), (n_components, 1)),
        "spherical": np.full(n_components, np.diag(covariance).mean()),
    }[covariance_type]
    return {
        "weights": np.full(n_components, 1.0 / n_components),
        "means": X[rng.choice(len(X), n_components, replace=False)].reshape(n_components, n_features),
        "covariances": shaped,
    }


def _precisions(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(covariances)
    return 1.0 / covariances


def _fit_both(X, n_components, covariance_type, *, tol, max_iter, seed=0):
    start = _data_start(X, n_components, covariance_type, seed)
    reference = GaussianMixture(
        n_components,
        covariance_type=covariance_type,
        weights_init=start["weights"],
        means_init=start["means"],
        precisions_init=_precisions(start["covariances"], covariance_type),
        tol=tol,
        max_iter=max_iter,
        reg_covar=1e-6,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn when tol=0 never converges
        reference.fit(X)
        ours = em.fit_gmm(
            X, n_components, covariance_type=covariance_type, initial=start, tol=tol, max_iter=max_iter
        )
    return ours, reference


def _assert_same_fit(ours: em.GaussianMixtureModel, reference: GaussianMixture, X):
    np.testing.assert_allclose(ours.weights, reference.weights_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.means, reference.means_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.covariances, reference.covariances_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        ours.precisions_cholesky, reference.precisions_cholesky_, rtol=1e-6, atol=1e-6
    )
    assert ours.log_likelihood == pytest.approx(reference.score(X), abs=1e-6)
    # sklearn records the log-likelihood before each M-step; our trace adds the final one.
    np.testing.assert_allclose(
        ours.seeds[0].log_likelihood_trace[:-1], reference.lower_bounds_, rtol=0, atol=1e-6
    )
    assert ours.n_iter == reference.n_iter_
    assert ours.converged == reference.converged_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fixed_iterations_match_sklearn_on_iris(iris, covariance_type):
    ours, reference = _fit_both(iris, 3, covariance_type, tol=0.0, max_iter=40)
    _assert_same_fit(ours, reference, iris)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fixed_iterations_match_sklearn_on_blobs(blobs, covariance_type):
    X, _ = blobs
    ours, reference = _fit_both(X, 3, covariance_type, tol=0.0, max_iter=25, seed=3)
    _assert_same_fit(ours, reference, X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_convergence_schedule_matches_sklearn(iris, covariance_type):
    ours, reference = _fit_both(iris, 4, covariance_type, tol=1e-3, max_iter=200, seed=5)
    assert reference.converged_
    _assert_same_fit(ours, reference, iris)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_start_from_responsibilities_is_sklearn_m_step(blobs, covariance_type):
    X, labels = blobs
    responsibilities = np.eye(3)[labels] * 0.9 + 0.1 / 3
    model = em.fit_gmm(
        X, 3, covariance_type=covariance_type, initial={"responsibilities": responsibilities}, max_iter=0
    )
    counts, means, covariances = _estimate_gaussian_parameters(
        X, responsibilities, 1e-6, covariance_type
    )
    np.testing.assert_allclose(model.weights, counts / counts.sum(), atol=1e-12)
    np.testing.assert_allclose(model.means, means, atol=1e-10)
    np.testing.assert_allclose(model.covariances, covariances, atol=1e-10)
    assert model.n_iter == 0


def _full_covariances(model: em.GaussianMixtureModel) -> np.ndarray:
    k, d = model.n_components, model.n_features
    return {
        "full": lambda c: c,
        "tied": lambda c: np.stack([c] * k),
        "diag": lambda c: np.stack([np.diag(row) for row in c]),
        "spherical": lambda c: np.stack([value * np.eye(d) for value in c]),
    }[model.covariance_type](np.asarray(model.covariances))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_samples_matches_scipy_far_from_origin(blobs, covariance_type):
    X, _ = blobs
    shifted = X + 1e4  # the quadratic-feature trick must not lose precision to a large offset
    model = em.fit_gmm(shifted, 3, covariance_type=covariance_type, n_init=2, random_state=0)
    densities = np.stack(
        [
            weight * stats.multivariate_normal.pdf(shifted, mean=mean, cov=covariance)
            for weight, mean, covariance in zip(model.weights, model.means, _full_covariances(model))
        ],
        axis=1,
    )
    np.testing.assert_allclose(em.score_samples(model, shifted), np.log(densities.sum(axis=1)), rtol=1e-9)
    np.testing.assert_allclose(
        em.predict_proba(model, shifted), densities / densities.sum(axis=1, keepdims=True), atol=1e-9
    )
    assert model.log_likelihood == pytest.approx(em.score_samples(model, shifted).mean(), abs=1e-9)


def test_agrees_with_sklearn_default_fit_on_iris(iris):
    ours = em.fit_gmm(iris, 3, n_init=10, random_state=0)
    reference = GaussianMixture(3, n_init=10, random_state=0).fit(iris)
    assert ours.log_likelihood >= reference.score(iris) - 1e-4
    assert em.adjusted_rand_index(em.predict(ours, iris), reference.predict(iris)) > 0.95
