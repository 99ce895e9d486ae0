"""Validation of two clusterings of the same tracks, shared by every comparison.

Conventions: a clustering is a 1-D array of hard labels, one per track, in the same track
order on both sides. Labels may be any hashable values of one kind (ints, strings); they are
encoded as codes ``0 .. k-1`` in sorted label order, and the original labels are kept so
tables can show them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Below this many tracks an interval or p-value is too coarse to support a conclusion;
# the comparison still runs and says so.
MIN_TRACKS_FOR_INFERENCE = 20


@dataclass(frozen=True)
class LabelPair:
    """Two clusterings of the same tracks, encoded as integer codes.

    Attributes
    ----------
    codes_a, codes_b : ndarray of shape (n_tracks,), dtype int64
        Cluster codes ``0 .. k-1``; code ``c`` stands for ``classes_a[c]`` (resp. ``b``).
    classes_a : ndarray of shape (n_clusters_a,)
        Sorted distinct labels of clustering a.
    classes_b : ndarray of shape (n_clusters_b,)
        Sorted distinct labels of clustering b.
    """

    codes_a: np.ndarray
    codes_b: np.ndarray
    classes_a: np.ndarray
    classes_b: np.ndarray

    @property
    def n_tracks(self) -> int:
        return int(self.codes_a.shape[0])

    @property
    def n_clusters_a(self) -> int:
        return int(self.classes_a.shape[0])

    @property
    def n_clusters_b(self) -> int:
        return int(self.classes_b.shape[0])

    @property
    def degenerate(self) -> bool:
        """True when either side puts every track in one cluster."""
        return self.n_clusters_a < 2 or self.n_clusters_b < 2


def _as_label_array(labels, *, name: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of cluster labels, one per track; got shape "
            f"{array.shape}. If these are membership probabilities, pass "
            f"probabilities.argmax(axis=1)."
        )
    if array.dtype.kind == "f":
        if np.isnan(array).any():
            raise ValueError(
                f"{name} contains NaN; drop the tracks without a cluster from both "
                f"clusterings before comparing them."
            )
        if not np.array_equal(array, np.round(array)):
            raise ValueError(
                f"{name} holds non-integer floats; cluster labels must be discrete. "
                f"Did you pass probabilities or features instead of hard labels?"
            )
        array = array.astype(np.int64)
    return array


def validate_label_pair(labels_a, labels_b) -> LabelPair:
    """Check two clusterings of the same tracks and encode them as codes.

    Parameters
    ----------
    labels_a, labels_b : array-like of shape (n_tracks,)
        Hard cluster labels, one per track, the same track order on both sides.

    Returns
    -------
    LabelPair

    Raises
    ------
    ValueError
        If a side is not 1-D, holds NaN or non-integer floats, the lengths differ, or there
        are fewer than two tracks.
    """
    array_a = _as_label_array(labels_a, name="labels_a")
    array_b = _as_label_array(labels_b, name="labels_b")
    if array_a.shape[0] != array_b.shape[0]:
        raise ValueError(
            f"labels_a has {array_a.shape[0]} tracks but labels_b has {array_b.shape[0]}; "
            f"align both clusterings on the same tracks (inner join on track_id) first."
        )
    if array_a.shape[0] < 2:
        raise ValueError(
            f"need at least 2 tracks to compare clusterings, got {array_a.shape[0]}; "
            f"check that the two feature sets share track ids."
        )
    classes_a, codes_a = np.unique(array_a, return_inverse=True)
    classes_b, codes_b = np.unique(array_b, return_inverse=True)
    return LabelPair(
        codes_a=codes_a.astype(np.int64),
        codes_b=codes_b.astype(np.int64),
        classes_a=classes_a,
        classes_b=classes_b,
    )


def label_pair_notes(pair: LabelPair, *, name_a: str = "a", name_b: str = "b") -> tuple[str, ...]:
    """Plain-language caveats about a comparison (single cluster, few tracks).

    Parameters
    ----------
    pair : LabelPair
    name_a, name_b : str
        How the two clusterings are called in the notes.

    Returns
    -------
    tuple of str
        Empty when nothing needs saying.
    """
    notes = []
    for name, n_clusters in ((name_a, pair.n_clusters_a), (name_b, pair.n_clusters_b)):
        if n_clusters < 2:
            notes.append(
                f"clustering {name} puts all {pair.n_tracks} tracks in one cluster: "
                f"agreement with it carries no information (ARI/NMI/AMI are 0 by "
                f"convention, 1 if both sides have one cluster)."
            )
    if pair.n_tracks < MIN_TRACKS_FOR_INFERENCE:
        notes.append(
            f"only {pair.n_tracks} tracks have both clusterings (fewer than "
            f"{MIN_TRACKS_FOR_INFERENCE}): intervals and p-values are too coarse to rely on."
        )
    return tuple(notes)
