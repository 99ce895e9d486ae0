"""Choose the number of components, and the covariance type, by an information criterion.

:func:`select_k` fits every k of a range with one covariance type. :func:`select_model` is
R mclust's ``mclustBIC``: it fits every (covariance type, k) pair the data can support and
chooses the pair with the lowest BIC. A pair is left out, with the reason, when its
covariances have more free parameters than there are samples to estimate them from (each
component's covariance from about ``n / k`` samples, a tied one from all ``n``), unless a
conjugate prior (:mod:`songmix.em.prior`) keeps them regular. :func:`selection_warnings`
says when the choice sits at the edge of what was tried, or a chosen component holds
fewer samples than it has parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._validation import COVARIANCE_TYPES, check_samples, owned_read_only
from .gmm import FitFailedError, GaussianMixtureModel, covariance_parameters, fit_gmm
from .prior import ConjugatePrior

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
    feature_names: Sequence[str] | None = None,
    n_jobs: int | None = None,
    **fit_options,
) -> KSelection:
    """Fit a mixture for every k in ``ks`` and choose the one with the lowest criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
    ks : sequence of int
        Candidate numbers of components, each between 1 and n_samples.
    criterion : {"bic", "aic"}
    feature_names : sequence of str, optional
    n_jobs : int or None
        Threads for each fit and criterion.
    **fit_options
        ``covariance_type``, ``n_init``, ``init``, ``tol``, ``max_iter``, ``reg_covar``,
        ``random_state``, ``standardize``, ``prior``: as for :func:`songmix.em.fit_gmm`
        (its defaults too); the same ``random_state`` seeds every k.

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
            model = fit_gmm(samples, k, feature_names=names, n_jobs=n_jobs, **fit_options)
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


def unsupported_reason(covariance_type: str, n_components: int, n_samples: int, n_features: int) -> str | None:
    """Why ``n_samples`` samples cannot support this mixture without a prior, or None.

    Each component's covariance is estimated from about ``n_samples / n_components``
    samples (a tied one from all of them); with no more samples than the covariance has free
    parameters, EM runs it to a singular matrix or fits noise.
    """
    parameters = covariance_parameters(covariance_type, n_features)
    if covariance_type == "tied":
        if n_samples > parameters:
            return None
        return (f"the tied covariance has {parameters} free parameters but there are only "
                f"{n_samples} samples to estimate it from")
    if n_samples / n_components > parameters:
        return None
    return (f"each {covariance_type} covariance has {parameters} free parameters but {n_samples} "
            f"samples give {n_components} components only {n_samples / n_components:.1f} each")


def _left_out_reason(covariance_type: str, k: int, n_samples: int, n_features: int,
                     prior: ConjugatePrior | None) -> str | None:
    if k > n_samples:
        return f"{k} components need at least {k} samples, there are {n_samples}"
    if prior is not None:
        return None
    return unsupported_reason(covariance_type, k, n_samples, n_features)


@dataclass(frozen=True)
class LeftOut:
    """A (covariance type, k) pair that was not fitted, and why."""

    covariance_type: str
    k: int
    reason: str


@dataclass(frozen=True, eq=False)
class ModelSelection:
    """Fits over covariance types and k, and the pair the criterion prefers (mclust's BIC table).

    Attributes
    ----------
    ks : tuple of int
        The k asked for.
    criterion : {"bic", "aic"}
    by_type : dict of str to KSelection
        Per covariance type, the fits of every k the data support (types with none absent).
    left_out : tuple of LeftOut
        Pairs not fitted, with the reason.
    chosen_covariance_type : str
    chosen_k : int
        The pair with the lowest criterion (the earliest type of ``COVARIANCE_TYPES`` order,
        then the smallest k, on ties); or the best type at a fixed k.
    fixed_k : bool
        True when k was given rather than chosen.
    prior : ConjugatePrior or None
    n_samples : int
    """

    ks: tuple[int, ...]
    criterion: str
    by_type: dict[str, KSelection]
    left_out: tuple[LeftOut, ...]
    chosen_covariance_type: str
    chosen_k: int
    fixed_k: bool
    prior: ConjugatePrior | None
    n_samples: int

    @property
    def chosen(self) -> KSelection:
        """The k sweep of the chosen covariance type."""
        return self.by_type[self.chosen_covariance_type]

    @property
    def chosen_model(self) -> GaussianMixtureModel:
        return self.chosen.models[self.chosen.ks.index(self.chosen_k)]

    def candidates(self) -> list[dict]:
        """Every pair asked for, one dict each: covariance_type, k, status (``fitted``,
        ``failed``, ``left out``), reason, bic, aic, chosen."""
        rows = [{"covariance_type": covariance_type, "k": k,
                 "status": "fitted" if model is not None else "failed", "reason": failure,
                 "bic": float(bic) if model is not None else None,
                 "aic": float(aic) if model is not None else None,
                 "chosen": (covariance_type, k) == (self.chosen_covariance_type, self.chosen_k)}
                for covariance_type, sweep in self.by_type.items()
                for k, model, failure, bic, aic in zip(sweep.ks, sweep.models, sweep.failures,
                                                      sweep.bic, sweep.aic)]
        rows += [{"covariance_type": pair.covariance_type, "k": pair.k, "status": "left out",
                  "reason": pair.reason, "bic": None, "aic": None, "chosen": False}
                 for pair in self.left_out]
        order = {name: index for index, name in enumerate(COVARIANCE_TYPES)}
        return sorted(rows, key=lambda row: (order[row["covariance_type"]], row["k"]))


