"""Starting parameters for EM: k-means++, the notebook's random rows, or explicit values.

Each starter returns parameters for ``S`` seeds in the centred frame of a
:class:`songmix.em._estep.Features`, plus a failure reason (or None) per seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np

from ._estep import Features, add_up, hard_assignment_statistics, n_quadratic_features
from ._mstep import m_step, parameters_from
from ._parallel import parallel_map
from .prior import PriorParameters

# k-means++ picks its centers from at most this many random rows: the D^2 sampling needs a
# pass over the candidates per center, and on a large random subset it picks equally good ones.
_KMEANS_PLUSPLUS_MAX_SAMPLES = 1 << 15
# Seeds are spread over threads only when they have at least this many distances to compute.
_KMEANS_PLUSPLUS_THREADED_DISTANCES = 1 << 18
# Lloyd steps refining the k-means++ centers: each costs a pass over [x, 1] alone and saves EM
# iterations (``benchmarks/em.py``, section (d), prints how many for 0, 1, 2 and 5 steps).
_LLOYD_STEPS = 2


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


def _distance_terms(pools: np.ndarray) -> np.ndarray:
    """Each pool row ``x`` as ``[x, |x|^2, 1]``, so that ``|x - c|^2`` is one dot product.

    Parameters
    ----------
    pools : ndarray of shape (S, m, d)

    Returns
    -------
    terms : ndarray of shape (S, m, d + 2)
        Computed once and broadcast when every seed shares one pool (stride 0 along seeds).
    """
    shared = pools.strides[0] == 0
    rows = pools[:1] if shared else pools
    squared_norms = np.einsum("smd,smd->sm", rows, rows)[..., None]
    terms = np.concatenate([rows, squared_norms, np.ones_like(squared_norms)], axis=-1)
    return np.broadcast_to(terms, pools.shape[:2] + terms.shape[-1:]) if shared else terms


def _squared_distances(pool_terms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances from some rows of each seed's pool to all of its rows.

    ``|x - c|^2 = [x, |x|^2, 1] . [-2 c, 1, |c|^2]``: one matrix product. Rounding can leave
    values a few ulps below zero where ``x = c``; callers clamp what they keep.

    Parameters
    ----------
    pool_terms : ndarray of shape (S, m, d + 2)
        From :func:`_distance_terms`.
    points : ndarray of int, shape (S, p)
        Indices of the rows to measure from.

    Returns
    -------
    distances : ndarray of shape (S, p, m)
    """
    order, scale = _point_terms_map(pool_terms.shape[-1])
    return _cross_products(_rows_of(pool_terms, points)[..., order] * scale, pool_terms)


@cache
def _point_terms_map(n_terms: int) -> tuple[np.ndarray, np.ndarray]:
    """Column order and scale turning pool terms ``[c, |c|^2, 1]`` into ``[-2 c, 1, |c|^2]``."""
    order = np.r_[: n_terms - 2, n_terms - 1, n_terms - 2]
    scale = np.r_[np.full(n_terms - 2, -2.0), 1.0, 1.0]
    return order, scale


