"""Choose the number of components by an information criterion (BIC or AIC)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._validation import check_samples, owned_read_only
from .gmm import FitFailedError, GaussianMixtureModel, fit_gmm

CRITERIA = ("bic", "aic")


@dataclass(frozen=True, eq=False)
class KSelection:
    """Fits over a range of component counts and the count the criterion prefers.

    Attributes
    ----------
    ks : tuple of int
    criterion : {"bic", "aic"}
    bic : ndarray of shape (len(ks),)
        ``inf`` where the fit failed.
    aic : ndarray of shape (len(ks),)
    chosen_k : int
        The k with the lowest criterion value (the smallest such k on ties).
    models : tuple of (GaussianMixtureModel or None)
        None where every start failed.
    failures : tuple of (str or None)
        Why the fit for each k failed, else None.
    """

    ks: tuple[int, ...]
    criterion: str
    bic: np.ndarray
    aic: np.ndarray
    chosen_k: int
    models: tuple[GaussianMixtureModel | None, ...]
    failures: tuple[str | None, ...]

    def __post_init__(self):
        for name in ("bic", "aic"):
            object.__setattr__(self, name, owned_read_only(getattr(self, name)))

    @property
    def values(self) -> np.ndarray:
        """The chosen criterion per k, shape (len(ks),)."""
        return self.bic if self.criterion == "bic" else self.aic

    @property
    def chosen_model(self) -> GaussianMixtureModel:
        return self.models[self.ks.index(self.chosen_k)]


def select_k(
    X,
    ks: Sequence[int],
    *,
    criterion: str = "bic",
    covariance_type: str = "full",
    n_init: int = 10,
    init: str = "kmeans++",
    tol: float = 1e-3,
    max_iter: int = 200,
    reg_covar: float = 1e-6,
    random_state: int | np.random.Generator | None = None,
    standardize: bool = False,
    feature_names: Sequence[str] | None = None,
    n_jobs: int | None = None,
) -> KSelection:
    """Fit a mixture for every k in ``ks`` and choose the one with the lowest criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
    ks : sequence of int
        Candidate numbers of components, each between 1 and n_samples.
    criterion : {"bic", "aic"}
    covariance_type, n_init, init, tol, max_iter, reg_covar, random_state, standardize, feature_names
        As for :func:`songmix.em.fit_gmm`; the same ``random_state`` seeds every k.
    n_jobs : int or None
        Threads for each fit, as for :func:`songmix.em.fit_gmm`.

    Returns
    -------
    selection : KSelection

    Raises
    ------
    ValueError
        For invalid input, an empty ``ks``, a k outside [1, n_samples], an unknown criterion.
    FitFailedError
        When the fit failed for every k.
    """
    samples = check_samples(X, feature_names=feature_names)
    candidates = tuple(int(k) for k in ks)
    if not candidates:
        raise ValueError("ks is empty; pass the numbers of components to compare, e.g. range(2, 11).")
    if criterion not in CRITERIA:
        raise ValueError(f"Unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}.")
    out_of_range = [k for k in candidates if not 1 <= k <= len(samples)]
    if out_of_range:
        raise ValueError(
            f"ks {out_of_range} are outside [1, {len(samples)}]: every k needs at least one "
            "sample per component."
        )
    names = feature_names if feature_names is not None else getattr(X, "columns", None)
    models, failures = [], []
    for k in candidates:
        try:
            model = fit_gmm(
                samples,
                k,
                covariance_type=covariance_type,
                n_init=n_init,
                init=init,
                tol=tol,
                max_iter=max_iter,
                reg_covar=reg_covar,
                random_state=random_state,
                standardize=standardize,
                feature_names=names,
                n_jobs=n_jobs,
            )
        except FitFailedError as error:
            model, failure = None, str(error)
        else:
            failure = None
        models.append(model)
        failures.append(failure)
    if all(model is None for model in models):
        raise FitFailedError("Every k failed: " + " | ".join(failures))
    bic = np.array([model.bic(samples, n_jobs=n_jobs) if model else np.inf for model in models])
    aic = np.array([model.aic(samples, n_jobs=n_jobs) if model else np.inf for model in models])
    values = bic if criterion == "bic" else aic
    return KSelection(
        ks=candidates,
        criterion=criterion,
        bic=bic,
        aic=aic,
        chosen_k=candidates[int(np.argmin(values))],
        models=tuple(models),
        failures=tuple(failures),
    )
