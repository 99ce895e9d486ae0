"""The task that fits Gaussian mixtures with songmix's own EM."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from songmix.em import GaussianMixtureModel, KSelection, Scaler, predict_proba, select_k, seed_stability


@dataclass(frozen=True)
class MixtureFits:
    """Every k fitted on one feature set.

    Attributes
    ----------
    feature_set : str
        ``"spotify"`` or ``"aubio"``.
    selection : KSelection
        BIC and AIC per k (``inf`` where every seed failed) and why a k failed.
    models : dict[int, GaussianMixtureModel]
        Best model per k that could be fitted; each carries the scaler that standardized
        its input and applies it to raw features.
    stability : dict[int, ndarray of shape (n_seeds,)]
        ARI of each seed's clustering with the best seed's (NaN for failed seeds).
    chosen_k : int
        The k with the lowest BIC, or the user's k.
    """

    feature_set: str
    selection: KSelection
    models: dict[int, GaussianMixtureModel]
    stability: dict[int, np.ndarray]
    chosen_k: int

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
    feature_set: str,
    features: np.ndarray,
    data_sha256: str,
    feature_names: list[str],
    ks: list[int],
    *,
    fixed_k: int | None,
    n_seeds: int,
    covariance_type: str,
    random_state: int,
) -> MixtureFits:
    """Fit every k in ``ks`` over ``n_seeds`` EM seeds on standardized ``features``
    (``data_sha256``: their digest, :func:`songmix.warehouse.records.data_sha256`).

    A k above the number of samples cannot be fitted and is left out.

    Raises
    ------
    ValueError
        The features cannot be fitted (NaN, a constant column, fewer tracks than k, every
        k failed...); the message says which and what to do.
    """
    usable_ks = [k for k in ks if k <= len(features)]
    # Every core, as em's worker threads with BLAS held to one thread while they run: BLAS's own
    # threads wait for cores taken by other work (benchmarks/em.py, section (e)).
    selection = select_k(features, usable_ks, criterion="bic", covariance_type=covariance_type,
                         n_init=n_seeds, random_state=random_state, standardize=True,
                         feature_names=feature_names, n_jobs=-1)
    models = {k: model for k, model in zip(selection.ks, selection.models) if model is not None}
    chosen_k = fixed_k if fixed_k is not None else selection.chosen_k
    if chosen_k not in models:
        failure = dict(zip(selection.ks, selection.failures)).get(chosen_k)
        raise ValueError(f"the {feature_set} mixture with k={chosen_k} could not be fitted: {failure}")
    return MixtureFits(
        feature_set=feature_set,
        selection=selection,
        models=models,
        stability={k: seed_stability(model, features, n_jobs=-1) for k, model in models.items()},
        chosen_k=chosen_k,
    )
