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

    def take(self, seeds) -> MixtureParameters:
        """The parameters of the given seeds (a list of indices along the first axis)."""
        if list(seeds) == list(range(len(self.weights))):
            return self
        return MixtureParameters(*(values[seeds] for values in self))

    def replace(self, seeds, new: MixtureParameters) -> MixtureParameters:
        """A copy with the given seeds' parameters replaced by ``new``.

        ``seeds`` is a list of distinct seed indices in the order of ``new``.
        """
        if list(seeds) == list(range(len(self.weights))):
            return new
        updated = [values.copy() for values in self]
        for values, new_values in zip(updated, new):
            values[seeds] = new_values
        return MixtureParameters(*updated)
