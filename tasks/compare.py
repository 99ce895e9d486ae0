"""Tasks that measure how the Spotify and Aubio clusterings (and features) agree, and draw it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE, CacheKeyFnPolicy

from songmix.analysis.agreement import AgreementWithUncertainty, agreement_across_k, agreement_with_uncertainty
from songmix.analysis.compare import ClusteringComparison, compare_clusterings, matched_cluster_profiles
from songmix.analysis.features import DirectAgreement, FeatureAgreement, direct_agreement, feature_agreement
from songmix.analysis.plots import (
    plot_agreement_vs_k,
    plot_cluster_scatter,
    plot_contingency_heatmap,
    plot_feature_agreement,
    plot_information_criteria,
)
from songmix.analysis.report import SCATTER_FEATURES
from songmix.audio.accuracy import extractor_accuracy
from songmix.audio.features import AUBIO_CLUSTER_FEATURES
from songmix.em import GaussianMixtureModel, fit_gmm, predict
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES


#: Most points a cluster scatter draws.
MAX_SCATTER_POINTS = 20_000
#: The seed notebook's model: two components on these two Spotify features.
NOTEBOOK_FEATURES = ("acousticness", "energy")
NOTEBOOK_K = 2


class Clustering(Protocol):
    """A feature set's chosen clustering, as the figures draw it
    (:class:`songmix.warehouse.store.StoredClustering` is one)."""

    chosen_k: int
    labels: np.ndarray  # (n_tracks,)
    feature_names: tuple[str, ...]
    means: np.ndarray  # (k, d), the features' units
    covariances: np.ndarray  # (k, d, d), the features' units


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


def figure_inputs(
    clusterings: dict[str, Clustering],
    features: dict[str, pd.DataFrame],
    spotify_vs_aubio: Agreement | None,
    fit_curves: pd.DataFrame,
    feature_measures: FeatureMeasures | None,
    across_k: pd.DataFrame | None,
) -> dict[str, tuple[str, dict]]:
    """What each of the run's figures draws, by figure name: ``(plot function, arguments)``,
    the arguments plain values (arrays, frames, strings, numbers). ``features`` holds each
    clustering's features in its tracks' order; a scatter draws at most
    :data:`MAX_SCATTER_POINTS` of them, a seeded sample."""
    figures: dict[str, tuple[str, dict]] = {}
    for feature_set, clustering in clusterings.items():
        x_feature, y_feature = SCATTER_FEATURES[feature_set]
        drawn = _scatter_sample(len(clustering.labels))
        figures[f"{feature_set}_clusters"] = ("plot_cluster_scatter", {
            "features": features[feature_set][list(clustering.feature_names)].to_numpy(dtype=float)[drawn],
            "labels": clustering.labels[drawn], "means": clustering.means,
            "covariances": clustering.covariances, "feature_names": list(clustering.feature_names),
            "x_feature": x_feature, "y_feature": y_feature,
            "title": f"{feature_set.capitalize()} features, k={clustering.chosen_k} mixture"})
    if not fit_curves.empty:
        figures["information_criteria"] = ("plot_information_criteria", {
            "fits": fit_curves, "chosen_k": {name: c.chosen_k for name, c in clusterings.items()}})
    if spotify_vs_aubio is not None:
        figures["contingency"] = ("plot_contingency_heatmap", {
            "contingency": spotify_vs_aubio.clusters.matched_contingency,
            "title": "Spotify clusters (rows) vs Aubio clusters (columns)"})
    if feature_measures is not None:
        figures["feature_agreement"] = ("plot_feature_agreement", {"table": feature_measures.predicted.table})
    if across_k is not None and not across_k.empty:
        figures["agreement_vs_k"] = ("plot_agreement_vs_k", {"across_k": across_k})
    return figures


def _scatter_sample(n_points: int) -> np.ndarray:
    """Positions of the points a scatter draws: all, or a seeded sample of
    :data:`MAX_SCATTER_POINTS` in their order (beyond that a scatter is a blot)."""
    if n_points <= MAX_SCATTER_POINTS:
        return np.arange(n_points)
    return np.sort(np.random.default_rng(0).choice(n_points, MAX_SCATTER_POINTS, replace=False))


_PLOTTERS = {plotter.__name__: plotter for plotter in (
    plot_cluster_scatter, plot_information_criteria, plot_contingency_heatmap,
    plot_feature_agreement, plot_agreement_vs_k)}


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
    """PNG bytes of each figure of :func:`figure_inputs`, by name. A rerun on the same results
    takes them from the cache: drawing is most of a warm run's comparison stage."""
    return {name: _PLOTTERS[plotter](**arguments) for name, (plotter, arguments) in figures.items()}


@task(name="save-plots", task_run_name="save-plots")
def save_plots(figures: dict[str, bytes], out_dir: Path) -> dict[str, Path]:
    """Write each figure to ``out_dir/<name>.png``; returns the files by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {name: out_dir / f"{name}.png" for name in figures}
    for name, png in figures.items():
        written[name].write_bytes(png)
    return written
