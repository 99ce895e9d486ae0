"""E-step: log-densities of every seed and component as one linear map of quadratic features.

For a Gaussian with precision ``P``, mean ``mu`` and weight ``w``,

    log w + log N(x | mu, P^-1) = -1/2 x'Px + x'P mu + (log w + log|U| - d/2 log 2pi - 1/2 mu'P mu)

where ``U`` is the Cholesky factor of ``P`` (``P = U U'``). The right-hand side is linear in the
features ``z = [x_i x_j (i <= j), x, 1]`` (``[x_i^2, x, 1]`` when ``P`` is diagonal). So the
log-densities of all seeds and components come from one matrix product ``Z @ W``, and the
M-step's sufficient statistics from another, ``resp' @ Z`` (see :mod:`songmix.em._mstep`).

Samples are centred on their mean before the features are built (the caller shifts the means
by the same amount); that keeps ``x'Px`` small, so little precision is lost when the quadratic
and linear terms cancel (the absolute error of a log-density is about ``eps |x|^2 |P|``: below
1e-7 for standardised data even with covariances as small as ``reg_covar = 1e-6``).

Shapes: ``S`` seeds, ``K`` components, ``d`` features, ``m`` quadratic features
(``d (d + 1) / 2 + d + 1`` for full and tied, ``2 d + 1`` for diag and spherical).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

import numpy as np

from ._parallel import parallel_map
from ._parameters import MixtureParameters

Result = TypeVar("Result")

# Z is kept in memory when it fits in this many bytes, and rebuilt block by block otherwise.
_FEATURE_CACHE_BYTES = 1 << 30
# A block of log-probabilities (samples x seeds x components) holds between these many values:
# enough for efficient matrix products and to pay for a thread, few enough to stay in cache.
# Within that range the samples are split evenly over the worker threads.
_MIN_BLOCK_VALUES = 1 << 17
_MAX_BLOCK_VALUES = 1 << 20
_LOG_2PI = np.log(2.0 * np.pi)
# Densities of a sample that _normalize takes without shifting its log-probabilities.
_SAFE_DENSITY_LOW = 1e-300
_SAFE_DENSITY_HIGH = 1e300


@cache
def upper_triangle(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the upper triangle (``np.triu_indices``), computed once per d."""
    return np.triu_indices(n_features)


@cache
def _second_order_scale(n_features: int) -> np.ndarray:
    """``-1/2`` on the diagonal, ``-1`` off it: ``-x'Px/2 = sum_{i<=j} scale_ij P_ij x_i x_j``."""
    rows, cols = upper_triangle(n_features)
    return np.where(rows == cols, -0.5, -1.0)


def uses_pair_features(covariance_type: str) -> bool:
    """True when the covariance type needs all products ``x_i x_j``, not only squares."""
    return covariance_type in ("full", "tied")


def n_second_order(n_features: int, covariance_type: str) -> int:
    """Number of second-order features: ``d (d + 1) / 2`` pairs or ``d`` squares."""
    return n_features * (n_features + 1) // 2 if uses_pair_features(covariance_type) else n_features


def n_quadratic_features(n_features: int, covariance_type: str) -> int:
    """``m``: second-order features, then ``d`` first-order ones and the constant 1."""
    return n_second_order(n_features, covariance_type) + n_features + 1


def quadratic_features(X: np.ndarray, covariance_type: str) -> np.ndarray:
    """Build the features ``z`` in which log-densities are linear, one row per feature.

    Parameters
    ----------
    X : ndarray of shape (n_samples, d)
        Centred samples.
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    Z : ndarray of shape (m, n_samples)
        Rows ``[x_i x_j for i <= j, x, 1]`` (``np.triu_indices`` order) for full and tied,
        ``[x_i^2, x, 1]`` otherwise. Features run along rows so that each is built by one
        contiguous vectorised product, and a block of samples is a column slice.
    """
    n_samples, n_features = X.shape
    n_second = n_second_order(n_features, covariance_type)
    by_feature = np.ascontiguousarray(X.T)
    Z = np.empty((n_second + n_features + 1, n_samples))
    if uses_pair_features(covariance_type):
        row = 0
        for i in range(n_features):
            np.multiply(by_feature[i], by_feature[i:], out=Z[row : row + n_features - i])
            row += n_features - i
    else:
        np.multiply(by_feature, by_feature, out=Z[:n_features])
    Z[n_second:-1] = by_feature
    Z[-1] = 1.0
    return Z


