"""M-step: mixture parameters from responsibility-weighted feature sums, for every seed at once.

The E-step (:mod:`songmix.em._estep`) returns, per seed and component, ``sum_n resp[n, k] z_n``
with ``z = [second-order terms, x, 1]``: the second moments, the first moments and the count.
Everything the M-step needs follows from those sums, as in scikit-learn's estimators:
``count += 10 eps``, ``mean = first / count``, ``cov = second / count - mean mean' + reg_covar I``.

Shapes: ``S`` seeds, ``K`` components, ``d`` features. Covariances and their precision Cholesky
factors have scikit-learn's shapes with a leading seed axis: full (S, K, d, d), tied (S, d, d),
diag (S, K, d), spherical (S, K).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from ._estep import upper_triangle, uses_pair_features
from ._parameters import MixtureParameters
from .prior import PriorParameters

# A component holding less than one sample's worth of responsibility is treated as empty.
MIN_COMPONENT_COUNT = 1.0
# Variances come from E[x^2] - mean^2. Where the two agree to within rounding, the variance is
# numerically zero (a component collapsed onto a point): call it zero rather than keep a
# residue of random sign.
_ROUNDING_TOLERANCE = 16 * np.finfo(np.float64).eps
# Added to every component's count, as scikit-learn does, so that means stay finite.
_COUNT_FLOOR = 10 * np.finfo(np.float64).eps


@cache
def _symmetric_index(n_features: int) -> np.ndarray:
    """Position in the packed upper triangle of every entry ``(i, j)`` of a (d, d) matrix."""
    rows, cols = upper_triangle(n_features)
    index = np.empty((n_features, n_features), dtype=np.intp)
    index[rows, cols] = index[cols, rows] = np.arange(len(rows))
    return index


def unpack_symmetric(pairs: np.ndarray, n_features: int) -> np.ndarray:
    """Symmetric matrices from their upper triangles.

    Parameters
    ----------
    pairs : ndarray of shape (..., d (d + 1) / 2)
        Entries ``(i, j)`` for ``i <= j`` in ``np.triu_indices`` order.
    n_features : int

    Returns
    -------
    matrices : ndarray of shape (..., d, d)
        A new C-contiguous array.
    """
    return pairs[..., _symmetric_index(n_features)]


def diagonal_view(matrices: np.ndarray) -> np.ndarray:
    """The diagonals of C-contiguous matrices (..., d, d) as a writable view, shape (..., d).

    A strided view costs far less than fancy indexing on the small stacks of an M-step.
    """
    n_features = matrices.shape[-1]
    # copy=False raises rather than return a copy, whose writes would be lost.
    flat = matrices.reshape(matrices.shape[:-2] + (n_features * n_features,), copy=False)
    return flat[..., :: n_features + 1]


def _zero_rounding_residue(variances: np.ndarray, second_moments: np.ndarray) -> np.ndarray:
    """``variances`` with values within rounding error of zero set to zero (same shape)."""
    return np.where(variances > _ROUNDING_TOLERANCE * second_moments, variances, 0.0)


def _regularized(covariances: np.ndarray, moments: np.ndarray, reg_covar: float) -> np.ndarray:
    """Clean the diagonals of (..., d, d) covariances of rounding residue and add ``reg_covar``.

    ``covariances`` and ``moments`` are C-contiguous; ``covariances`` is changed in place.
    """
    variances = diagonal_view(covariances)
    variances[...] = _zero_rounding_residue(variances, diagonal_view(moments)) + reg_covar
    return covariances


def _full_covariances(second, counts, means, reg_covar):
    """Per-component covariance matrices.

    Parameters
    ----------
    second : ndarray of shape (S, K, d (d + 1) / 2)
        ``sum_n resp[n, k] x_i x_j`` for i <= j.
    counts : ndarray of shape (S, K)
    means : ndarray of shape (S, K, d)
    reg_covar : float

    Returns
    -------
    covariances : ndarray of shape (S, K, d, d)
    """
    n_features = means.shape[-1]
    moments = unpack_symmetric(second, n_features) / counts[..., None, None]
    covariances = moments - means[..., :, None] * means[..., None, :]
    return _regularized(covariances, moments, reg_covar)


def _tied_covariances(second, counts, means, reg_covar):
    """One covariance matrix per seed, shared by its components; shape (S, d, d)."""
    n_features = means.shape[-1]
    total = counts.sum(axis=1)[:, None, None]
    moments = unpack_symmetric(second.sum(axis=1), n_features) / total
    covariances = moments - np.einsum("sk,ski,skj->sij", counts, means, means) / total
    return _regularized(covariances, moments, reg_covar)


def _diag_covariances(second, counts, means, reg_covar):
    """Per-component variances, shape (S, K, d); ``second`` holds ``sum_n resp x_i^2``."""
    moments = second / counts[..., None]
    return _zero_rounding_residue(moments - means**2, moments) + reg_covar


def _spherical_covariances(second, counts, means, reg_covar):
    """One variance per component, the mean of its diagonal variances; shape (S, K)."""
    return _diag_covariances(second, counts, means, reg_covar).mean(axis=-1)


_COVARIANCE_ESTIMATORS: dict[str, Callable] = {
    "full": _full_covariances,
    "tied": _tied_covariances,
    "diag": _diag_covariances,
    "spherical": _spherical_covariances,
}


def _cholesky_lower(matrices: np.ndarray):
    """Lower Cholesky factors of a stack of matrices, and which of them exist.

    Parameters
    ----------
    matrices : ndarray of shape (..., d, d)

    Returns
    -------
    factors : ndarray of shape (..., d, d)
        Identity where the factorisation failed, so later arithmetic stays finite.
    ok : ndarray of bool, shape (...)
    """
    try:
        factors = np.linalg.cholesky(matrices)
    except np.linalg.LinAlgError:
        factors = _cholesky_one_by_one(matrices)
    ok = np.isfinite(factors).all(axis=(-2, -1))
    if not ok.all():
        factors[~ok] = np.eye(matrices.shape[-1])
    return factors, ok


def _cholesky_one_by_one(matrices: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of (..., d, d) matrices, NaN where one does not exist."""
    n_features = matrices.shape[-1]
    flat = matrices.reshape(-1, n_features, n_features)
    factors = np.full_like(flat, np.nan)
    for index, matrix in enumerate(flat):
        try:
            factors[index] = np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError:
            pass  # stays NaN: reported as not positive definite
    return factors.reshape(matrices.shape)


