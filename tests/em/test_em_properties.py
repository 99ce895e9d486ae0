"""Properties EM must have whatever the data: monotone log-likelihood, valid parameters,
no dependence on the order of the rows."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from songmix import em

from conftest import gaussian_blobs

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]

# Derandomized and without an example database: the same examples on every run, no files.
PROPERTY_SETTINGS = settings(deadline=None, derandomize=True, database=None)

small_mixtures = st.fixed_dictionaries(
    {
        "n_samples": st.integers(40, 160),
        "n_components": st.integers(1, 4),
        "n_features": st.integers(1, 4),
        "separation": st.floats(0.5, 8.0),
        "seed": st.integers(0, 2**31 - 1),
        "covariance_type": st.sampled_from(COVARIANCE_TYPES),
    }
)


def _fit(spec: dict, **options) -> tuple[np.ndarray, em.GaussianMixtureModel]:
    X, _ = gaussian_blobs(
        spec["n_samples"],
        spec["n_components"],
        spec["n_features"],
        separation=spec["separation"],
        seed=spec["seed"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", em.ConvergenceWarning)
        model = em.fit_gmm(
            X,
            spec["n_components"],
            covariance_type=spec["covariance_type"],
            random_state=spec["seed"],
            **options,
        )
    return X, model


def _is_spd(covariances: np.ndarray, covariance_type: str) -> bool:
    if covariance_type in ("diag", "spherical"):
        return bool((covariances > 0).all())
    matrices = covariances.reshape((-1,) + covariances.shape[-2:])
    symmetric = np.allclose(matrices, np.swapaxes(matrices, -1, -2), rtol=0, atol=1e-12)
    return symmetric and bool((np.linalg.eigvalsh(matrices) > 0).all())


@settings(PROPERTY_SETTINGS, max_examples=25)
@given(small_mixtures)
def test_log_likelihood_never_decreases(spec):
    _, model = _fit(spec, n_init=3, tol=0.0, max_iter=30)
    for seed in model.seeds:
        trace = np.array(seed.log_likelihood_trace)
        # reg_covar makes the M-step a slightly regularised maximiser; allow rounding only.
        assert (np.diff(trace) >= -1e-9 * (1 + np.abs(trace[1:]))).all(), seed


@settings(PROPERTY_SETTINGS, max_examples=25)
@given(small_mixtures)
def test_parameters_stay_valid(spec):
    X, model = _fit(spec, n_init=3)
    usable = [seed for seed in model.seeds if not seed.failed]
    assert usable, [seed.failed_reason for seed in model.seeds]
    for seed in usable:
        assert np.isclose(seed.weights.sum(), 1.0, rtol=0, atol=1e-12)
        assert (seed.weights > 0).all()
        assert np.isfinite(seed.means).all()
        assert _is_spd(seed.covariances, model.covariance_type)
    probabilities = em.predict_proba(model, X)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    assert np.isfinite(em.score_samples(model, X)).all()


@settings(PROPERTY_SETTINGS, max_examples=15)
@given(small_mixtures, st.randoms(use_true_random=False))
def test_row_order_does_not_change_the_fit(spec, random):
    X, _ = gaussian_blobs(
        spec["n_samples"], spec["n_components"], spec["n_features"],
        separation=spec["separation"], seed=spec["seed"],
    )
    k, covariance_type = spec["n_components"], spec["covariance_type"]
    start = em.fit_gmm(X, k, covariance_type=covariance_type, max_iter=0, random_state=1)
    initial = {"weights": start.weights, "means": start.means, "covariances": start.covariances}
    order = np.array(random.sample(range(len(X)), len(X)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", em.ConvergenceWarning)
        fits = [
            em.fit_gmm(rows, k, covariance_type=covariance_type, initial=initial, max_iter=20)
            for rows in (X, X[order])
        ]
    for name in ("weights", "means", "covariances"):
        np.testing.assert_allclose(getattr(fits[0], name), getattr(fits[1], name), rtol=1e-7, atol=1e-9)
    assert fits[0].n_iter == fits[1].n_iter
