"""Fit a Gaussian mixture by EM from many seeds at once, and use the fitted model.

``fit_gmm`` validates its input, optionally standardises it, draws one start per seed, runs EM
for all seeds together (:mod:`songmix.em._em`) and keeps the seed with the highest mean
log-likelihood (the earliest, among ties). The returned :class:`GaussianMixtureModel` is
immutable; ``predict``, ``predict_proba`` and ``score_samples`` take raw samples and apply the
model's scaler, if any.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ._em import SeedRun, run_em
from ._estep import Features, log_density_of, map_log_prob, most_probable, responsibilities_of
from ._init import explicit_start, kmeans_plusplus_start, random_start, seed_states
from ._mstep import precisions_cholesky
from ._parallel import managed_blas, worker_count
from ._parameters import MixtureParameters
from ._validation import (
    check_fit_options,
    check_initial,
    check_mixture_parameters,
    check_n_features,
    check_samples,
    feature_names_of,
    owned_read_only,
)
from .prior import ConjugatePrior, PriorParameters, prior_parameters
from .scaling import Scaler, fit_scaler

# Mean log-likelihoods per sample this close count as the same optimum: rounding, which the split
# into blocks and threads changes, moves them by about 1e-15.
_SAME_OPTIMUM = 1e-10


class ConvergenceWarning(UserWarning):
    """The best EM start stopped at ``max_iter`` before its log-likelihood settled."""


class FitFailedError(ValueError):
    """No EM start produced a usable mixture (every seed failed)."""


def _own_arrays(result, names: tuple[str, ...]) -> None:
    """Give a frozen dataclass read-only copies of its array attributes (None stays None)."""
    for name in names:
        values = getattr(result, name)
        if values is not None:
            object.__setattr__(result, name, owned_read_only(values))


@dataclass(frozen=True, eq=False)
class SeedFit:
    """One EM start of a fit.

    Attributes
    ----------
    seed : int
        Position in ``GaussianMixtureModel.seeds``.
    random_state : int or None
        ``fit_gmm(X, k, n_init=1, random_state=random_state, ...)`` reproduces this start alone;
        None when the start came from ``initial``.
    log_likelihood : float
        Mean log-likelihood per sample of its final parameters (``-inf`` if it failed).
    n_iter : int
        EM iterations (M-steps) performed.
    converged : bool
    failed_reason : str or None
        Why the start was abandoned (an empty component, a covariance that is not positive
        definite, a non-finite log-likelihood), else None.
    weights : ndarray of shape (K,) or None
    means : ndarray of shape (K, d) or None
    covariances : ndarray or None
        Shaped as ``GaussianMixtureModel.covariances``. All three are None for a failed start.
    log_likelihood_trace : tuple of float
        Mean log-likelihood after 0, 1, ..., ``n_iter`` M-steps (EM never lets it drop, up to
        the effect of ``reg_covar``).
    """

    seed: int
    random_state: int | None
    log_likelihood: float
    n_iter: int
    converged: bool
    failed_reason: str | None
    weights: np.ndarray | None
    means: np.ndarray | None
    covariances: np.ndarray | None
    log_likelihood_trace: tuple[float, ...]

    def __post_init__(self):
        _own_arrays(self, ("weights", "means", "covariances"))

    @property
    def failed(self) -> bool:
        return self.failed_reason is not None


@dataclass(frozen=True, eq=False)
class GaussianMixtureModel:
    """A fitted Gaussian mixture (the best of several EM starts).

    Its arrays are read-only copies of the ones it is built from, whose flags it leaves alone.

    Attributes
    ----------
    covariance_type : {"full", "tied", "diag", "spherical"}
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
        In standardised units when ``scaler`` is set (``scaler.inverse_transform(means)``
        gives original units).
    covariances : ndarray
        full (K, d, d), tied (d, d), diag (K, d), spherical (K,), as in scikit-learn.
    precisions_cholesky : ndarray
        Same shape; ``U`` with ``U U' = inv(covariance)`` (full, tied) or
        ``1 / sqrt(covariance)`` (diag, spherical).
    log_likelihood : float
        Mean log-likelihood per sample of these parameters on the training samples (in the
        standardised space when ``scaler`` is set), as scikit-learn's ``score``.
    n_iter : int
    converged : bool
    best_seed : int
        Index into ``seeds`` of the start these parameters come from.
    seeds : tuple of SeedFit
        Every start, in order.
    feature_names : tuple of str
    scaler : Scaler or None
        Applied to samples before every computation when set.
    """

    covariance_type: str
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool
    best_seed: int
    seeds: tuple[SeedFit, ...]
    feature_names: tuple[str, ...]
    scaler: Scaler | None = None

    def __post_init__(self):
        _own_arrays(self, ("weights", "means", "covariances", "precisions_cholesky"))

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    @property
    def n_parameters(self) -> int:
        """Free parameters: means, covariances and ``K - 1`` weights (scikit-learn's count)."""
        return n_free_parameters(self.covariance_type, self.n_components, self.n_features)

    def bic(self, X, *, n_jobs: int | None = None) -> float:
        """Bayesian information criterion on ``X`` (lower is better).

        ``-2 log L + n_parameters log n_samples``; ``n_jobs`` as for :func:`fit_gmm`.
        """
        log_density = score_samples(self, X, n_jobs=n_jobs)
        return bic(float(log_density.mean()), len(log_density), self.n_parameters)

    def aic(self, X, *, n_jobs: int | None = None) -> float:
        """Akaike information criterion on ``X`` (lower is better): ``-2 log L + 2 n_parameters``.

        ``n_jobs`` as for :func:`fit_gmm`.
        """
        log_density = score_samples(self, X, n_jobs=n_jobs)
        return aic(float(log_density.mean()), len(log_density), self.n_parameters)


def covariance_parameters(covariance_type: str, n_features: int) -> int:
    """Free parameters of one covariance: (d, d) symmetric for full and tied, d variances for
    diag, one variance for spherical."""
    return {"full": n_features * (n_features + 1) // 2, "tied": n_features * (n_features + 1) // 2,
            "diag": n_features, "spherical": 1}[covariance_type]


def n_free_parameters(covariance_type: str, n_components: int, n_features: int) -> int:
    """Free parameters of a K-component mixture: covariances (one shared for tied), means and
    ``K - 1`` weights (scikit-learn's and mclust's count)."""
    n_covariances = 1 if covariance_type == "tied" else n_components
    return (n_covariances * covariance_parameters(covariance_type, n_features)
            + n_components * n_features + n_components - 1)


def bic(mean_log_likelihood: float, n_samples: int, n_parameters: int) -> float:
    """``-2 n mean_log_likelihood + n_parameters log n`` (lower is better)."""
    return float(-2.0 * n_samples * mean_log_likelihood + n_parameters * np.log(n_samples))


def aic(mean_log_likelihood: float, n_samples: int, n_parameters: int) -> float:
    """``-2 n mean_log_likelihood + 2 n_parameters`` (lower is better)."""
    return float(-2.0 * n_samples * mean_log_likelihood + 2.0 * n_parameters)


def fit_gmm(
    X,
    n_components: int,
    *,
    covariance_type: str = "full",
    n_init: int = 10,
    init: str = "kmeans++",
    tol: float = 1e-3,
    max_iter: int = 200,
    reg_covar: float = 1e-6,
    random_state: int | np.random.Generator | None = None,
    initial: Mapping | None = None,
    standardize: bool = False,
    feature_names: Sequence[str] | None = None,
    n_jobs: int | None = None,
    prior: ConjugatePrior | None = None,
) -> GaussianMixtureModel:
    """Fit a Gaussian mixture by EM, keeping the best of ``n_init`` starts.

    Parameters
    ----------
    X : array-like of shape (n_samples, d)
        Finite numbers; a DataFrame's columns name the features.
    n_components : int
        Number of mixture components K (1 <= K <= n_samples).
    covariance_type : {"full", "tied", "diag", "spherical"}
        Covariance structure, with scikit-learn's meaning and shapes.
    n_init : int
        Number of starts, run together. Ignored (one start) when ``initial`` is given.
    init : {"kmeans++", "random"}
        "kmeans++": k-means++ centers (drawn as scikit-learn draws them), two Lloyd steps,
        then one M-step on the nearest-center partition: between scikit-learn's
        ``init_params="k-means++"`` and its ``"kmeans"``. "random": the notebook's start, K
        distinct random rows as means, the data covariance for every component, equal weights.
    tol : float
        Stop a start when its mean log-likelihood per sample changes by less than ``tol``.
    max_iter : int
        Most EM iterations per start (0 scores the start as is).
    reg_covar : float
        Added to the diagonal of every covariance, keeping them positive definite.
    random_state : int, numpy.random.Generator or None
        Seeds the starts; an int makes the fit reproducible.
    initial : mapping, optional
        Explicit start: ``{"weights": (K,), "means": (K, d), "covariances": shaped per
        covariance type}`` or ``{"responsibilities": (n_samples, K)}``, in standardised
        units when ``standardize`` is True. Compares with other implementations from the
        same start (scikit-learn: ``weights_init``, ``means_init``, ``inv(precisions_init)``).
    standardize : bool
        Standardise the columns first (the pipeline does); the scaler is stored with the model.
    feature_names : sequence of str, optional
        Column names for messages and the scaler.
    n_jobs : int or None
        Threads for the call (see "Threads" in :mod:`songmix.em`). None: the calling thread
        alone, BLAS as the process has it; nothing is started or changed. ``k`` (-1: one per
        available core): ``k`` threads in all. Worker threads share the blocks of samples (a
        small input is one block, done on the calling thread) and BLAS is held to one thread,
        process-wide, until the call returns. The fit is the same up to rounding.
    prior : ConjugatePrior, optional
        mclust's conjugate prior (:mod:`songmix.em.prior`), set from the (standardised)
        samples: EM finds the posterior mode, and small components keep regular covariances.
        The log-likelihood, BIC and AIC are those of that mode.

    Returns
    -------
    model : GaussianMixtureModel

    Raises
    ------
    ValueError
        For invalid input or options (see the message for what to change).
    FitFailedError
        When every start failed (their reasons are listed).

    Warns
    -----
    ConvergenceWarning
        When the best start did not converge within ``max_iter`` iterations.
    """
    samples = check_samples(X, feature_names=feature_names)
    names = feature_names_of(X, feature_names, samples.shape[1])
    check_fit_options(n_components=n_components, n_samples=samples.shape[0], covariance_type=covariance_type,
                      n_init=n_init, init=init, tol=tol, max_iter=max_iter, reg_covar=reg_covar)
    n_workers = worker_count(n_jobs)
    scaler = fit_scaler(samples, feature_names=names) if standardize else None
    features = Features.build(
        scaler.transform(samples) if scaler else samples, covariance_type, n_workers
    )
    prior_values = (prior_parameters(prior, features.samples, n_components, covariance_type)
                    if prior is not None else None)
    with managed_blas(n_jobs):
        states, start, failures = _starts(
            features,
            n_components,
            initial=initial,
            init=init,
            n_init=n_init,
            random_state=random_state,
            covariance_type=covariance_type,
            reg_covar=reg_covar,
            prior=prior_values,
        )
        final, runs = run_em(
            features,
            start,
            failures,
            covariance_type=covariance_type,
            tol=tol,
            max_iter=max_iter,
            reg_covar=reg_covar,
            prior=prior_values,
        )
    final = final._replace(means=final.means + features.center)  # back to the caller's frame
    seeds = tuple(
        _seed_fit(index, state, run, final) for index, (state, run) in enumerate(zip(states, runs))
    )
    best = _best_seed(seeds)
    if not best.converged and max_iter > 0:
        warnings.warn(
            f"The best of {len(seeds)} EM starts did not converge within max_iter={max_iter} "
            f"iterations (tol={tol}). Increase max_iter or tol, or standardize the features.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return GaussianMixtureModel(
        covariance_type=covariance_type,
        weights=best.weights,
        means=best.means,
        covariances=best.covariances,
        precisions_cholesky=final.precisions_cholesky[best.seed],
        log_likelihood=best.log_likelihood,
        n_iter=best.n_iter,
        converged=best.converged,
        best_seed=best.seed,
        seeds=seeds,
        feature_names=names,
        scaler=scaler,
    )


def _starts(
    features: Features,
    n_components: int,
    *,
    initial: Mapping | None,
    init: str,
    n_init: int,
    random_state: int | np.random.Generator | None,
    covariance_type: str,
    reg_covar: float,
    prior: PriorParameters | None,
) -> tuple[list[int | None], MixtureParameters, list[str | None]]:
    """The seeds' random states (None for an explicit start), starting parameters, failures."""
    if initial is not None:
        checked = check_initial(
            initial,
            n_samples=features.n_samples,
            n_features=features.samples.shape[1],
            n_components=n_components,
            covariance_type=covariance_type,
        )
        start, failures = explicit_start(
            features, checked, covariance_type=covariance_type, reg_covar=reg_covar, prior=prior
        )
        return [None], start, failures
    states = seed_states(random_state, n_init)
    # The random start takes the data covariance, no M-step: the prior enters at the first.
    starter = {"kmeans++": partial(kmeans_plusplus_start, prior=prior), "random": random_start}[init]
    start, failures = starter(
        features,
        n_components,
        [np.random.default_rng(state) for state in states],
        covariance_type=covariance_type,
        reg_covar=reg_covar,
    )
    return list(states), start, failures


def _seed_fit(index: int, state: int | None, run: SeedRun, final: MixtureParameters) -> SeedFit:
    """Package seed ``index``'s outcome."""
    failed = run.failed_reason is not None
    return SeedFit(
        seed=index,
        random_state=state,
        log_likelihood=run.log_likelihood,
        n_iter=run.n_iter,
        converged=run.converged,
        failed_reason=run.failed_reason,
        weights=None if failed else final.weights[index],
        means=None if failed else final.means[index],
        covariances=None if failed else final.covariances[index],
        log_likelihood_trace=run.trace,
    )


def _best_seed(seeds: tuple[SeedFit, ...]) -> SeedFit:
    """The first usable seed whose log-likelihood ties with the highest, or FitFailedError.

    Starts that reach the same optimum differ only by rounding, and rounding depends on how
    the samples were split into blocks and threads: ties within ``_SAME_OPTIMUM`` go to the
    earliest seed, so the choice (and the order of the components) does not.
    """
    usable = [seed for seed in seeds if not seed.failed]
    if not usable:
        reasons = "; ".join(f"seed {seed.seed}: {seed.failed_reason}" for seed in seeds)
        if all(seed.random_state is None for seed in seeds):  # the start came from `initial`
            raise FitFailedError(
                f"EM from the explicit start failed ({reasons}). Change initial= so that every "
                "component starts on several samples (a mean among them and a covariance about "
                "as wide as their spread), or use fewer components."
            )
        raise FitFailedError(
            f"All {len(seeds)} EM starts failed ({reasons}). Try fewer components, a larger "
            "reg_covar, or standardize=True."
        )
    highest = max(seed.log_likelihood for seed in usable)
    return next(seed for seed in usable if seed.log_likelihood >= highest - _SAME_OPTIMUM)


def model_samples(model: GaussianMixtureModel, X) -> np.ndarray:
    """Validate ``X`` against the model and apply its scaler.

    Returns
    -------
    samples : ndarray of shape (n_samples, d)
        In the space the model was fitted in.
    """
    samples = check_samples(X, feature_names=model.feature_names)
    check_n_features(samples, model.n_features)
    return model.scaler.transform(samples) if model.scaler else samples


def seed_parameters(model: GaussianMixtureModel, seeds: Sequence[SeedFit]) -> MixtureParameters:
    """Stack the parameters of usable seeds (or the model itself) for vectorised scoring."""
    covariances = np.stack([seed.covariances for seed in seeds])
    factors, _ = precisions_cholesky(covariances, model.covariance_type)
    return MixtureParameters(
        np.stack([seed.weights for seed in seeds]),
        np.stack([seed.means for seed in seeds]),
        covariances,
        factors,
    )


def _model_parameters(model: GaussianMixtureModel) -> MixtureParameters:
    return MixtureParameters(
        model.weights[None], model.means[None], model.covariances[None], model.precisions_cholesky[None]
    )


def predict_proba(model: GaussianMixtureModel, X, *, n_jobs: int | None = None) -> np.ndarray:
    """Posterior probability of each component for each sample.

    Parameters
    ----------
    model : GaussianMixtureModel
    X : array-like of shape (n_samples, d)
        Raw samples (the model's scaler is applied).
    n_jobs : int or None
        Threads that share the samples, as for :func:`fit_gmm`.

    Returns
    -------
    probabilities : ndarray of shape (n_samples, K)
        Rows sum to 1.
    """
    return reduce_log_prob(model, X, _model_parameters(model), responsibilities_of, n_jobs)[0].T


def predict(model: GaussianMixtureModel, X, *, n_jobs: int | None = None) -> np.ndarray:
    """Most probable component of each sample, shape (n_samples,).

    ``n_jobs`` as for :func:`fit_gmm`.
    """
    return reduce_log_prob(model, X, _model_parameters(model), most_probable, n_jobs)[0]


def score_samples(model: GaussianMixtureModel, X, *, n_jobs: int | None = None) -> np.ndarray:
    """Log-density of each sample under the mixture, shape (n_samples,).

    In the standardised space when the model carries a scaler (consistent with
    ``model.log_likelihood``, ``bic`` and ``aic``). ``n_jobs`` as for :func:`fit_gmm`.
    """
    return reduce_log_prob(model, X, _model_parameters(model), log_density_of, n_jobs)[0]


def reduce_log_prob(
    model: GaussianMixtureModel, X, parameters: MixtureParameters, reduce, n_jobs: int | None
) -> np.ndarray:
    """:func:`~songmix.em._estep.map_log_prob` of ``parameters`` (the model's or its seeds')
    on raw samples ``X``, with ``n_jobs`` as for :func:`fit_gmm`."""
    n_workers = worker_count(n_jobs)
    samples = model_samples(model, X)
    with managed_blas(n_jobs):
        return map_log_prob(samples, parameters, model.covariance_type, reduce, n_workers=n_workers)


def full_covariances(model: GaussianMixtureModel) -> np.ndarray:
    """The covariances of ``model`` as full matrices, whatever its covariance type.

    Returns
    -------
    covariances : ndarray of shape (K, d, d)
        In the model's (standardised, when it has a scaler) units.
    """
    k, d = model.n_components, model.n_features
    covariances = np.asarray(model.covariances)
    if model.covariance_type == "full":
        return covariances.copy()
    if model.covariance_type == "tied":
        return np.broadcast_to(covariances, (k, d, d)).copy()
    if model.covariance_type == "diag":
        return covariances[:, :, None] * np.eye(d)
    return covariances[:, None, None] * np.eye(d)


def mixture_from_parameters(
    weights,
    means,
    covariances,
    *,
    covariance_type: str = "full",
    feature_names: Sequence[str] | None = None,
    scaler: Scaler | None = None,
) -> GaussianMixtureModel:
    """A model from known parameters (e.g. stored ones), ready for the predict functions.

    Parameters
    ----------
    weights : array-like of shape (K,)
    means : array-like of shape (K, d)
        In the scaler's standardised units when ``scaler`` is given.
    covariances : array-like, shaped per ``covariance_type``
        Symmetric positive definite matrices (full, tied; asymmetry within rounding is averaged
        away) or positive variances (diag, spherical).
    covariance_type : {"full", "tied", "diag", "spherical"}
    feature_names : sequence of str, optional
    scaler : Scaler, optional
        Applied to raw samples by the predict functions.

    Returns
    -------
    model : GaussianMixtureModel
        With no seeds (``seeds == ()``) and a NaN ``log_likelihood``: it was not fitted here.
        It holds copies: the caller's arrays are neither shared nor made read-only.

    Raises
    ------
    ValueError
        For parameters of the wrong shape, non-finite, weights that are not positive or do not
        sum to 1, and covariances that are not symmetric or not positive definite.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2:
        raise ValueError(f"means must have shape (K, d), got shape {means.shape}")
    n_components, n_features = means.shape
    checked = check_mixture_parameters(
        weights, means, covariances,
        n_components=n_components, n_features=n_features, covariance_type=covariance_type,
    )
    factors, _ = precisions_cholesky(checked["covariances"][None], covariance_type)
    names = tuple(feature_names) if feature_names is not None else (
        scaler.feature_names if scaler is not None else feature_names_of(means, None, n_features))
    return GaussianMixtureModel(
        covariance_type=covariance_type,
        weights=checked["weights"],
        means=checked["means"],
        covariances=checked["covariances"],
        precisions_cholesky=factors[0],
        log_likelihood=float("nan"),
        n_iter=0,
        converged=True,
        best_seed=0,
        seeds=(),
        feature_names=names,
        scaler=scaler,
    )