def _matrix_precisions_cholesky(covariances: np.ndarray):
    """``U = inv(L)'`` for ``covariance = L L'``; shapes (..., d, d) in and out, plus ``ok``."""
    factors, ok = _cholesky_lower(covariances)
    return np.swapaxes(np.linalg.inv(factors), -1, -2), ok


def _scalar_precisions_cholesky(variances: np.ndarray):
    """``1 / sqrt(variance)`` element-wise, plus ``ok`` where the variance is positive."""
    ok = np.isfinite(variances) & (variances > 0)
    return 1.0 / np.sqrt(np.where(ok, variances, 1.0)), ok


def precisions_cholesky(covariances: np.ndarray, covariance_type: str):
    """Cholesky factors of the precisions and the first component whose covariance is not SPD.

    Parameters
    ----------
    covariances : ndarray
        (S, K, d, d) full, (S, d, d) tied, (S, K, d) diag, (S, K) spherical.
    covariance_type : str

    Returns
    -------
    precisions_cholesky : ndarray, same shape as ``covariances``
    bad_component : ndarray of int, shape (S,)
        Index of the first component whose covariance is not positive definite (0 for a bad
        tied covariance), or -1 where all are fine.
    """
    if uses_pair_features(covariance_type):
        factors, ok = _matrix_precisions_cholesky(covariances)
    else:
        factors, ok = _scalar_precisions_cholesky(covariances)
    n_seeds = len(covariances)
    if ok.all():
        return factors, np.full(n_seeds, -1)
    if covariance_type == "diag":
        ok = ok.all(axis=-1)
    ok = ok.reshape(n_seeds, -1)
    return factors, np.where(ok.all(axis=1), -1, np.argmin(ok, axis=1))


def parameters_from(weights, means, covariances, covariance_type: str):
    """Complete parameters with their precision factors, and why any seed is unusable.

    Parameters
    ----------
    weights : ndarray of shape (S, K)
    means : ndarray of shape (S, K, d)
    covariances : ndarray, shaped per covariance type
    covariance_type : str

    Returns
    -------
    parameters : MixtureParameters
    failures : list of (str or None), length S
        A reason for each seed whose covariance is not positive definite, else None.
    """
    factors, bad_component = precisions_cholesky(covariances, covariance_type)
    failures = [
        None
        if bad < 0
        else (
            "the tied covariance is not positive definite"
            if covariance_type == "tied"
            else f"the covariance of component {bad} is not positive definite"
        )
        for bad in bad_component.tolist()
    ]
    return MixtureParameters(weights, means, covariances, factors), failures


