"""The drift stage: how this run's clusterings differ from the previous comparable run's.

A schedule is worth having because of this: each run says which tracks moved, which are new
and which vanished since last time, stored in ``run_drift`` and shown on the run's page.
Only runs that selected their tracks the same way are compared (the same source and the same
track-selection parameters, :data:`TRACK_SELECTION`): a 100-track run against a 1000-track
one would report 900 vanished tracks that no one lost. Otherwise the stage says why it skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from prefect import flow

from songmix.flows.progress import publish_table, stage
from songmix.tasks.drift import Drift, changed_records, measure_drift
from songmix.warehouse.reads import chosen_assignments, previous_completed_runs, run_parameters
from songmix.warehouse.records import utc_now
from songmix.warehouse.store import Warehouse

#: Changed tracks listed on the run's page (all of them are stored).
CHANGED_TRACKS_SHOWN = 50
#: Run parameters that decide which tracks a run holds; runs differing in one are not compared.
TRACK_SELECTION = ("year", "n_tracks", "playlist", "demo_groups", "demo_audio_mismatch", "path",
                   "dataset", "audio_dir")


@dataclass(frozen=True)
class DriftReport:
    """What the drift stage compared, or why it compared nothing.

    Attributes
    ----------
    headlines : list of str
        One per feature set both runs fitted (empty when skipped); the tracks themselves are
        in ``run_drift``.
    previous_run_id : str or None
    skipped : str or None
        Why no run was compared (a source's first run, no run with the same track selection).
    """

    headlines: list[str] = field(default_factory=list)
    previous_run_id: str | None = None
    skipped: str | None = None

    def lines(self) -> list[str]:
        """One line per feature set, or the reason for skipping."""
        return self.headlines or [f"skipped: {self.skipped}"]


@flow(name="measure-drift", flow_run_name="measure-drift")
def drift(run_id: str, db_path: Path, *, source: str) -> DriftReport:
    """Compare each feature set's chosen clustering with the latest earlier completed run on
    the same source that selected its tracks the same way."""
    warehouse = Warehouse(db_path)
    previous_run_id, skipped = comparable_previous_run(warehouse, run_id, source=source)
    current = chosen_assignments(warehouse, run_id)
    progress = stage("drift", current["feature_set"].nunique() if previous_run_id else 0)
    if previous_run_id is None:
        progress.finish(skipped)
        return DriftReport(skipped=skipped)
    previous = chosen_assignments(warehouse, previous_run_id)
    drifts = []
    for feature_set in sorted(set(current["feature_set"]) & set(previous["feature_set"])):
        drifts.append(measure_drift(previous[previous["feature_set"] == feature_set],
                                    current[current["feature_set"] == feature_set],
                                    feature_set=feature_set))
        progress.advance()
    changes = parameter_changes(run_parameters(warehouse, previous_run_id),
                                run_parameters(warehouse, run_id))
    warehouse.write({"run_drift": drift_rows(run_id, previous_run_id, drifts, changes)})
    publish_table("run-drift", [drift_summary(d) | {"previous_run_id": previous_run_id} for d in drifts],
                  description=f"Drift since run {previous_run_id}"
                  + (f" (parameters changed: {', '.join(changes)})" if changes else ""))
    publish_table("drift-changed-tracks",
                  [{"feature_set": d.feature_set, **row} for d in drifts
                   for row in changed_records(d)[:CHANGED_TRACKS_SHOWN]],
                  description=f"Tracks whose cluster changed (first {CHANGED_TRACKS_SHOWN} per "
                  "feature set; all are in run_drift.changed_tracks)")
    progress.finish(f"since {previous_run_id}: " + "; ".join(d.headline() for d in drifts))
    return DriftReport([d.headline() for d in drifts], previous_run_id)


def comparable_previous_run(warehouse: Warehouse, run_id: str, *, source: str) -> tuple[str | None, str | None]:
    """The latest earlier completed run on ``source`` with this run's track selection, or
    None and why there is none."""
    candidates = previous_completed_runs(warehouse, run_id, source=source)
    if not candidates:
        return None, f"first completed run on source {source!r}: nothing to compare with"
    selection = track_selection(warehouse, run_id)
    for candidate in candidates:
        if track_selection(warehouse, candidate) == selection:
            return candidate, None
    differences = parameter_changes(track_selection(warehouse, candidates[0]), selection)
    shown = ", ".join(f"{name} {before} → {after}" for name, (before, after) in differences.items())
    return None, (f"no earlier completed run on source {source!r} selected its tracks the same way "
                  f"(the latest, {candidates[0]}: {shown}); drift compares runs over the same tracks")


def track_selection(warehouse: Warehouse, run_id: str) -> dict:
    """The :data:`TRACK_SELECTION` parameters of ``run_id`` (of the run it re-clustered, for a
    re-clustering)."""
    parameters = run_parameters(warehouse, run_id)
    while parameters.get("reclustered_from"):
        parameters = run_parameters(warehouse, parameters["reclustered_from"])
    return {name: parameters[name] for name in TRACK_SELECTION if name in parameters}


def parameter_changes(previous: dict, current: dict) -> dict[str, list]:
    """``{name: [previous, current]}`` for every parameter whose value differs."""
    return {name: [previous.get(name), current.get(name)]
            for name in sorted(set(previous) | set(current))
            if previous.get(name) != current.get(name)}


def drift_summary(drift: Drift) -> dict:
    """One drift as the row the run's page shows."""
    return {"feature_set": drift.feature_set, "previous_k": drift.previous_k, "k": drift.k,
            "common_tracks": drift.n_common,
            "ari": None if drift.ari is None else round(drift.ari, 4),
            "changed_cluster": len(drift.changed), "new_tracks": len(drift.new_tracks),
            "vanished_tracks": len(drift.vanished_tracks)}


def drift_rows(
    run_id: str, previous_run_id: str, drifts: list[Drift], changes: dict[str, list]
) -> pd.DataFrame:
    """``run_drift`` rows, one per feature set."""
    computed_at = utc_now()
    return pd.DataFrame([{
        "run_id": run_id, "feature_set": d.feature_set, "previous_run_id": previous_run_id,
        "previous_k": d.previous_k, "k": d.k, "n_common": d.n_common, "ari": d.ari,
        "n_changed": len(d.changed), "n_new": len(d.new_tracks),
        "n_vanished": len(d.vanished_tracks), "changed_tracks": json.dumps(changed_records(d)),
        "new_tracks": list(d.new_tracks), "vanished_tracks": list(d.vanished_tracks),
        "parameter_changes": json.dumps(changes, default=str), "computed_at": computed_at,
    } for d in drifts])
