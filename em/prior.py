"""A conjugate prior on the component means and covariances: EM then finds the posterior mode.

This is R mclust's ``priorControl()`` (Fraley & Raftery 2007, "Bayesian regularization for
normal mixture estimation and model-based clustering"). Each mean has a normal prior
``N(mean, covariance / shrinkage)`` and each covariance an inverse-Wishart prior with ``dof``
degrees of freedom and scale ``scale`` (inverse-gamma for the variances of diag and spherical
models). The M-step then adds ``scale`` to every component's scatter and divides by more than
its count, so a component holding a few samples keeps a regular covariance instead of running
to a singular one. The likelihood (and so BIC) is evaluated at the posterior mode, as mclust
does.

Defaults are mclust's ``defaultPrior``: ``shrinkage = 0.01``, ``mean`` the data mean,
``dof = d + 2``, and ``scale`` the data covariance (full, tied) or its mean variance (diag,
spherical) times ``K^(-2/d)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class ConjugatePrior:
    """Hyperparameters of the conjugate prior; None means mclust's default, from the data.

    Attributes
    ----------
    shrinkage : float
        How many samples' worth of weight the prior mean has (``kappa``); 0 leaves the means
        unregularised.
    dof : float or None
        Degrees of freedom of the inverse-Wishart prior; default ``d + 2``. Must exceed
        ``d - 1``.
    """

    shrinkage: float = 0.01
    dof: float | None = None

    def __post_init__(self):
        if not self.shrinkage >= 0:
            raise ValueError(f"shrinkage must be 0 or more, got {self.shrinkage!r}.")
        if self.dof is not None and not self.dof > 0:
            raise ValueError(f"dof must be positive, got {self.dof!r}.")


class PriorParameters(NamedTuple):
    """A prior made concrete for one fit, in the frame of the samples EM works on.

    Attributes
    ----------
    mean : ndarray of shape (d,)
    shrinkage : float
    dof : float
    scale : ndarray
        (d, d) for full and tied, a scalar (0-d array) for diag and spherical.
    """

    mean: np.ndarray
    shrinkage: float
    dof: float
    scale: np.ndarray


def prior_parameters(
    prior: ConjugatePrior, samples: np.ndarray, n_components: int, covariance_type: str
) -> PriorParameters:
    """mclust's ``defaultPrior`` of ``samples`` (shape (n_samples, d)) for K components.

    Raises
    ------
    ValueError
        ``dof`` is too small for d features (the inverse-Wishart needs ``dof > d - 1``).
    """
    n_samples, n_features = samples.shape
    dof = float(n_features + 2 if prior.dof is None else prior.dof)
    if dof <= n_features - 1:
        raise ValueError(f"dof must exceed d - 1 = {n_features - 1} for {n_features} features, got {dof}.")
    factor = n_components ** (-2.0 / n_features)
    if n_samples > 1:
        covariance = np.atleast_2d(np.cov(samples, rowvar=False))
    else:
        covariance = np.eye(n_features)
    if covariance_type in ("full", "tied"):
        scale = factor * (covariance if n_samples > n_features else np.diag(np.diag(covariance)))
    else:
        scale = np.asarray(factor * np.trace(covariance) / n_features)
    return PriorParameters(samples.mean(axis=0), float(prior.shrinkage), dof, scale)
