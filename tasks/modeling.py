"""Tasks that fit Gaussian mixtures with songmix's own EM and compare clusterings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from songmix.analysis.compare import compare_clusterings
from songmix.em import GaussianMixtureModel, Scaler, fit_scaler, predict_proba, select_k, seed_stability


@dataclass(frozen=True)
class MixtureFits:
    """Every k fitted on one feature set, standardized by ``scaler``.

    Attributes
    ----------
    feature_set : str
        ``"spotify"`` or ``"aubio"``.
    scaler : Scaler
        The standardization fitted on the input; stored with the models.
    models : dict[int, GaussianMixtureModel]
        Best model per k.
    probabilities : dict[int, ndarray of shape (n_samples, k)]
        Membership probabilities under each k's model.
    stability : dict[int, ndarray of shape (n_seeds,)]
        ARI of each seed's clustering with the best seed's (NaN for failed seeds).
    chosen_k : int
        The k with the lowest BIC, or the user's k.
    """

    feature_set: str
    scaler: Scaler
    models: dict[int, GaussianMixtureModel]
    probabilities: dict[int, np.ndarray]
    stability: dict[int, np.ndarray]
    chosen_k: int


@task(name="fit-mixtures", task_run_name="fit-mixtures[{feature_set}]",
      cache_policy=INPUTS + TASK_SOURCE)
def fit_mixtures(
    feature_set: str,
    features: np.ndarray,
    feature_names: list[str],
    ks: list[int],
    *,
    fixed_k: int | None,
    n_seeds: int,
    covariance_type: str,
    random_state: int,
) -> MixtureFits:
    """Standardize ``features`` and fit every k in ``ks`` over ``n_seeds`` EM seeds.

    Raises
    ------
    ValueError
        The features cannot be fitted (NaN, a constant column, fewer tracks than k...);
        the message says which and what to do.
    """
    scaler = fit_scaler(features, feature_names=feature_names)
    standardized = scaler.transform(features)
    selection = select_k(
        standardized, ks, criterion="bic", covariance_type=covariance_type,
        n_init=n_seeds, random_state=random_state,
    )
    models = dict(zip(selection.ks, selection.models))
    return MixtureFits(
        feature_set=feature_set,
        scaler=scaler,
        models=models,
        probabilities={k: predict_proba(model, standardized) for k, model in models.items()},
        stability={k: seed_stability(model, standardized) for k, model in models.items()},
        chosen_k=fixed_k if fixed_k is not None else selection.chosen_k,
    )


@task(name="compare-clusterings", task_run_name="compare-clusterings[{left_set} vs {right_set}]",
      cache_policy=INPUTS + TASK_SOURCE)
def compare_labelings(left_set: str, left_labels: np.ndarray, right_set: str,
                      right_labels: np.ndarray):
    """ARI, NMI, AMI, contingency table and Hungarian matching of two labelings."""
    return compare_clusterings(left_labels, right_labels)
