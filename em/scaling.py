"""Standardisation of features before fitting (zero mean, unit variance per column).

The scaler is stored with the fitted model (``GaussianMixtureModel.scaler``) so that new samples
are transformed exactly as the training samples were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._validation import check_n_features, check_samples, feature_names_of, owned_read_only

# A column whose standard deviation is below this fraction of its magnitude is constant up to
# rounding: dividing by it would turn rounding noise into signal.
_RELATIVE_CONSTANT_SCALE = 1e-12


@dataclass(frozen=True, eq=False)
class Scaler:
    """Per-column affine map ``(x - mean) / scale``.

    Holds read-only copies of the arrays it is built from.

    Attributes
    ----------
    mean : ndarray of shape (d,)
    scale : ndarray of shape (d,)
        Population standard deviation of each column at fit time (as scikit-learn's
        ``StandardScaler``).
    feature_names : tuple of str, length d
    """

    mean: np.ndarray
    scale: np.ndarray
    feature_names: tuple[str, ...]

    def __post_init__(self):
        for name in ("mean", "scale"):
            object.__setattr__(self, name, owned_read_only(getattr(self, name)))

    def transform(self, X) -> np.ndarray:
        """Standardise samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, d)

        Returns
        -------
        standardized : ndarray of shape (n_samples, d)
        """
        samples = check_samples(X, feature_names=self.feature_names)
        check_n_features(samples, len(self.mean))
        return (samples - self.mean) / self.scale

    def inverse_transform(self, X) -> np.ndarray:
        """Map standardised values (for example fitted means) back to original units.

        Parameters
        ----------
        X : array-like of shape (n_samples, d)

        Returns
        -------
        original : ndarray of shape (n_samples, d)
        """
        values = check_samples(X, feature_names=self.feature_names)
        check_n_features(values, len(self.mean))
        return values * self.scale + self.mean


def fit_scaler(X, feature_names: Sequence[str] | None = None) -> Scaler:
    """Learn the mean and standard deviation of every column.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
        A DataFrame's columns name the features when ``feature_names`` is None.
    feature_names : sequence of str, optional

    Returns
    -------
    scaler : Scaler

    Raises
    ------
    ValueError
        If a column is constant (it cannot be standardised and carries no information).
    """
    samples = check_samples(X, feature_names=feature_names)
    names = feature_names_of(X, feature_names, samples.shape[1])
    mean = samples.mean(axis=0)
    scale = samples.std(axis=0)
    constant = scale <= _RELATIVE_CONSTANT_SCALE * np.maximum(np.abs(mean), 1.0)
    if constant.any():
        listed = ", ".join(repr(names[j]) for j in np.flatnonzero(constant))
        raise ValueError(
            f"Column(s) {listed} are constant (every row holds the same value), so they cannot "
            "be standardised and carry no information for clustering; drop them before fitting."
        )
    return Scaler(mean=mean, scale=scale, feature_names=names)
