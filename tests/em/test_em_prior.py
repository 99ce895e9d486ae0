"""The conjugate prior (mclust's priorControl): one M-step is the posterior mode written out by
hand, and a mixture too large for its data stays regular under it."""

from __future__ import annotations

import numpy as np
import pytest

from songmix import em
from songmix.em._estep import Features
from songmix.em._mstep import m_step
from songmix.em.prior import prior_parameters

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _statistics(features: Features, responsibilities: np.ndarray) -> np.ndarray:
    """The E-step's sums ``sum_n resp[n, k] z_n`` for one seed, shape (1, K, m)."""
    block = features.cached
    return (responsibilities.T @ block.T)[None]


def _by_hand(X, responsibilities, prior, covariance_type):
    """Fraley & Raftery (2007), table 2, computed directly from the samples."""
    n_samples, d = X.shape
    counts = responsibilities.sum(axis=0)
    sample_means = responsibilities.T @ X / counts[:, None]
    kappa, nu, mu, scale = prior.shrinkage, prior.dof, prior.mean, prior.scale
    means = (counts[:, None] * sample_means + kappa * mu) / (counts + kappa)[:, None]
    scatters = np.stack([(responsibilities[:, k, None] * (X - sample_means[k])).T @ (X - sample_means[k])
                         for k in range(len(counts))])
    pulls = np.stack([kappa * n / (kappa + n) * np.outer(m - mu, m - mu) for n, m in zip(counts, sample_means)])
    spreads = scatters + pulls
    if covariance_type == "full":
        return means, (scale + spreads) / (nu + counts + d + 2)[:, None, None]
    if covariance_type == "tied":
        return means, (scale + spreads.sum(axis=0)) / (nu + n_samples + len(counts) + d + 1)
    diagonals = np.diagonal(spreads, axis1=1, axis2=2)
    if covariance_type == "diag":
        return means, (scale + diagonals) / (nu + counts + 3)[:, None]
    return means, (scale + diagonals.sum(axis=1)) / (nu + (counts + 1) * d + 2)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_m_step_is_the_posterior_mode(covariance_type):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3)) * [1.0, 2.0, 0.5]
    features = Features.build(X, covariance_type)
    responsibilities = rng.dirichlet(np.ones(4), size=len(X))
    prior = prior_parameters(em.ConjugatePrior(shrinkage=0.5), features.samples, 4, covariance_type)
    parameters, failures = m_step(_statistics(features, responsibilities), n_features=3,
                                  covariance_type=covariance_type, reg_covar=0.0, prior=prior)
    means, covariances = _by_hand(features.samples, responsibilities, prior, covariance_type)
    assert failures == [None]
    np.testing.assert_allclose(parameters.means[0], means, atol=1e-10)
    np.testing.assert_allclose(parameters.covariances[0], covariances, atol=1e-10)


def test_the_default_prior_is_mclusts():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4)) * [1.0, 2.0, 3.0, 4.0]
    full = prior_parameters(em.ConjugatePrior(), X, 3, "full")
    assert full.shrinkage == 0.01 and full.dof == 6
    np.testing.assert_allclose(full.mean, X.mean(axis=0))
    np.testing.assert_allclose(full.scale, np.cov(X, rowvar=False) * 3 ** (-2 / 4))
    diag = prior_parameters(em.ConjugatePrior(), X, 3, "diag")
    assert diag.scale == pytest.approx(np.trace(np.cov(X, rowvar=False)) / 4 * 3 ** (-2 / 4))


def test_a_component_of_a_few_samples_stays_regular_under_the_prior():
    # 12 samples, 5 features, full covariances for 3 components: 4 samples each cannot
    # estimate 15 covariance parameters; without a prior EM runs them to singular matrices.
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(loc, 1.0, size=(4, 5)) for loc in (0.0, 8.0, 16.0)])
    model = em.fit_gmm(X, 3, n_init=3, random_state=0, reg_covar=0.0, prior=em.ConjugatePrior())
    assert all(np.linalg.eigvalsh(c).min() > 1e-3 for c in model.covariances)
    assert np.isfinite(model.bic(X))
    assert sorted(np.bincount(em.predict(model, X))) == [4, 4, 4]


@pytest.mark.parametrize(("options", "message"), [
    ({"shrinkage": -1.0}, "shrinkage must be 0 or more"), ({"dof": 0.0}, "dof must be positive")])
def test_bad_priors_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        em.ConjugatePrior(**options)


def test_too_few_degrees_of_freedom_for_the_features_are_refused():
    with pytest.raises(ValueError, match="dof must exceed d - 1 = 3"):
        em.fit_gmm(np.random.default_rng(0).normal(size=(30, 4)), 2, prior=em.ConjugatePrior(dof=2.0))
