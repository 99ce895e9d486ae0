"""Reads that compare a run with the one before it, and that re-cluster from stored data.

The flow's process is the writer, so these go through :meth:`Warehouse.reading`; every
value reaches SQL as a parameter.
"""

from __future__ import annotations

import json

import pandas as pd

from songmix.warehouse.store import Warehouse


def previous_completed_runs(warehouse: Warehouse, run_id: str, *, source: str) -> list[str]:
    """The runs on ``source`` that completed and started before ``run_id`` did, newest first
    (empty for a source's first run)."""
    with warehouse.reading() as connection:
        found = connection.execute(
            "SELECT previous.run_id FROM runs previous, runs current "
            "WHERE current.run_id = ? AND previous.run_id <> current.run_id "
            "AND previous.source = ? AND previous.status = 'completed' "
            "AND previous.started_at <= current.started_at "
            "ORDER BY previous.started_at DESC, previous.finished_at DESC",
            [run_id, source],
        ).fetchall()
    return [previous for (previous,) in found]


def latest_completed_run(warehouse: Warehouse, *, source: str | None = None) -> str | None:
    """The most recently started completed run (on ``source`` when given), or None."""
    with warehouse.reading() as connection:
        found = connection.execute(
            "SELECT run_id FROM runs WHERE status = 'completed' "
            "AND (CAST(? AS VARCHAR) IS NULL OR source = ?) "
            "ORDER BY started_at DESC LIMIT 1",
            [source, source],
        ).fetchone()
    return found[0] if found else None


def run_parameters(warehouse: Warehouse, run_id: str) -> dict:
    """The parameters ``run_id`` was started with (empty if the run is unknown)."""
    with warehouse.reading() as connection:
        found = connection.execute(
            "SELECT parameters FROM runs WHERE run_id = ?", [run_id]
        ).fetchone()
    return json.loads(found[0]) if found else {}


def run_source(warehouse: Warehouse, run_id: str) -> str:
    """The source ``run_id`` read its tracks from.

    Raises
    ------
    ValueError
        No run ``run_id`` is stored.
    """
    with warehouse.reading() as connection:
        found = connection.execute("SELECT source FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if found is None:
        raise ValueError(f"no run {run_id!r} in {warehouse.path}; list runs with "
                         "`songmix sql \"select run_id, source, status from runs\"`")
    return found[0]


def chosen_assignments(warehouse: Warehouse, run_id: str) -> pd.DataFrame:
    """Each track's cluster under the k the run chose, per feature set.

    Returns
    -------
    DataFrame with columns feature_set, k, track_id, cluster (empty when the run fitted
    nothing).
    """
    with warehouse.reading() as connection:
        return connection.execute(
            "SELECT a.feature_set, a.k, a.track_id, a.cluster FROM gmm_assignments a "
            "JOIN gmm_models m USING (run_id, feature_set, k) "
            "WHERE a.run_id = ? AND m.chosen ORDER BY a.feature_set, a.track_id",
            [run_id],
        ).df()
