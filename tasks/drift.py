"""The task that measures how a run's clustering drifted from the previous run's."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from songmix.analysis.compare import compare_clusterings


@dataclass(frozen=True)
class Drift:
    """How one feature set's chosen clustering changed between two runs.

    Attributes
    ----------
    feature_set : str
    previous_k, k : int
        Clusters the previous and this run chose.
    n_common : int
        Tracks both runs clustered.
    ari : float or None
        Adjusted Rand index on the common tracks; None with fewer than 2 of them.
    changed : DataFrame
        Common tracks whose cluster changed after matching: columns track_id,
        previous_cluster, cluster, matched_cluster (the previous run's label this run's
        cluster was matched to; NaN when it has no partner).
    new_tracks, vanished_tracks : tuple of str
        Tracks only this run, or only the previous run, clustered (sorted).
    """

    feature_set: str
    previous_k: int
    k: int
    n_common: int
    ari: float | None
    changed: pd.DataFrame
    new_tracks: tuple[str, ...]
    vanished_tracks: tuple[str, ...]

    def headline(self) -> str:
        ari = "n/a" if self.ari is None else f"{self.ari:.3f}"
        return (f"{self.feature_set}: k {self.previous_k}→{self.k}, ARI {ari} on {self.n_common} "
                f"common tracks, {len(self.changed)} changed cluster, {len(self.new_tracks)} new, "
                f"{len(self.vanished_tracks)} vanished")


def drift_between(previous: pd.DataFrame, current: pd.DataFrame, *, feature_set: str) -> Drift:
    """Compare two runs' labels of one feature set.

    Parameters
    ----------
    previous, current : DataFrame with columns track_id, cluster, k
        Each run's chosen-k assignment, one row per track.
    feature_set : str

    Returns
    -------
    Drift

    Raises
    ------
    ValueError
        A frame lacks a column or repeats a track.
    """
    for name, frame in (("previous", previous), ("current", current)):
        missing = {"track_id", "cluster", "k"} - set(frame.columns)
        if missing:
            raise ValueError(f"{name} assignments lack columns {sorted(missing)}")
        if frame["track_id"].duplicated().any():
            raise ValueError(f"{name} assignments repeat tracks: pass one feature set's chosen k")
    before = previous.set_index("track_id")["cluster"]
    after = current.set_index("track_id")["cluster"]
    common = sorted(set(before.index) & set(after.index))
    ari, changed = None, pd.DataFrame(columns=["track_id", "previous_cluster", "cluster", "matched_cluster"])
    if len(common) >= 2:
        comparison = compare_clusterings(before.loc[common].to_numpy(), after.loc[common].to_numpy(),
                                         name_a="previous", name_b="current")
        ari = comparison.ari
        # The previous run's label each of this run's clusters stands for.
        matched = {pair.cluster_b: pair.cluster_a for pair in comparison.matched_pairs}
        frame = pd.DataFrame({"track_id": common, "previous_cluster": before.loc[common].to_numpy(),
                              "cluster": after.loc[common].to_numpy()})
        frame["matched_cluster"] = frame["cluster"].map(matched)
        changed = frame[frame["matched_cluster"] != frame["previous_cluster"]].reset_index(drop=True)
    return Drift(
        feature_set=feature_set,
        previous_k=int(previous["k"].iloc[0]) if len(previous) else 0,
        k=int(current["k"].iloc[0]) if len(current) else 0,
        n_common=len(common),
        ari=ari,
        changed=changed,
        new_tracks=tuple(sorted(set(after.index) - set(before.index))),
        vanished_tracks=tuple(sorted(set(before.index) - set(after.index))),
    )


# Cheap to recompute: nothing worth persisting for a later run.
@task(name="measure-drift", task_run_name="measure-drift[{feature_set}]", cache_policy=NO_CACHE)
def measure_drift(previous: pd.DataFrame, current: pd.DataFrame, *, feature_set: str) -> Drift:
    """Drift of ``feature_set``'s chosen clustering since the previous run (see :func:`drift_between`)."""
    return drift_between(previous, current, feature_set=feature_set)


def changed_records(drift: Drift) -> list[dict]:
    """The changed tracks as JSON-ready dicts (NaN matched cluster → None)."""
    return [{"track_id": row.track_id, "previous_cluster": int(row.previous_cluster),
             "cluster": int(row.cluster),
             "matched_cluster": None if pd.isna(row.matched_cluster) else int(row.matched_cluster)}
            for row in drift.changed.itertuples(index=False)]


__all__ = ["Drift", "changed_records", "drift_between", "measure_drift"]
