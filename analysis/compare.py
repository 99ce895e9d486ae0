"""Cluster-level comparison of two clusterings of the same tracks.

Conventions: clustering a is the reference (Spotify's, in songmix) and b the candidate
(Aubio's). Clusters are matched one-to-one by the Hungarian method on the contingency table
(maximising tracks shared); with ``k_a != k_b`` the surplus clusters stay unmatched. For a
matched pair, precision is the share of b's cluster that lies in a's cluster, recall the share
of a's cluster that b's cluster recovers, Jaccard the overlap over the union.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from songmix.analysis.agreement import agreement_from_tables, contingency_table
from songmix.analysis.labels import label_pair_notes, validate_label_pair

# Words for a feature whose cluster mean lies below / above the overall mean. Features not
# listed are named "low <feature>" / "high <feature>".
FEATURE_WORDS: Mapping[str, tuple[str, str]] = {
    "danceability": ("still", "danceable"),
    "energy": ("calm", "energetic"),
    "loudness": ("quiet", "loud"),
    "speechiness": ("sung", "spoken"),
    "acousticness": ("electric", "acoustic"),
    "instrumentalness": ("vocal", "instrumental"),
    "liveness": ("studio", "live"),
    "valence": ("sad", "happy"),
    "tempo": ("slow", "fast"),
    "onset_rate": ("sparse", "busy"),
    "spectral_centroid_mean": ("dark", "bright"),
}

# A cluster mean closer than this many overall standard deviations to the overall mean is
# unremarkable and does not earn a word.
_NAMING_MIN_ABS_Z = 0.5


@dataclass(frozen=True)
class MatchedPair:
    """Two clusters paired by the Hungarian matching.

    Attributes
    ----------
    cluster_a, cluster_b : label
        Original labels of the paired clusters.
    size_a, size_b : int
        Tracks in each cluster.
    overlap : int
        Tracks in both.
    precision : float
        ``overlap / size_b``.
    recall : float
        ``overlap / size_a``.
    jaccard : float
        ``overlap / (size_a + size_b - overlap)``.
    """

    cluster_a: object
    cluster_b: object
    size_a: int
    size_b: int
    overlap: int
    precision: float
    recall: float
    jaccard: float


@dataclass(frozen=True)
class ClusteringComparison:
    """Everything needed to judge how two clusterings line up.

    Attributes
    ----------
    n_tracks, n_clusters_a, n_clusters_b : int
    ari, nmi, ami : float
        As :func:`~songmix.analysis.agreement.agreement_from_tables` computes them (equal to
        ``sklearn.metrics``, single-cluster conventions included).
    contingency : DataFrame of shape (n_clusters_a, n_clusters_b)
        Track counts; index = labels of a (named ``name_a``), columns = labels of b.
    matched_contingency : DataFrame
        The same counts reordered so matched pairs lie on the diagonal (matched pairs in a's
        label order first, unmatched clusters after them).
    matched_pairs : tuple of MatchedPair
        In a's label order.
    unmatched_a, unmatched_b : tuple
        Labels left without a partner when the cluster counts differ.
    degenerate : bool
        True when a side has a single cluster.
    notes : tuple of str
        Plain-language caveats; empty when none.
    """

    n_tracks: int
    n_clusters_a: int
    n_clusters_b: int
    ari: float
    nmi: float
    ami: float
    contingency: pd.DataFrame
    matched_contingency: pd.DataFrame
    matched_pairs: tuple[MatchedPair, ...]
    unmatched_a: tuple
    unmatched_b: tuple
    degenerate: bool
    notes: tuple[str, ...]


def _matched_pairs(table: np.ndarray, classes_a, classes_b) -> tuple[np.ndarray, np.ndarray, tuple[MatchedPair, ...]]:
    rows, cols = linear_sum_assignment(table, maximize=True)
    sizes_a, sizes_b = table.sum(axis=1), table.sum(axis=0)
    pairs = []
    for row, col in zip(rows, cols):
        overlap = int(table[row, col])
        size_a, size_b = int(sizes_a[row]), int(sizes_b[col])
        pairs.append(
            MatchedPair(
                cluster_a=classes_a[row].item(),
                cluster_b=classes_b[col].item(),
                size_a=size_a,
                size_b=size_b,
                overlap=overlap,
                precision=overlap / size_b,
                recall=overlap / size_a,
                jaccard=overlap / (size_a + size_b - overlap),
            )
        )
    return rows, cols, tuple(pairs)


def compare_clusterings(
    labels_a, labels_b, *, name_a: str = "a", name_b: str = "b"
) -> ClusteringComparison:
    """Compare two clusterings of the same tracks: scores, contingency, matched clusters.

    Parameters
    ----------
    labels_a, labels_b : array-like of shape (n_tracks,)
        Hard cluster labels of the same tracks in the same order; a is the reference.
    name_a, name_b : str
        Names of the two clusterings (axis names of the contingency tables, notes).

    Returns
    -------
    ClusteringComparison

    Raises
    ------
    ValueError
        If the labels are not 1-D, differ in length, hold NaN, or cover fewer than 2 tracks.
    """
    pair = validate_label_pair(labels_a, labels_b)
    table = contingency_table(pair)
    scores = agreement_from_tables(table)
    rows, cols, matched = _matched_pairs(table, pair.classes_a, pair.classes_b)
    unmatched_rows = np.setdiff1d(np.arange(pair.n_clusters_a), rows)
    unmatched_cols = np.setdiff1d(np.arange(pair.n_clusters_b), cols)
    contingency = pd.DataFrame(
        table,
        index=pd.Index(pair.classes_a, name=name_a),
        columns=pd.Index(pair.classes_b, name=name_b),
    )
    matched_contingency = contingency.iloc[
        np.concatenate([rows, unmatched_rows]), np.concatenate([cols, unmatched_cols])
    ]
    return ClusteringComparison(
        n_tracks=pair.n_tracks,
        n_clusters_a=pair.n_clusters_a,
        n_clusters_b=pair.n_clusters_b,
        ari=float(scores["ari"]),
        nmi=float(scores["nmi"]),
        ami=float(scores["ami"]),
        contingency=contingency,
        matched_contingency=matched_contingency,
        matched_pairs=matched,
        unmatched_a=tuple(pair.classes_a[unmatched_rows].tolist()),
        unmatched_b=tuple(pair.classes_b[unmatched_cols].tolist()),
        degenerate=pair.degenerate,
        notes=label_pair_notes(pair, name_a=name_a, name_b=name_b),
    )


# ------------------------------------------------------------------------ cluster profiles


def _numeric_features(features: pd.DataFrame, *, n_tracks: int | None = None) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise ValueError(f"features must be a pandas DataFrame, got {type(features).__name__}")
    numeric = features.select_dtypes(include="number")
    if numeric.shape[1] == 0:
        raise ValueError(
            f"features has no numeric column (columns: {list(features.columns)}); pass the "
            f"feature table, not the track metadata."
        )
    if n_tracks is not None and len(numeric) != n_tracks:
        raise ValueError(
            f"features has {len(numeric)} rows but the labels cover {n_tracks} tracks; "
            f"pass the features of exactly the labelled tracks, in the same order."
        )
    return numeric


def cluster_feature_means(labels, features: pd.DataFrame) -> pd.DataFrame:
    """Mean of each numeric feature per cluster.

    Parameters
    ----------
    labels : array-like of shape (n_tracks,)
        Hard cluster labels.
    features : DataFrame of shape (n_tracks, n_features)
        Feature rows of the same tracks in the same order (non-numeric columns ignored).

    Returns
    -------
    DataFrame of shape (n_clusters, 1 + n_numeric_features)
        Index = cluster label (name ``cluster``); columns ``n_tracks`` then feature means.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (one cluster per track), got shape {labels.shape}")
    numeric = _numeric_features(features, n_tracks=labels.shape[0]).reset_index(drop=True)
    grouped = numeric.groupby(pd.Series(labels, name="cluster"), sort=True)
    means = grouped.mean()
    means.insert(0, "n_tracks", grouped.size())
    return means


