"""Tasks that measure how the Spotify and Aubio clusterings (and features) agree, and draw it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.metadata import version

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE, CacheKeyFnPolicy

from songmix.analysis.agreement import AgreementWithUncertainty, agreement_across_k, agreement_with_uncertainty
from songmix.analysis.compare import ClusteringComparison, compare_clusterings, matched_cluster_profiles
from songmix.analysis.features import DirectAgreement, FeatureAgreement, direct_agreement, feature_agreement
from songmix.analysis.report import PLOTTERS
from songmix.audio.accuracy import extractor_accuracy
from songmix.audio.features import AUBIO_CLUSTER_FEATURES
from songmix.em import GaussianMixtureModel, fit_gmm, predict
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES


#: The seed notebook's model: two components on these two Spotify features.
NOTEBOOK_FEATURES = ("acousticness", "energy")
NOTEBOOK_K = 2


@dataclass(frozen=True)
class Agreement:
    """How two labelings of the same tracks agree."""

    left_set: str
    right_set: str
    left_k: int
    right_k: int
    uncertainty: AgreementWithUncertainty
    clusters: ClusteringComparison


@task(name="measure-agreement", task_run_name="measure-agreement[{left_set} vs {right_set}]",
      cache_policy=INPUTS + TASK_SOURCE)
def measure_agreement(
    left_set: str, left_labels: np.ndarray, right_set: str, right_labels: np.ndarray,
    *, n_resamples: int, random_state: int,
) -> Agreement:
    """ARI, NMI and AMI with intervals and a permutation null, plus the matched contingency."""
    return Agreement(
        left_set=left_set, right_set=right_set,
        left_k=len(np.unique(left_labels)), right_k=len(np.unique(right_labels)),
        uncertainty=agreement_with_uncertainty(
            left_labels, right_labels, n_bootstrap=n_resamples, n_permutations=n_resamples,
            random_state=random_state, name_a=left_set, name_b=right_set),
        clusters=compare_clusterings(left_labels, right_labels, name_a=left_set, name_b=right_set),
    )


@task(name="describe-clusters", task_run_name="describe-clusters[{agreement.left_set} vs {agreement.right_set}]",
      cache_policy=INPUTS + TASK_SOURCE)
def describe_clusters(
    agreement: Agreement, left_labels: np.ndarray, right_labels: np.ndarray, spotify: pd.DataFrame
) -> pd.DataFrame:
    """Mean Spotify features and a short name for every cluster of both sides, by matched pair.

    ``spotify`` holds the labelled tracks' Spotify features in the labels' order: both sides'
    clusters are described in Spotify's terms, so a reader can tell which ones correspond.
    """
    return matched_cluster_profiles(
        agreement.clusters, left_labels, right_labels, spotify,
        feature_columns=list(SPOTIFY_CLUSTER_FEATURES), name_a=agreement.left_set,
        name_b=agreement.right_set)


# Keyed on the two columns as an array (a frame would hash its index of track ids too); the
# result is the model, not a label per track.
@task(name="fit-notebook-model", task_run_name="fit-notebook-model",
      cache_policy=INPUTS + TASK_SOURCE)
def fit_notebook_model(features: np.ndarray, *, n_seeds: int, random_state: int) -> GaussianMixtureModel:
    """The seed notebook's model: k=2 EM on acousticness and energy
    (``features``: those two columns, in :data:`NOTEBOOK_FEATURES` order).

    Raises
    ------
    ValueError
        The two columns cannot be fitted (too few tracks, a constant column).
    """
    return fit_gmm(features, NOTEBOOK_K, n_init=n_seeds, random_state=random_state,
                   standardize=True, feature_names=list(NOTEBOOK_FEATURES))


def notebook_labels(spotify: pd.DataFrame, *, n_seeds: int, random_state: int) -> np.ndarray:
    """Each track's cluster under the seed notebook's model fitted on ``spotify``'s tracks."""
    features = spotify[list(NOTEBOOK_FEATURES)].to_numpy(dtype=float)
    return predict(fit_notebook_model(features, n_seeds=n_seeds, random_state=random_state), features)


