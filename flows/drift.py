"""The drift stage: how this run's clusterings differ from the previous run's on the same source.

A schedule is worth having because of this: each run says which tracks moved, which are new
and which vanished since last time, stored in ``run_drift`` and shown on the run's page.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from prefect import flow

from songmix.flows.progress import publish_table, stage
from songmix.tasks.drift import Drift, changed_records, measure_drift
from songmix.warehouse.drift_reads import (
    chosen_assignments,
    previous_completed_run,
    run_parameters,
)
from songmix.warehouse.records import utc_now
from songmix.warehouse.store import Warehouse

#: Changed tracks listed on the run's page (all of them are stored).
CHANGED_TRACKS_SHOWN = 50


@flow(name="measure-drift", flow_run_name="measure-drift")
def drift(run_id: str, db_path: Path, *, source: str) -> list[str]:
    """Compare each feature set's chosen clustering with the previous completed run's;
    returns one headline per feature set compared."""
    warehouse = Warehouse(db_path)
    previous_run_id = previous_completed_run(warehouse, run_id, source=source)
    current = chosen_assignments(warehouse, run_id)
    progress = stage("drift", current["feature_set"].nunique() if previous_run_id else 0)
    if previous_run_id is None:
        progress.finish(f"first completed run on source {source!r}: nothing to compare with")
        return []
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
    return [d.headline() for d in drifts]


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