def name_clusters(
    cluster_means: pd.DataFrame,
    track_features: pd.DataFrame,
    *,
    n_words: int = 2,
    words: Mapping[str, tuple[str, str]] = FEATURE_WORDS,
) -> list[str]:
    """Short deterministic names ("acoustic, quiet") from each cluster's most unusual features.

    A feature's deviation is the z-score of the cluster mean against the overall track
    distribution: ``(cluster mean - overall mean) / overall std``. The ``n_words`` largest
    absolute deviations of at least 0.5 name the cluster, most deviant first (ties: column
    order); a cluster with none is "typical".

    Parameters
    ----------
    cluster_means : DataFrame of shape (n_clusters, n_features)
        Per-cluster feature means (e.g. from :func:`cluster_feature_means`; a ``n_tracks``
        column or any column absent from ``track_features`` is ignored).
    track_features : DataFrame of shape (n_tracks, n_features)
        The tracks' features, giving the overall mean and standard deviation.
    n_words : int, default 2
        Most words per name.
    words : dict of str to (str, str), default FEATURE_WORDS
        Word for below / above the overall mean, per feature.

    Returns
    -------
    list of str
        One name per row of ``cluster_means``, in its order.
    """
    if n_words < 1:
        raise ValueError(f"n_words must be at least 1, got {n_words}")
    numeric = _numeric_features(track_features)
    shared = [c for c in cluster_means.columns if c in numeric.columns and c != "n_tracks"]
    if not shared:
        raise ValueError(
            f"cluster_means and track_features share no feature column "
            f"({list(cluster_means.columns)} vs {list(numeric.columns)}); pass means of the "
            f"same features."
        )
    spread = numeric[shared].std(ddof=0).replace(0.0, np.nan)
    z_scores = (cluster_means[shared].astype(float) - numeric[shared].mean()) / spread
    names = []
    for _, row in z_scores.iterrows():
        strength = row.abs().fillna(0.0)
        ranked = strength[strength >= _NAMING_MIN_ABS_Z].sort_values(ascending=False, kind="stable")
        chosen = []
        for feature in ranked.index[:n_words]:
            low, high = words.get(feature, (f"low {feature}", f"high {feature}"))
            chosen.append(high if row[feature] > 0 else low)
        names.append(", ".join(chosen) if chosen else "typical")
    return names