def _posterior_modes(second, counts, first, covariance_type, reg_covar, prior: PriorParameters):
    """Means and covariances that maximise the posterior under the conjugate ``prior``.

    Fraley & Raftery (2007), table 2: with ``W`` a component's scatter about its sample mean
    ``y`` and ``c = shrinkage n / (shrinkage + n)``, the mean is ``(n y + shrinkage mean) /
    (n + shrinkage)`` and the covariance ``(scale + W + c (y - mean)(y - mean)') /
    (dof + n + d + 2)`` (full); tied pools the numerators over components and divides by
    ``dof + N + K + d + 1``; diag divides each variance by ``dof + n + 3``; spherical the
    trace by ``dof + (n + 1) d + 2``.

    Returns
    -------
    means : ndarray of shape (S, K, d)
    covariances : ndarray, shaped per covariance type with a leading seed axis
    """
    n_features = first.shape[-1]
    sample_means = first / counts[..., None]
    shift = sample_means - prior.mean
    pull = prior.shrinkage * counts / (prior.shrinkage + counts)
    means = (first + prior.shrinkage * prior.mean) / (counts + prior.shrinkage)[..., None]
    if uses_pair_features(covariance_type):
        scatter = unpack_symmetric(second, n_features) - counts[..., None, None] * (
            sample_means[..., :, None] * sample_means[..., None, :])
        spread = scatter + pull[..., None, None] * shift[..., :, None] * shift[..., None, :]
        if covariance_type == "tied":
            n_components = counts.shape[-1]
            divisor = prior.dof + counts.sum(axis=1) + n_components + n_features + 1
            covariances = (prior.scale + spread.sum(axis=1)) / divisor[:, None, None]
        else:
            covariances = (prior.scale + spread) / (prior.dof + counts + n_features + 2)[..., None, None]
        diagonal_view(covariances)[...] += reg_covar
        return means, covariances
    spread = second - counts[..., None] * sample_means**2 + pull[..., None] * shift**2
    if covariance_type == "diag":
        return means, (prior.scale + spread) / (prior.dof + counts + 3)[..., None] + reg_covar
    divisor = prior.dof + (counts + 1) * n_features + 2
    return means, (prior.scale + spread.sum(axis=-1)) / divisor + reg_covar


def m_step(
    statistics: np.ndarray,
    *,
    n_features: int,
    covariance_type: str,
    reg_covar: float,
    prior: PriorParameters | None = None,
):
    """Maximise the expected complete log-likelihood (or log-posterior, with ``prior``)
    given the E-step's feature sums.

    Parameters
    ----------
    statistics : ndarray of shape (S, K, m)
        ``sum_n resp[n, k] z_n`` from :func:`songmix.em._estep.e_step_statistics`.
    n_features : int
    covariance_type : str
    reg_covar : float
        Added to the diagonal of every covariance.
    prior : PriorParameters, optional
        A conjugate prior (:mod:`songmix.em.prior`): the M-step finds the posterior mode.

    Returns
    -------
    parameters : MixtureParameters
    failures : list of (str or None), length S
        Why a seed cannot go on (an empty component, a covariance that is not positive
        definite), else None.
    """
    n_second = statistics.shape[-1] - n_features - 1
    counts = statistics[..., -1] + _COUNT_FLOOR
    if prior is None:
        means = statistics[..., n_second:-1] / counts[..., None]
        covariances = _COVARIANCE_ESTIMATORS[covariance_type](
            statistics[..., :n_second], counts, means, reg_covar
        )
    else:
        means, covariances = _posterior_modes(
            statistics[..., :n_second], counts, statistics[..., n_second:-1], covariance_type,
            reg_covar, prior,
        )
    weights = counts / counts.sum(axis=1, keepdims=True)
    parameters, failures = parameters_from(weights, means, covariances, covariance_type)
    if counts.min() < MIN_COMPONENT_COUNT:  # rare: one check for all seeds first
        for seed in np.flatnonzero(counts.min(axis=1) < MIN_COMPONENT_COUNT):
            failures[seed] = _too_small(int(np.argmin(counts[seed])), counts[seed].min())
    return parameters, failures


def _too_small(component: int, count: float) -> str:
    """Why a component holding ``count < MIN_COMPONENT_COUNT`` samples' worth stops its seed."""
    # About one sample's worth: the component sits on one sample, its covariance shrinking
    # to reg_covar; far less: the other components took its samples.
    what = "collapsed onto a single sample" if 0.5 <= count < 1.5 else "emptied"
    return (
        f"component {component} {what}: it holds {_short_of_minimum(count)} samples' worth of "
        f"responsibility, less than the {MIN_COMPONENT_COUNT:g} a component needs"
    )


def _short_of_minimum(count: float) -> str:
    """``count`` to 3 digits, or as ``minimum - shortfall`` where 3 digits would round it up to
    the minimum (0.99999997 is "1 - 3e-08", not "1")."""
    text = f"{count:.3g}"
    if float(text) < MIN_COMPONENT_COUNT:
        return text
    return f"{MIN_COMPONENT_COUNT:g} - {MIN_COMPONENT_COUNT - count:.2g}"
