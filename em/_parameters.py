"""Parameters of several mixtures (one per EM seed), stacked along a leading seed axis."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class MixtureParameters(NamedTuple):
    """Parameters of ``S`` mixtures (one per seed), stacked along the first axis.

    Attributes
    ----------
    weights : ndarray of shape (S, K)
    means : ndarray of shape (S, K, d)
    covariances : ndarray
        scikit-learn's shapes with a leading seed axis: full (S, K, d, d), tied (S, d, d),
        diag (S, K, d), spherical (S, K).
    precisions_cholesky : ndarray
        Same shape as ``covariances``; for full and tied, upper-triangular ``U`` with
        ``U U' = inv(covariance)``; for diag and spherical, ``1 / sqrt(covariance)``.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    def copy(self) -> MixtureParameters:
        """Writable copies of every array (starting parameters may hold broadcast views)."""
        return MixtureParameters(*(np.array(values) for values in self))

    def assign(self, seeds, new: MixtureParameters) -> None:
        """Overwrite, in place, the parameters of ``seeds`` (distinct indices) with ``new``."""
        for values, new_values in zip(self, new):
            values[seeds] = new_values