def matched_cluster_profiles(
    comparison: ClusteringComparison,
    labels_a,
    labels_b,
    features: pd.DataFrame,
    *,
    feature_columns: Sequence[str] | None = None,
    name_a: str = "a",
    name_b: str = "b",
) -> pd.DataFrame:
    """Mean features and a short name for every cluster on both sides, by matched pair.

    Parameters
    ----------
    comparison : ClusteringComparison
        From :func:`compare_clusterings` on the same labels.
    labels_a, labels_b : array-like of shape (n_tracks,)
    features : DataFrame of shape (n_tracks, n_features)
        Features to describe clusters with (in songmix: Spotify's, for both sides), rows in
        the labels' track order.
    feature_columns : sequence of str, optional
        Columns to use; default every numeric column.
    name_a, name_b : str
        Values of the ``side`` column.

    Returns
    -------
    DataFrame
        Two rows per matched pair (side a then b), then unmatched clusters. Columns:
        ``pair`` (1-based, <NA> when unmatched), ``side``, ``cluster``, ``n_tracks``,
        ``cluster_name``, then one mean per feature.
    """
    numeric = _numeric_features(features)
    if feature_columns is not None:
        missing = [c for c in feature_columns if c not in numeric.columns]
        if missing:
            raise ValueError(
                f"feature_columns {missing} are not numeric columns of features "
                f"(have {list(numeric.columns)})"
            )
        numeric = numeric[list(feature_columns)]
    sides = {}
    for side, labels in ((name_a, labels_a), (name_b, labels_b)):
        means = cluster_feature_means(labels, numeric)
        means.insert(1, "cluster_name", name_clusters(means, numeric))
        sides[side] = means
    order = []
    for number, pair in enumerate(comparison.matched_pairs, start=1):
        order += [(number, name_a, pair.cluster_a), (number, name_b, pair.cluster_b)]
    order += [(pd.NA, name_a, c) for c in comparison.unmatched_a]
    order += [(pd.NA, name_b, c) for c in comparison.unmatched_b]
    rows = [
        {"pair": number, "side": side, "cluster": cluster, **sides[side].loc[cluster].to_dict()}
        for number, side, cluster in order
    ]
    profiles = pd.DataFrame(rows)
    profiles["pair"] = profiles["pair"].astype("Int64")
    profiles["n_tracks"] = profiles["n_tracks"].astype(int)
    return profiles
