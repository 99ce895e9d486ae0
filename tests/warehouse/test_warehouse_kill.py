"""SIGKILL a real pipeline process in the middle of a stage, rerun: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from songmix.flows.pipeline import pipeline
from songmix.warehouse.store import TABLE_KEYS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

OPTIONS = dict(source="demo", n_tracks=30, demo_groups=2, ks=[2, 3], n_seeds=2)
CLI_OPTIONS = ["--tracks", "30", "--demo-groups", "2", "--ks", "2,3", "--seeds", "2"]


def _isolated_env(root) -> dict[str, str]:
    """The subprocess gets its own throwaway Prefect home, server and result store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return env | {"PREFECT_HOME": str(root / "prefect-home"), "DO_NOT_TRACK": "1",
                  "PREFECT_LOCAL_STORAGE_PATH": str(root / "prefect-results"),
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def _scalar(path, sql, *parameters):
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql, list(parameters)).fetchone()[0]


def _downloads_committed(path) -> bool:
    """True once the download stage has committed (extraction is then under way)."""
    try:
        return _scalar(path, "select count(*) from audio_files") > 0
    except (duckdb.IOException, duckdb.CatalogException):
        return False  # the writer holds the file, or has not created the tables yet


def _kill_mid_run(db, data_dir, out_dir, env) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "songmix.cli.main", "run", "--quiet", *CLI_OPTIONS, "--db", str(db),
         "--data-dir", str(data_dir), "--out", str(out_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while not _downloads_committed(db):
            assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()}"
            assert time.monotonic() < deadline, "the run never reached its download stage"
            time.sleep(0.05)
    finally:
        # The whole group: the run and the temporary Prefect server it started.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _table_counts(path, run_id: str) -> dict[str, int]:
    """Rows per table: the run's own rows where the key starts with run_id, else all rows."""
    return {table: _scalar(path, f'select count(*) from "{table}" where run_id = ?', run_id)
            if key[0] == "run_id" else _scalar(path, f'select count(*) from "{table}"')
            for table, key in TABLE_KEYS.items() if table != "runs"}


def test_a_run_killed_mid_stage_reruns_to_the_same_rows_as_a_clean_run(tmp_path):
    data_dir = tmp_path / "data"  # shared: the demo previews are rendered once
    clean = pipeline(**OPTIONS, db_path=tmp_path / "clean.duckdb", data_dir=data_dir,
                     out_dir=tmp_path / "out-clean")

    db = tmp_path / "killed.duckdb"
    _kill_mid_run(db, data_dir, tmp_path / "out-killed", _isolated_env(tmp_path))
    killed_run = _scalar(db, "select run_id from runs")
    assert _scalar(db, "select status from runs") == "running"  # killed before it finished
    assert _scalar(db, "select count(*) from gmm_assignments") == 0  # ... and before clustering

    rerun = pipeline(**OPTIONS, db_path=db, data_dir=data_dir, out_dir=tmp_path / "out-rerun")

    statuses = dict(duckdb.connect(str(db), read_only=True).execute(
        "select run_id, status from runs").fetchall())
    assert statuses == {killed_run: "failed", rerun.run_id: "completed"}
    rerun_counts = _table_counts(db, rerun.run_id)
    clean_counts = _table_counts(tmp_path / "clean.duckdb", clean.run_id)
    assert rerun_counts == clean_counts
    assert rerun_counts["gmm_assignments"] == 2 * 2 * 30
    for table, key in TABLE_KEYS.items():
        columns = ", ".join(f'"{c}"' for c in key)
        assert _scalar(db, f'select count(*) - count(distinct ({columns})) from "{table}"') == 0, table