def select_model(
    X,
    ks: Sequence[int],
    *,
    covariance_types: Sequence[str] = COVARIANCE_TYPES,
    fixed_k: int | None = None,
    criterion: str = "bic",
    prior: ConjugatePrior | None = None,
    **fit_options,
) -> ModelSelection:
    """Fit every supported (covariance type, k) pair and choose by the criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
    ks : sequence of int
        Candidate numbers of components.
    covariance_types : sequence of {"full", "tied", "diag", "spherical"}
        The structures to compare (default all four).
    fixed_k : int, optional
        Use this k (it must be among ``ks``) and choose only the covariance type.
    criterion : {"bic", "aic"}
    prior : ConjugatePrior, optional
        Fit with this prior; then every pair is supported (the prior keeps each covariance
        regular), none is left out.
    **fit_options
        ``n_init``, ``init``, ``tol``, ``max_iter``, ``reg_covar``, ``random_state``,
        ``standardize``, ``feature_names``, ``n_jobs``: as for :func:`select_k`.

    Returns
    -------
    selection : ModelSelection

    Raises
    ------
    ValueError
        Invalid input, an unknown covariance type, a ``fixed_k`` not in ``ks``, or no pair
        the data support.
    FitFailedError
        Every supported pair failed.
    """
    samples = check_samples(X, feature_names=fit_options.get("feature_names"))
    n_samples, n_features = samples.shape
    unknown = [name for name in covariance_types if name not in COVARIANCE_TYPES]
    if unknown or not covariance_types:
        raise ValueError(f"Unknown covariance types {unknown or list(covariance_types)}; use some of "
                         f"{', '.join(COVARIANCE_TYPES)}.")
    candidates = tuple(sorted({int(k) for k in ks}))
    if fixed_k is not None and fixed_k not in candidates:
        raise ValueError(f"fixed_k={fixed_k} is not among ks {list(candidates)}.")
    wanted = [fixed_k] if fixed_k is not None else list(candidates)
    by_type: dict[str, KSelection] = {}
    left_out: list[LeftOut] = []
    failures: list[str] = []
    for covariance_type in (name for name in COVARIANCE_TYPES if name in covariance_types):
        reasons = {k: _left_out_reason(covariance_type, k, n_samples, n_features, prior) for k in wanted}
        left_out += [LeftOut(covariance_type, k, reason) for k, reason in reasons.items() if reason]
        supported = [k for k, reason in reasons.items() if reason is None]
        if not supported:
            continue
        try:
            by_type[covariance_type] = select_k(samples, supported, criterion=criterion,
                                                covariance_type=covariance_type, prior=prior,
                                                **fit_options)
        except FitFailedError as error:
            failures.append(f"{covariance_type}: {error}")
    if not by_type:
        if failures:
            raise FitFailedError("Every supported model failed: " + " | ".join(failures))
        raise ValueError(f"{n_samples} samples support no mixture of {wanted} components on {n_features} "
                         f"features: {left_out[0].reason}. Use fewer components or features, more "
                         "samples, or a prior.")
    best_type = min(by_type, key=lambda name: by_type[name].values.min())
    return ModelSelection(
        ks=candidates, criterion=criterion, by_type=by_type, left_out=tuple(left_out),
        chosen_covariance_type=best_type, chosen_k=by_type[best_type].chosen_k,
        fixed_k=fixed_k is not None, prior=prior, n_samples=n_samples,
    )


def selection_warnings(selection: ModelSelection) -> list[str]:
    """Plain-language reasons to distrust the chosen model (empty when there are none).

    - the chosen k is the largest (or, above 1, the smallest) k tried or the data support for
      the chosen covariance type: the criterion might prefer a k beyond the range (mclust's
      "optimal number of clusters occurs at max choice");
    - a chosen component holds fewer samples (its weight times n) than it has parameters
      (its mean and its own covariance).
    """
    warnings = []
    fitted_ks = [k for k, model in zip(selection.chosen.ks, selection.chosen.models) if model is not None]
    k, covariance_type = selection.chosen_k, selection.chosen_covariance_type
    if not selection.fixed_k and len(fitted_ks) > 1:
        if k == max(selection.ks):
            warnings.append(f"k = {k} is the largest k tried: the BIC may fall further beyond it "
                            f"(try a wider --ks)")
        elif k == max(fitted_ks):
            warnings.append(f"k = {k} is the largest k the data support with {covariance_type} "
                            f"covariances (larger k were left out): the BIC optimum may lie beyond it")
        elif k == min(selection.ks) and k > 1:
            warnings.append(f"k = {k} is the smallest k tried: the BIC may prefer fewer clusters")
    model = selection.chosen_model
    own = model.n_features + (0 if covariance_type == "tied" else covariance_parameters(covariance_type, model.n_features))
    sizes = model.weights * selection.n_samples
    small = [(component, size) for component, size in enumerate(sizes) if size < own]
    if small:
        held = [size for _, size in small]
        spread = f"{min(held):.0f}" if len(small) == 1 else f"{min(held):.0f}-{max(held):.0f}"
        which = "" if len(small) == k else f" ({', '.join(str(component) for component, _ in small)})"
        consequence = ("their covariances lean on the prior" if selection.prior is not None
                       else "their covariances rest on few samples")
        warnings.append(f"{len(small)} of {k} components{which} hold fewer samples ({spread}) than the "
                        f"{own} parameters each estimates: {consequence}")
    return warnings