def kmeans_plusplus(
    pools: np.ndarray, n_clusters: int, rngs: Sequence[np.random.Generator]
) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, as in scikit-learn), many seeds at once.

    Each new center is the best of ``2 + log(k)`` candidates drawn with probability
    proportional to the squared distance to the nearest chosen center. Every seed draws its
    random numbers from its own generator, in one call; the arithmetic is batched over seeds.

    Parameters
    ----------
    pools : ndarray of shape (S, m, d)
        The rows each seed picks its centers from (a broadcast view when they share them).
    n_clusters : int
    rngs : sequence of numpy.random.Generator, length S

    Returns
    -------
    centers : ndarray of shape (S, n_clusters, d)
        Rows of each seed's pool.
    """
    n_seeds, n_rows, _ = pools.shape
    seed_index = np.arange(n_seeds)
    n_trials = 2 + int(np.log(n_clusters))
    # Per seed: a uniform number for the first center, then n_trials for each later one.
    uniforms = np.array([rng.random(1 + (n_clusters - 1) * n_trials) for rng in rngs])
    trial_uniforms = uniforms[:, 1:].reshape(n_seeds, n_clusters - 1, n_trials)
    pool_terms = _distance_terms(pools)
    chosen = np.empty((n_seeds, n_clusters), dtype=np.intp)
    chosen[:, 0] = np.minimum(uniforms[:, 0] * n_rows, n_rows - 1).astype(np.intp)
    closest = np.maximum(_squared_distances(pool_terms, chosen[:, :1])[:, 0], 0.0)
    for center in range(1, n_clusters):
        candidates = _draw_proportionally(closest, trial_uniforms[:, center - 1])
        distances = _squared_distances(pool_terms, candidates)
        np.minimum(distances, closest[:, None, :], out=distances)
        best = np.argmin(distances.sum(axis=-1), axis=-1)
        closest = np.maximum(distances[seed_index, best], 0.0)
        chosen[:, center] = candidates[seed_index, best]
    return _rows_of(pools, chosen)


def _draw_proportionally(weights: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Rows drawn with probability proportional to their weight, by inverting the running sum.

    Parameters
    ----------
    weights : ndarray of shape (S, m)
        Non-negative weights of each seed's rows.
    uniforms : ndarray of shape (S, t)
        Uniform numbers in [0, 1), one per row to draw.

    Returns
    -------
    rows : ndarray of int, shape (S, t)
        For each uniform ``u``, the first row whose running sum reaches ``u`` times the total.
    """
    running = np.cumsum(weights, axis=-1)
    rows = [np.searchsorted(sums, targets * sums[-1]) for sums, targets in zip(running, uniforms)]
    return np.minimum(rows, weights.shape[1] - 1)


def _cross_products(points: np.ndarray, pools: np.ndarray) -> np.ndarray:
    """``points @ pool'`` per seed, (S, p, d) and (S, m, d) -> (S, p, m).

    A shared pool (a broadcast view, stride 0 along seeds) takes one matrix product for all
    seeds rather than S small ones.
    """
    if pools.strides[0] == 0:
        n_seeds, n_points, n_features = points.shape
        return (points.reshape(-1, n_features) @ pools[0].T).reshape(n_seeds, n_points, -1)
    return points @ np.swapaxes(pools, -1, -2)


def _rows_of(pools: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Rows ``pools[s, indices[s]]`` of each seed's pool: (S, m, d), (S, p) -> (S, p, d)."""
    return np.take_along_axis(pools, indices[..., None], axis=1)


def kmeans_plusplus_start(
    features: Features,
    n_components: int,
    rngs: Sequence[np.random.Generator],
    *,
    covariance_type: str,
    reg_covar: float,
    prior: PriorParameters | None = None,
):
    """k-means++ centers, refined by a few Lloyd steps, then one M-step on the final partition.

    Between scikit-learn's ``init_params="k-means++"`` (each component starts from its center
    row alone: covariance ``reg_covar``) and its ``"kmeans"`` (k-means run to convergence):
    the centers are drawn as its k-means++ draws them, except from a random subset of at most
    32768 rows per seed, then :data:`_LLOYD_STEPS` times every sample goes to its nearest
    center and each center moves to the mean of its samples. Each component starts from the
    weight, mean and covariance of its samples in the last assignment.

    Returns
    -------
    parameters : MixtureParameters
    failures : list of (str or None)
    """
    samples = features.samples
    n_samples, n_features = samples.shape
    n_seeds = len(rngs)
    if n_samples > _KMEANS_PLUSPLUS_MAX_SAMPLES:
        pools = np.stack(
            [samples[rng.choice(n_samples, _KMEANS_PLUSPLUS_MAX_SAMPLES, replace=False)] for rng in rngs]
        )
    else:
        pools = np.broadcast_to(samples, (n_seeds,) + samples.shape)
    # Seeds are batched; large pools are also spread over threads, a group of seeds each.
    n_distances = n_seeds * pools.shape[1] * n_components
    n_groups = features.n_workers if n_distances >= _KMEANS_PLUSPLUS_THREADED_DISTANCES else 1
    bounds = np.linspace(0, n_seeds, n_groups + 1).astype(int)
    # Slices keep a shared pool a broadcast view (fancy indexing would copy it per seed).
    groups = [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:]) if stop > start]
    centers = np.concatenate(
        parallel_map(
            lambda group: kmeans_plusplus(pools[group], n_components, rngs[group]),
            groups,
            features.n_workers,
        )
    )
    for _ in range(_LLOYD_STEPS):
        sums = _nearest_center_statistics(features, centers, second_order=False)
        centers = _centroids(sums, centers)
    statistics = _nearest_center_statistics(features, centers, second_order=True)
    return m_step(
        statistics, n_features=n_features, covariance_type=covariance_type, reg_covar=reg_covar,
        prior=prior,
    )


