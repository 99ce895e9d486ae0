"""The task that fits Gaussian mixtures with songmix's own EM (options: :mod:`songmix.tasks.options`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from songmix.em import (
    ConjugatePrior,
    GaussianMixtureModel,
    ModelSelection,
    Scaler,
    fit_gmm,
    fit_scaler,
    predict_proba,
    score_samples,
    seed_stability,
    select_model,
    selection_warnings,
)
from songmix.tasks.options import ModelOptions


@dataclass(frozen=True)
class MixtureFits:
    """The model selection of one feature set, and its chosen covariance type at every k.

    Attributes
    ----------
    feature_set : str
        ``"spotify"`` or ``"aubio"``.
    selection : ModelSelection
        BIC per (covariance type, k), the pairs left out and why.
    models : dict[int, GaussianMixtureModel]
        Best model of the chosen covariance type per k that could be fitted (refined on every
        track when the selection ran on a sample); each carries the scaler that standardized
        its input and applies it to raw features.
    stability : dict[int, ndarray of shape (n_seeds,)]
        ARI of each seed's clustering with the best seed's (NaN for failed seeds), on the
        tracks the seeds were fitted on (a large data set's selection sample).
    chosen_k : int
        The k of the pair with the lowest BIC, or the user's k.
    warnings : tuple of str
        Why the chosen model may not deserve trust (see :func:`songmix.em.selection_warnings`).
    log_density_p01 : dict[int, float]
        Per k, the 1st percentile of the fitted samples' log-densities: a new sample below it
        is unlike the samples the model was fitted on.
    """

    feature_set: str
    selection: ModelSelection
    models: dict[int, GaussianMixtureModel]
    stability: dict[int, np.ndarray]
    chosen_k: int
    warnings: tuple[str, ...] = ()
    log_density_p01: dict[int, float] = field(default_factory=dict)

    @property
    def covariance_type(self) -> str:
        return self.selection.chosen_covariance_type

    @property
    def scaler(self) -> Scaler:
        return self.models[self.chosen_k].scaler

    def probabilities(self, features: np.ndarray) -> dict[int, np.ndarray]:
        """Membership probabilities, ``(n_samples, k)`` per k, of the raw ``features`` (on
        every core: see :func:`fit_mixtures`)."""
        return {k: predict_proba(model, features, n_jobs=-1) for k, model in self.models.items()}


# Keyed on a digest of the matrix, not the matrix (hashing a million rows per run costs more
# than the digest); the result holds parameters only, never a row per sample.
@task(name="fit-mixtures", task_run_name="fit-mixtures[{feature_set}]",
      cache_policy=(INPUTS - "features") + TASK_SOURCE)
def fit_mixtures(
    feature_set: str, features: np.ndarray, data_sha256: str, feature_names: list[str],
    options: ModelOptions,
) -> MixtureFits:
    """Every (covariance type, k) pair of ``options`` the tracks support, over its seeds, on
    standardized ``features`` (columns ``feature_names``; ``data_sha256``: their digest,
    :func:`songmix.warehouse.records.data_sha256`); the pair with the lowest BIC is chosen, or
    the best covariance type at the user's k.

    Above ``options.selection_sample`` tracks the pairs are compared on a seeded sample of that
    many, and the chosen covariance type's best fit at each k is then refined by EM on every
    track from that start (:data:`songmix.tasks.options.LARGE_DATA_SET`); the seeds' stability
    is measured on the sample they were fitted on.

    Raises
    ------
    ValueError
        The features cannot be fitted (NaN, a constant column, no pair the tracks support,
        every pair failed...); the message says which and what to do.
    """
    scaler = fit_scaler(features, feature_names=feature_names)
    standardized = scaler.transform(features)
    sample = _selection_sample(standardized, options)
    prior = ConjugatePrior() if options.prior else None
    # Every core, as em's worker threads with BLAS held to one thread while they run: BLAS's own
    # threads wait for cores taken by other work (benchmarks/em.py, section (e)).
    selection = select_model(
        sample, options.ks, covariance_types=options.covariance_types, fixed_k=options.fixed_k,
        prior=prior, n_init=options.n_seeds, random_state=options.random_state,
        feature_names=feature_names, n_jobs=-1)
    chosen = selection.chosen
    fitted = {k: model for k, model in zip(chosen.ks, chosen.models) if model is not None}
    stability = {k: seed_stability(model, sample, n_jobs=-1) for k, model in fitted.items()}
    if len(sample) < len(standardized):
        fitted = {k: _refined(model, standardized, prior) for k, model in fitted.items()}
    models = {k: dataclasses.replace(model, scaler=scaler) for k, model in fitted.items()}
    return MixtureFits(
        feature_set=feature_set,
        selection=selection,
        models=models,
        stability=stability,
        chosen_k=selection.chosen_k,
        warnings=tuple(selection_warnings(selection)),
        log_density_p01={k: float(np.percentile(score_samples(model, features, n_jobs=-1), 1))
                         for k, model in models.items()},
    )


def _selection_sample(standardized: np.ndarray, options: ModelOptions) -> np.ndarray:
    """The rows the model selection is fitted on: all of them, or a seeded sample of
    ``options.selection_sample`` in their order."""
    n_rows = len(standardized)
    if n_rows <= options.selection_sample:
        return standardized
    rows = np.random.default_rng(options.random_state).choice(n_rows, options.selection_sample, replace=False)
    return standardized[np.sort(rows)]


def _refined(model: GaussianMixtureModel, standardized: np.ndarray,
             prior: ConjugatePrior | None) -> GaussianMixtureModel:
    """EM on every row from ``model``'s parameters (fitted on a sample of the same standardized
    rows): the maximum (or, with ``prior``, the posterior mode) of all the tracks' likelihood."""
    start = {"weights": model.weights, "means": model.means, "covariances": model.covariances}
    return fit_gmm(standardized, model.n_components, covariance_type=model.covariance_type,
                   initial=start, prior=prior, feature_names=model.feature_names, n_jobs=-1)
