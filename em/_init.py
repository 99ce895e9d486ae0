"""Starting parameters for EM: k-means++, the notebook's random rows, or explicit values.

Each starter returns parameters for ``S`` seeds in the centred frame of a
:class:`songmix.em._estep.Features`, plus a failure reason (or None) per seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._estep import Features, hard_assignment_statistics, log_prob_coefficients
from ._mstep import m_step, parameters_from
from ._parallel import parallel_map
from ._validation import covariance_shape

# k-means++ picks its centers from at most this many random rows: the D^2 sampling needs a
# pass over the candidates per center, and on a large random subset it picks equally good ones.
_KMEANS_PLUSPLUS_MAX_SAMPLES = 1 << 15
# Seeds are spread over threads only when each has at least this many distances to compute.
_KMEANS_PLUSPLUS_THREADED_DISTANCES = 1 << 16


def seed_states(random_state: int | np.random.Generator | None, n_seeds: int) -> list[int]:
    """One integer seed per EM start: ``base, base + 1, ...``.

    ``base`` is ``random_state`` itself when it is an int, else drawn from it (or from fresh
    entropy when None). Start ``i`` uses ``np.random.default_rng(base + i)``, so
    ``fit_gmm(..., n_init=1, random_state=base + i)`` reproduces it alone.
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        base = int(random_state)
    else:
        base = int(np.random.default_rng(random_state).integers(0, 2**63 - n_seeds))
    return [base + index for index in range(n_seeds)]