def _nearest_center_statistics(features: Features, centers: np.ndarray, *, second_order: bool):
    """Feature sums with every sample wholly in the component of its nearest center.

    ``-|x - c|^2 / 2 = -|x|^2 / 2 + x'c - |c|^2 / 2``, and the first term is the same for
    every center: the nearest maximises ``[x, 1] . [c, -|c|^2 / 2]``, the E-step's matrix
    product on the first-order features alone.

    Parameters
    ----------
    features : Features
    centers : ndarray of shape (S, K, d)
    second_order : bool
        Whether to sum the second-order features too (for an M-step), or only ``[x, 1]``
        (for new centers).

    Returns
    -------
    statistics : ndarray of shape (S, K, m), or (S, K, d + 1) without second order
    """
    n_seeds, n_components, n_features = centers.shape
    n_columns = n_features + 1
    if second_order:
        n_columns = n_quadratic_features(n_features, features.covariance_type)
    coefficients = np.zeros((n_seeds, n_components, n_columns))
    coefficients[..., -1 - n_features : -1] = centers
    coefficients[..., -1] = -0.5 * np.einsum("skd,skd->sk", centers, centers)
    return hard_assignment_statistics(features, coefficients)


def _centroids(statistics: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """The mean of each center's samples (S, K, d); a center left with none stays put."""
    n_features = centers.shape[-1]
    counts = statistics[..., -1:]
    return np.divide(
        statistics[..., -1 - n_features : -1], counts, out=centers.copy(), where=counts > 0
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
    component (plus ``reg_covar`` on its diagonal), equal weights. Returns what
    :func:`kmeans_plusplus_start` returns."""
    samples, n_seeds = features.samples, len(rngs)
    n_samples, n_features = samples.shape
    means = np.stack([samples[rng.choice(n_samples, size=n_components, replace=False)] for rng in rngs])
    data_covariance = samples.T @ samples / n_samples + reg_covar * np.eye(n_features)
    return parameters_from(
        np.full((n_seeds, n_components), 1.0 / n_components),
        means,
        _broadcast_covariance(data_covariance, covariance_type, n_seeds, n_components),
        covariance_type,
    )


def explicit_start(
    features: Features,
    initial: Mapping[str, np.ndarray],
    *,
    covariance_type: str,
    reg_covar: float,
    prior: PriorParameters | None = None,
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
    prior : PriorParameters, optional
        For the M-step from responsibilities.

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
            add_up(per_block)[None],
            n_features=n_features,
            covariance_type=covariance_type,
            reg_covar=reg_covar,
            prior=prior,
        )
    return parameters_from(
        initial["weights"][None],
        (initial["means"] - features.center)[None],
        initial["covariances"][None],
        covariance_type,
    )
