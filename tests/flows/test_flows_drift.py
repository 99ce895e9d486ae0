"""Drift between runs, failure behaviour, reruns from cache, and one run at a time.

Runs of the small demo into one warehouse: 30 tracks, then 36 whose comparison fails once,
then that run again. The demo's track ids are hashed from their position, so the 36-track
catalog holds the 30 first ids plus 6 new ones.
"""

from __future__ import annotations

import threading

import duckdb
import pandas as pd
import pytest

from songmix.flows import pipeline as pipeline_module
from songmix.flows.pipeline import pipeline
from songmix.flows.drift import comparable_previous_run
from songmix.sources.demo_catalog import generate_catalog
from songmix.tasks.drift import drift_between
from songmix.warehouse.connection import WarehouseError
from songmix.warehouse.run_lock import holding_run_lock, lock_path
from songmix.warehouse.store import Warehouse

SMALL = dict(source="demo", demo_groups=2, ks=[2, 3], n_seeds=2)


def _rows(path, sql, *params) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


# -- the pure comparison ------------------------------------------------------------------

def _assignments(labels: dict[str, int], k: int) -> pd.DataFrame:
    return pd.DataFrame({"track_id": list(labels), "cluster": list(labels.values()), "k": k})


def test_relabelled_clusters_are_no_drift():
    before = _assignments({"a": 0, "b": 0, "c": 1, "d": 1}, 2)
    after = _assignments({"a": 1, "b": 1, "c": 0, "d": 0}, 2)
    drift = drift_between(before, after, feature_set="spotify")
    assert drift.ari == pytest.approx(1.0)
    assert drift.changed.empty


def test_a_moved_track_new_and_vanished_tracks_are_counted():
    before = _assignments({"a": 0, "b": 0, "c": 0, "d": 1, "e": 1, "gone": 1}, 2)
    after = _assignments({"a": 5, "b": 5, "c": 7, "d": 7, "e": 7, "fresh": 5}, 2)
    drift = drift_between(before, after, feature_set="aubio")
    assert list(drift.changed["track_id"]) == ["c"]
    assert drift.changed.loc[0, "matched_cluster"] == 1 and drift.changed.loc[0, "previous_cluster"] == 0
    assert drift.new_tracks == ("fresh",) and drift.vanished_tracks == ("gone",)
    assert drift.n_common == 5 and drift.ari < 1


def test_repeated_tracks_are_refused():
    frame = _assignments({"a": 0, "b": 1}, 2)
    with pytest.raises(ValueError, match="repeat tracks"):
        drift_between(pd.concat([frame, frame]), frame, feature_set="spotify")


def test_the_demo_catalogs_share_their_first_track_ids():
    small, large = (generate_catalog(n, n_groups=2) for n in (30, 36))
    small_ids = {t["id"] for t in small.tracks}
    assert small_ids < {t["id"] for t in large.tracks}


# -- the lock ------------------------------------------------------------------------------

def test_a_second_run_waits_for_the_lock_and_then_gets_it(tmp_path):
    db = tmp_path / "w.duckdb"
    acquired = threading.Event()
    with holding_run_lock(db):
        assert lock_path(db).read_text().strip().isdigit()
        with pytest.raises(WarehouseError, match="another songmix run"):
            with holding_run_lock(db, timeout_s=0.3):
                pass
        waiter = threading.Thread(target=lambda: _take(db, acquired))
        waiter.start()
        assert not acquired.wait(0.3)
    waiter.join(5)
    assert acquired.is_set()


def _take(db, acquired):
    with holding_run_lock(db, timeout_s=5):
        acquired.set()


# -- whole runs ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory, prefect_harness):
    """A 30-track run, then a 36-track run failing in its comparison, then its rerun."""
    root = tmp_path_factory.mktemp("drift")
    paths = dict(db_path=root / "w.duckdb", data_dir=root / "data", out_dir=root / "out")
    first = pipeline(n_tracks=30, **SMALL, **paths)
    real_compare = pipeline_module.compare

    def broken_compare(*args, **kwargs):
        raise RuntimeError("comparison broke on purpose")

    pipeline_module.compare = broken_compare
    try:
        with pytest.raises(RuntimeError, match="on purpose"):
            pipeline(n_tracks=36, **SMALL, **paths)
    finally:
        pipeline_module.compare = real_compare
    rerun = pipeline(n_tracks=36, **SMALL, **paths)
    return paths["db_path"], first, rerun


@pytest.mark.slow
def test_the_first_run_on_a_source_has_no_drift(runs):
    db, first, _ = runs
    assert _rows(db, "select count(*) from run_drift where run_id = ?", first.run_id) == [(0,)]


@pytest.mark.slow
def test_a_failed_run_records_its_reason_and_no_drift(runs):
    db, *_ = runs
    assert _rows(db, "select error from runs where status = 'failed'") == [
        ("RuntimeError: comparison broke on purpose",)]
    assert _rows(db, "select count(*) from run_drift join runs using (run_id) "
                     "where status = 'failed'") == [(0,)]


@pytest.mark.slow
def test_a_run_over_other_tracks_is_not_compared_and_says_why(runs):
    # 30 tracks, then 36: drift would report 6 "new" tracks that only the parameters added.
    db, first, rerun = runs
    assert _rows(db, "select count(*) from run_drift where run_id = ?", rerun.run_id) == [(0,)]
    previous, why = comparable_previous_run(Warehouse(db), rerun.run_id, source="demo")
    assert previous is None
    assert f"(the latest, {first.run_id}: n_tracks 30 → 36)" in why


@pytest.mark.slow
def test_the_rerun_of_a_failed_run_reuses_its_cached_fits(runs, latest_task_run_states):
    db, _, rerun = runs
    # The failed run fitted both feature sets; its rerun took both fits from the cache.
    assert latest_task_run_states("fit-mixtures[", 4) == ["Cached", "Cached", "Completed", "Completed"]
    assert _rows(db, "select status from runs where run_id = ?", rerun.run_id) == [("completed",)]


@pytest.mark.slow
def test_reclustering_from_the_warehouse_is_a_run_with_its_own_drift(runs, tmp_path):
    db, _, rerun = runs
    again = pipeline("run:latest", ks=[2, 3], n_seeds=2, random_state=1, db_path=db, out_dir=tmp_path)
    assert _rows(db, "select source, status, parameters->>'reclustered_from' from runs where run_id = ?",
                 again.run_id) == [("demo", "completed", rerun.run_id)]
    assert again.n_tracks == 36
    found = _rows(db, "select previous_run_id, n_common, n_new, n_vanished from run_drift "
                      "where run_id = ?", again.run_id)
    assert found == [(rerun.run_id, 36, 0, 0)] * 2


def test_reclustering_without_a_completed_run_says_what_to_do(tmp_path, prefect_harness):
    Warehouse(tmp_path / "empty.duckdb")
    with pytest.raises(ValueError, match="no completed run to re-cluster"):
        pipeline("run:latest", db_path=tmp_path / "empty.duckdb", out_dir=tmp_path)
    with pytest.raises(ValueError, match="no run 'nope'"):
        pipeline("run:nope", db_path=tmp_path / "empty.duckdb", out_dir=tmp_path)
    assert _rows(tmp_path / "empty.duckdb", "select count(*) from runs") == [(0,)]