def _squared_distances(X: np.ndarray, squared_norms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, shape (len(points), n_samples)."""
    distances = squared_norms[None, :] - 2.0 * (points @ X.T) + (points**2).sum(axis=1)[:, None]
    return np.maximum(distances, 0.0, out=distances)


def kmeans_plusplus(X: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, as in scikit-learn).

    Each new center is the best of ``2 + log(k)`` candidates drawn with probability
    proportional to the squared distance to the nearest chosen center.

    Parameters
    ----------
    X : ndarray of shape (n_samples, d)
    n_clusters : int
    rng : numpy.random.Generator

    Returns
    -------
    centers : ndarray of shape (n_clusters, d)
        Rows of ``X``.
    """
    n_samples = len(X)
    n_trials = 2 + int(np.log(n_clusters))
    squared_norms = (X**2).sum(axis=1)
    chosen = [int(rng.integers(n_samples))]
    closest = _squared_distances(X, squared_norms, X[chosen])[0]
    potential = closest.sum()
    for _ in range(1, n_clusters):
        targets = rng.uniform(size=n_trials) * potential
        candidates = np.minimum(np.searchsorted(np.cumsum(closest), targets), n_samples - 1)
        distances = np.minimum(closest, _squared_distances(X, squared_norms, X[candidates]))
        potentials = distances.sum(axis=1)
        best = int(np.argmin(potentials))
        closest, potential = distances[best], potentials[best]
        chosen.append(int(candidates[best]))
    return X[chosen]


def _unit_precisions_cholesky(covariance_type: str, n_seeds: int, n_components: int, n_features: int):
    """Identity precision factors shaped for the covariance type, with a leading seed axis."""
    shape = (n_seeds,) + covariance_shape(covariance_type, n_components, n_features)
    if covariance_type in ("full", "tied"):
        return np.broadcast_to(np.eye(n_features), shape).copy()
    return np.ones(shape)


def kmeans_plusplus_start(
    features: Features,
    n_components: int,
    rngs: Sequence[np.random.Generator],
    *,
    covariance_type: str,
    reg_covar: float,
):
    """k-means++ centers, each sample assigned to its nearest center, then one M-step.

    This matches scikit-learn's ``init_params="k-means++"``, except that the centers are drawn
    from a random subset of at most 32768 rows per seed. The nearest-center assignment
    is the most probable component under unit covariances and equal weights, so it reuses
    the E-step's matrix product.

    Returns
    -------
    parameters : MixtureParameters
    failures : list of (str or None)
    """
    samples = features.samples
    n_samples, n_features = samples.shape

    def seed_centers(rng: np.random.Generator) -> np.ndarray:
        if n_samples > _KMEANS_PLUSPLUS_MAX_SAMPLES:
            subset = samples[rng.choice(n_samples, _KMEANS_PLUSPLUS_MAX_SAMPLES, replace=False)]
            return kmeans_plusplus(subset, n_components, rng)
        return kmeans_plusplus(samples, n_components, rng)

    n_distances = min(n_samples, _KMEANS_PLUSPLUS_MAX_SAMPLES) * n_components
    centers = np.stack(
        parallel_map(
            seed_centers, rngs, worth_threads=n_distances >= _KMEANS_PLUSPLUS_THREADED_DISTANCES
        )
    )
    n_seeds = len(rngs)
    coefficients = log_prob_coefficients(
        np.full((n_seeds, n_components), 1.0 / n_components),
        centers,
        _unit_precisions_cholesky(covariance_type, n_seeds, n_components, n_features),
        covariance_type,
    )
    statistics = hard_assignment_statistics(features, coefficients)
    return m_step(
        statistics, n_features=n_features, covariance_type=covariance_type, reg_covar=reg_covar
    )


def _broadcast_covariance(covariance: np.ndarray, covariance_type: str, n_seeds: int, n_components: int):
    """One (d, d) covariance shaped for every seed and component of the covariance type."""
    per_type = {
        "full": lambda: np.broadcast_to(covariance, (n_seeds, n_components) + covariance.shape),
        "tied": lambda: np.broadcast_to(covariance, (n_seeds,) + covariance.shape),
        "diag": lambda: np.broadcast_to(np.diag(covariance), (n_seeds, n_components, len(covariance))),
        "spherical": lambda: np.full((n_seeds, n_components), np.diag(covariance).mean()),
    }
    return np.array(per_type[covariance_type]())


def random_start(
    features: Features,
    n_components: int,
    rngs: Sequence[np.random.Generator],
    *,
    covariance_type: str,
    reg_covar: float,
):
    """The notebook's start: k distinct random rows as means, the data covariance for every
    component (plus ``reg_covar`` on its diagonal), equal weights.

    Returns
    -------
    parameters : MixtureParameters
    failures : list of (str or None)
    """
    samples = features.samples
    n_samples, n_features = samples.shape
    n_seeds = len(rngs)
    means = np.stack([samples[rng.choice(n_samples, size=n_components, replace=False)] for rng in rngs])
    data_covariance = samples.T @ samples / n_samples + reg_covar * np.eye(n_features)
    return parameters_from(
        np.full((n_seeds, n_components), 1.0 / n_components),
        means,
        _broadcast_covariance(data_covariance, covariance_type, n_seeds, n_components),
        covariance_type,
    )


def explicit_start(
    features: Features, initial: Mapping[str, np.ndarray], *, covariance_type: str, reg_covar: float
):
    """One seed from validated ``initial`` values (see :func:`songmix.em.fit_gmm`).

    Parameters
    ----------
    features : Features
    initial : mapping
        ``{"weights", "means", "covariances"}`` (means in the caller's frame) or
        ``{"responsibilities"}`` of shape (n_samples, K).
    covariance_type : str
    reg_covar : float

    Returns
    -------
    parameters : MixtureParameters
        With a seed axis of length 1.
    failures : list of (str or None), length 1
    """
    n_features = features.samples.shape[1]
    if "responsibilities" in initial:
        responsibilities = initial["responsibilities"]
        per_block = features.map_blocks(
            lambda rows, block: responsibilities[rows].T @ block.T, responsibilities.shape[1]
        )
        return m_step(
            np.sum(per_block, axis=0)[None],
            n_features=n_features,
            covariance_type=covariance_type,
            reg_covar=reg_covar,
        )
    return parameters_from(
        initial["weights"][None],
        (initial["means"] - features.center)[None],
        initial["covariances"][None],
        covariance_type,
    )
