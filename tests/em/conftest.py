"""Data shared by the EM tests: iris (ships with scikit-learn) and seeded Gaussian blobs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris


def gaussian_blobs(
    n_samples: int,
    n_components: int,
    n_features: int,
    *,
    separation: float,
    seed: int,
    covariance_type: str = "full",
) -> tuple[np.ndarray, np.ndarray]:
    """Samples from a mixture with random covariances, and their generating component.

    Parameters
    ----------
    n_samples, n_components, n_features : int
    separation : float
        Scale of the component centers relative to the (roughly unit) component spread.
    seed : int
    covariance_type : {"full", "diag", "spherical"}
        Structure of the generating covariances (one per component).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    labels : ndarray of shape (n_samples,)
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=separation, size=(n_components, n_features))
    mixing = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    covariances = mixing @ mixing.transpose(0, 2, 1) + 0.3 * np.eye(n_features)
    if covariance_type == "diag":
        covariances = covariances * np.eye(n_features)
    elif covariance_type == "spherical":
        variances = np.trace(covariances, axis1=1, axis2=2) / n_features
        covariances = variances[:, None, None] * np.eye(n_features)
    factors = np.linalg.cholesky(covariances)
    labels = rng.integers(n_components, size=n_samples)
    noise = rng.standard_normal((n_samples, n_features))
    X = centers[labels] + np.einsum("nij,nj->ni", factors[labels], noise)
    return X, labels


@pytest.fixture(scope="session")
def iris() -> np.ndarray:
    return load_iris().data


@pytest.fixture(scope="session")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """600 samples of 3 well-separated components in 4 dimensions."""
    return gaussian_blobs(600, 3, 4, separation=6.0, seed=7)


@pytest.fixture(scope="session")
def make_blobs():
    return gaussian_blobs