@task(name="measure-agreement-across-k", task_run_name="measure-agreement-across-k",
      cache_policy=INPUTS + TASK_SOURCE)
def measure_agreement_across_k(
    spotify_labels: dict[int, np.ndarray], aubio_labels: dict[int, np.ndarray],
    truth: np.ndarray | None, *, n_resamples: int,
) -> pd.DataFrame:
    """Agreement of the two clusterings (and each with the truth) at every k fitted, with
    half-sample intervals from ``n_resamples`` resamples."""
    return agreement_across_k(spotify_labels, aubio_labels, ground_truth=truth,
                              name_a="spotify", name_b="aubio", n_bootstrap=n_resamples)


@dataclass(frozen=True)
class FeatureMeasures:
    """How Aubio's features relate to Spotify's, feature by feature."""

    predicted: FeatureAgreement
    direct: DirectAgreement


@task(name="measure-feature-agreement", task_run_name="measure-feature-agreement",
      cache_policy=INPUTS + TASK_SOURCE)
def measure_feature_agreement(spotify: pd.DataFrame, aubio: pd.DataFrame) -> FeatureMeasures:
    """Cross-validated R² of each Spotify feature from Aubio's, and direct agreement of the
    features both measure (tempo, key, mode, loudness)."""
    return FeatureMeasures(
        predicted=feature_agreement(spotify, aubio, aubio_columns=list(AUBIO_CLUSTER_FEATURES)),
        direct=direct_agreement(spotify, aubio),
    )


@task(name="measure-extractor-accuracy", task_run_name="measure-extractor-accuracy",
      cache_policy=INPUTS + TASK_SOURCE)
def measure_extractor_accuracy(
    aubio: pd.DataFrame, truth: pd.DataFrame, plain_aubio: pd.Series | None = None
) -> dict[str, float]:
    """Tempo Acc1/Acc2 and key score of the extractor against ground truth
    (``songmix.audio.accuracy.extractor_accuracy``)."""
    return extractor_accuracy(aubio, truth, plain_aubio)


def _digest_into(digest, value) -> None:
    """Feed ``value`` (plain values, arrays, frames, nested dicts and sequences) to ``digest``,
    by content: equal values give equal bytes whichever objects hold them."""
    if isinstance(value, np.ndarray):
        digest.update(f"array {value.dtype.str} {value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, pd.DataFrame):
        _digest_into(digest, [str(column) for column in value.columns])
        _digest_into(digest, pd.util.hash_pandas_object(value, index=True).to_numpy())
    elif isinstance(value, dict):
        for key in sorted(value):
            _digest_into(digest, key)
            _digest_into(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"sequence {len(value)}".encode())
        for item in value:
            _digest_into(digest, item)
    else:
        digest.update(f"{type(value).__name__} {value!r}".encode())


def _figures_key(context, parameters: dict) -> str:
    """What the figures draw, and the songmix version that draws them (the plot functions
    live outside the task's source)."""
    digest = hashlib.sha256(version("songmix").encode())
    _digest_into(digest, parameters["figures"])
    return digest.hexdigest()


# Cached on what the figures draw, compared by content: pickling the results they come from
# (the INPUTS policy) gives different bytes for a fit computed now and the same fit read back
# from the cache, so a rerun would draw everything again.
@task(name="render-plots", task_run_name="render-plots",
      cache_policy=TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=_figures_key))
def render_plots(figures: dict[str, tuple[str, dict]]) -> dict[str, bytes]:
    """PNG bytes of each figure, by name, from ``(plot function name, arguments)`` as
    :func:`songmix.analysis.report.figure_specs` assembles them. A rerun on the same results
    takes them from the cache: drawing is most of a warm run's report."""
    return {name: PLOTTERS[plotter](**arguments) for name, (plotter, arguments) in figures.items()}