@dataclass(frozen=True)
class Features:
    """Centred samples and their quadratic features, served in blocks of samples.

    Attributes
    ----------
    samples : ndarray of shape (n_samples, d)
        The samples minus ``center``.
    center : ndarray of shape (d,)
        The mean that was subtracted; means of the mixture live in the same shifted frame.
    covariance_type : str
    cached : ndarray of shape (m, n_samples) or None
        The whole feature matrix when it fits in memory.
    n_workers : int
        Threads that share the blocks (see :mod:`songmix.em._parallel`).
    """

    samples: np.ndarray
    center: np.ndarray
    covariance_type: str
    cached: np.ndarray | None
    n_workers: int

    @classmethod
    def build(cls, X: np.ndarray, covariance_type: str, n_workers: int = 1) -> Features:
        """Centre ``X`` (shape (n_samples, d)) and cache its features if they fit in memory."""
        # Feature by feature, the layout quadratic_features reads: numpy reduces and broadcasts
        # over long contiguous rows faster than over rows of d values.
        by_feature = np.array(X.T, order="C")  # a copy: centred in place below
        center = by_feature.mean(axis=1)
        by_feature -= center[:, None]
        n_features, n_samples = by_feature.shape
        fits = n_samples * n_quadratic_features(n_features, covariance_type) * 8 <= _FEATURE_CACHE_BYTES
        # quadratic_features reads the transposed view without copying it.
        cached = quadratic_features(by_feature.T, covariance_type) if fits else None
        return cls(np.ascontiguousarray(by_feature.T), center, covariance_type, cached, n_workers)

    @property
    def n_samples(self) -> int:
        return self.samples.shape[0]

    def map_blocks(self, function: Callable[[slice, np.ndarray], Result], n_columns: int) -> list[Result]:
        """Apply ``function(rows, Z[:, rows])`` to consecutive blocks, on ``n_workers`` threads.

        Parameters
        ----------
        function : callable
            Takes a slice of samples and their features, shape (m, b).
        n_columns : int
            Log-probabilities computed per sample (S * K), which sizes the blocks.

        Returns
        -------
        results : list
            One per block, in sample order.
        """
        per_worker = -(-self.n_samples // self.n_workers)
        block_rows = max(
            1, min(max(per_worker, _MIN_BLOCK_VALUES // n_columns), _MAX_BLOCK_VALUES // n_columns)
        )
        slices = [slice(start, start + block_rows) for start in range(0, self.n_samples, block_rows)]
        return parallel_map(lambda rows: function(rows, self._block(rows)), slices, self.n_workers)

    def _block(self, rows: slice) -> np.ndarray:
        if self.cached is not None:
            return self.cached[:, rows]
        return quadratic_features(self.samples[rows], self.covariance_type)


def _full_terms(means: np.ndarray, precisions_cholesky: np.ndarray):
    """Terms of the log-density for full precisions.

    Parameters
    ----------
    means : ndarray of shape (S, K, d)
    precisions_cholesky : ndarray of shape (S, K, d, d)
        Upper-triangular ``U`` with precision ``U U'``.

    Returns
    -------
    second_order : ndarray of shape (S, K, d (d + 1) / 2)
        Coefficients of ``x_i x_j`` (i <= j): ``-P_ii / 2`` and ``-P_ij``.
    precision_mean : ndarray of shape (S, K, d)
        ``P mu``.
    mean_norm : ndarray of shape (S, K)
        ``mu' P mu``.
    log_det : ndarray of shape (S, K)
        ``log |U|``, half the log-determinant of ``P``.
    """
    n_features = means.shape[-1]
    precisions = precisions_cholesky @ np.swapaxes(precisions_cholesky, -1, -2)
    rows, cols = upper_triangle(n_features)
    second_order = precisions[..., rows, cols] * _second_order_scale(n_features)
    precision_mean = (precisions @ means[..., None])[..., 0]
    mean_norm = (precision_mean * means).sum(axis=-1)
    log_det = np.log(np.diagonal(precisions_cholesky, axis1=-2, axis2=-1)).sum(axis=-1)
    return second_order, precision_mean, mean_norm, log_det


def _tied_terms(means: np.ndarray, precisions_cholesky: np.ndarray):
    """As :func:`_full_terms` with one shared factor per seed, shape (S, d, d)."""
    shared = np.broadcast_to(precisions_cholesky[:, None], means.shape + means.shape[-1:])
    return _full_terms(means, shared)


def _diag_terms(means: np.ndarray, precisions_cholesky: np.ndarray):
    """As :func:`_full_terms` for diagonal precisions; ``precisions_cholesky`` (S, K, d)."""
    precisions = precisions_cholesky**2
    precision_mean = precisions * means
    return (
        -0.5 * precisions,
        precision_mean,
        (precision_mean * means).sum(axis=-1),
        np.log(precisions_cholesky).sum(axis=-1),
    )


def _spherical_terms(means: np.ndarray, precisions_cholesky: np.ndarray):
    """As :func:`_diag_terms` with one precision per component; ``precisions_cholesky`` (S, K)."""
    return _diag_terms(means, np.broadcast_to(precisions_cholesky[..., None], means.shape))


_LOG_DENSITY_TERMS: dict[str, Callable] = {
    "full": _full_terms,
    "tied": _tied_terms,
    "diag": _diag_terms,
    "spherical": _spherical_terms,
}


def log_prob_coefficients(
    weights: np.ndarray, means: np.ndarray, precisions_cholesky: np.ndarray, covariance_type: str
) -> np.ndarray:
    """Coefficients ``W`` such that ``Z @ W[s, k]`` is ``log w_k + log N(x | mu_k, Sigma_k)``.

    Parameters
    ----------
    weights : ndarray of shape (S, K)
    means : ndarray of shape (S, K, d)
        In the centred frame of the :class:`Features`.
    precisions_cholesky : ndarray
        (S, K, d, d) full, (S, d, d) tied, (S, K, d) diag, (S, K) spherical.
    covariance_type : str

    Returns
    -------
    coefficients : ndarray of shape (S, K, m)
    """
    second_order, precision_mean, mean_norm, log_det = _LOG_DENSITY_TERMS[covariance_type](
        means, precisions_cholesky
    )
    n_features = means.shape[-1]
    constant = np.log(weights) + log_det - 0.5 * (n_features * _LOG_2PI + mean_norm)
    return np.concatenate([second_order, precision_mean, constant[..., None]], axis=-1)


def add_up(per_block: list[np.ndarray]) -> np.ndarray:
    """Sum of same-shaped per-block arrays, added in block order (so threads do not change it).

    Cheaper than ``np.sum(per_block, axis=0)``, which first copies the list into one array:
    with a single block (small inputs) nothing is computed at all.
    """
    total = per_block[0]
    for partial in per_block[1:]:
        total = total + partial
    return total


def _normalize(log_prob: np.ndarray, n_wanted: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities and log-densities from weighted log-probabilities (S, K, b).

    ``exp`` straight away, without first subtracting each sample's largest log-probability:
    that saves two passes over the block, and loses nothing while every sample's density lies
    in ``[1e-300, 1e300]`` (a component's value that falls to a subnormal changes its
    responsibility by less than 1e-23). A block with a sample outside (a far outlier, a
    density that would overflow) is redone the ``logsumexp`` way.

    Parameters
    ----------
    log_prob : ndarray of shape (S, K, b)
    n_wanted : int, optional
        Only the first ``n_wanted`` seeds need responsibilities (default: all); the other
        seeds' rows may be left unnormalised.

    Returns
    -------
    responsibilities : ndarray of shape (S, K, b)
        A new array, or ``log_prob`` itself overwritten when the block was redone.
    log_norm : ndarray of shape (S, b)
        ``logsumexp`` over components, the log-density of each sample under each seed.
    """
    responsibilities = np.exp(log_prob)
    total = responsibilities.sum(axis=1)
    if not (total.min() >= _SAFE_DENSITY_LOW and total.max() <= _SAFE_DENSITY_HIGH):
        return _normalize_shifted(log_prob)
    responsibilities[:n_wanted] /= total[:n_wanted, None, :]
    return responsibilities, np.log(total)


def _normalize_shifted(log_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`_normalize` for any finite input, in place: shift each sample's largest
    log-probability to zero before ``exp``."""
    top = log_prob.max(axis=1)
    log_prob -= top[:, None, :]
    np.exp(log_prob, out=log_prob)
    total = log_prob.sum(axis=1)
    log_prob /= total[:, None, :]
    return log_prob, np.log(total) + top


def _block_log_prob(coefficients: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Weighted log-probabilities (S, K, b) of a block ``Z`` of shape (m, b), one matrix product.

    Samples run along the last axis, so reductions over components (axis 1) combine
    contiguous rows element-wise, which numpy vectorises.
    """
    n_seeds, n_components, n_columns = coefficients.shape
    log_prob = coefficients.reshape(-1, n_columns) @ block
    return log_prob.reshape(n_seeds, n_components, -1)


def e_step_statistics(features: Features, coefficients: np.ndarray, n_stepping: int):
    """One pass over the samples: log-likelihood and responsibility-weighted feature sums.

    Parameters
    ----------
    features : Features
    coefficients : ndarray of shape (S, K, m)
    n_stepping : int
        Only the first ``n_stepping`` seeds need statistics (the others are being scored).

    Returns
    -------
    log_likelihood_sum : ndarray of shape (S,)
        Sum over samples of the log-density under each seed.
    statistics : ndarray of shape (n_stepping, K, m)
        ``sum_n resp[n, k] z_n`` for each seed: second moments, first moments and counts.
    """
    n_seeds, n_components, n_columns = coefficients.shape

    def block_sums(rows: slice, block: np.ndarray):
        responsibilities, log_norm = _normalize(_block_log_prob(coefficients, block), n_stepping)
        stepping = responsibilities[:n_stepping].reshape(n_stepping * n_components, block.shape[1])
        return log_norm.sum(axis=1), stepping @ block.T

    per_block = features.map_blocks(block_sums, n_seeds * n_components)
    log_likelihood_sum = add_up([log_likelihood for log_likelihood, _ in per_block])
    statistics = add_up([statistics for _, statistics in per_block])
    return log_likelihood_sum, statistics.reshape(n_stepping, n_components, n_columns)


def hard_assignment_statistics(features: Features, coefficients: np.ndarray) -> np.ndarray:
    """Feature sums when each sample goes wholly to its most probable component (k-means style).

    Parameters
    ----------
    features : Features
    coefficients : ndarray of shape (S, K, c)
        Coefficients of the last ``c`` features: ``m`` for all of them, ``d + 1`` for the
        first-order ones ``[x, 1]`` alone (enough to find the nearest of some centers, at a
        fraction of the cost when ``d`` is large).

    Returns
    -------
    statistics : ndarray of shape (S, K, c)
        Sums of the same ``c`` features.
    """
    n_seeds, n_components, n_columns = coefficients.shape

    def block_sums(rows: slice, block: np.ndarray) -> np.ndarray:
        used = block[-n_columns:]
        log_prob = _block_log_prob(coefficients, used)
        one_hot = (log_prob == log_prob.max(axis=1, keepdims=True)).astype(np.float64)
        # A sample tied between components counts once, split evenly (ties are rare: the check
        # costs less than the division).
        ties = one_hot.sum(axis=1, keepdims=True)
        if ties.max() > 1:
            one_hot /= ties
        return one_hot.reshape(n_seeds * n_components, -1) @ used.T

    per_block = features.map_blocks(block_sums, n_seeds * n_components)
    return add_up(per_block).reshape(n_seeds, n_components, n_columns)


def map_log_prob(
    samples: np.ndarray,
    parameters: MixtureParameters,
    covariance_type: str,
    reduce: Callable[[np.ndarray], np.ndarray],
    *,
    n_workers: int,
) -> np.ndarray:
    """Weighted log-probabilities of ``samples`` under ``S`` mixtures, reduced block by block.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, d)
        In the frame of ``parameters.means`` (not centred).
    parameters : MixtureParameters
        ``S`` mixtures.
    covariance_type : str
    reduce : callable
        Takes the log-probabilities of a block of ``b`` samples, shape (S, K, b), which it may
        overwrite, and returns an array whose last axis has length ``b``.
    n_workers : int
        Threads that share the blocks.

    Returns
    -------
    result : ndarray of shape (..., n_samples)
        The reduced blocks joined along the last axis.
    """
    features = Features.build(samples, covariance_type, n_workers)
    coefficients = log_prob_coefficients(
        parameters.weights,
        parameters.means - features.center,
        parameters.precisions_cholesky,
        covariance_type,
    )
    n_seeds, n_components, _ = coefficients.shape
    per_block = features.map_blocks(
        lambda rows, block: reduce(_block_log_prob(coefficients, block)), n_seeds * n_components
    )
    return np.concatenate(per_block, axis=-1)


def responsibilities_of(log_prob: np.ndarray) -> np.ndarray:
    """Responsibilities, shape (S, K, b), from weighted log-probabilities (S, K, b)."""
    return _normalize(log_prob)[0]


def log_density_of(log_prob: np.ndarray) -> np.ndarray:
    """Log-density per sample, shape (S, b), from weighted log-probabilities (S, K, b)."""
    return _normalize(log_prob)[1]


def most_probable(log_prob: np.ndarray) -> np.ndarray:
    """Index of the most probable component, shape (S, b), from log-probabilities (S, K, b)."""
    return log_prob.argmax(axis=1)
