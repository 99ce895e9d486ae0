"""Kill a real ``songmix run`` at each stage, by SIGKILL or SIGTERM, and rerun: the warehouse
ends with the same tracks and tables as an uninterrupted run, nothing twice; a SIGTERM stops
the run within 10 s and it records why; no process a killed run started outlives it by more
than 10 s (the temporary Prefect server, extraction workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from songmix.flows.lifecycle import descendants, process_table
from songmix.flows.pipeline import pipeline
from songmix.warehouse.store import TABLE_KEYS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

OPTIONS = dict(source="demo", n_tracks=30, demo_groups=2, ks=[2, 3], n_seeds=2)
CLI_OPTIONS = ["--tracks", "30", "--demo-groups", "2", "--ks", "2,3", "--seeds", "2"]
#: Each run is stopped as the stage starts; every run resumes where the one before stopped.
KILLS = (("tracks", signal.SIGKILL), ("spotify features", signal.SIGTERM),
         ("downloads", signal.SIGKILL), ("aubio extraction", signal.SIGTERM),
         ("mixture fits", signal.SIGKILL))
OUTLIVES_AT_MOST_S = 10.0


def _isolated_env(root) -> dict[str, str]:
    """The subprocess gets its own throwaway Prefect home, server and result store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return env | {"PREFECT_HOME": str(root / "prefect-home"), "DO_NOT_TRACK": "1",
                  "PREFECT_LOCAL_STORAGE_PATH": str(root / "prefect-results"),
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "SONGMIX_WORKERS": "2"}


def _scalar(path, sql, *parameters):
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql, list(parameters)).fetchone()[0]


def _alive(pids: dict[int, int]) -> set[int]:
    """Which of ``pids`` (pid -> start time) still run (a reused pid does not count)."""
    _, details = process_table()
    return {pid for pid, started in pids.items() if details.get(pid, (None,))[0] == started}


def _stop_at(stage: str, signal_number: int, db, root) -> dict[int, int]:
    """Start ``songmix run``, send ``signal_number`` as ``stage`` starts; returns the
    processes it had started then (pid -> start time)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "songmix.cli.main", "run", *CLI_OPTIONS, "--db", str(db),
         "--data-dir", str(root / "data"), "--out", str(root / "out")],
        env=_isolated_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if line.startswith(f"songmix: {stage}: started"):
                break
        else:
            pytest.fail(f"the run ended before {stage} started:\n{''.join(seen)}")
        children, details = process_table()
        started = {pid: details[pid][0] for pid in descendants([process.pid], children) if pid in details}
        sent = time.monotonic()
        process.send_signal(signal_number)
        process.wait(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
    if signal_number == signal.SIGTERM:
        assert stopped_after < OUTLIVES_AT_MOST_S, f"SIGTERM at {stage} took {stopped_after:.1f} s"
    deadline = time.monotonic() + OUTLIVES_AT_MOST_S
    while _alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(started), f"processes of the run stopped at {stage} outlived it: {_alive(started)}"
    return started


def _table_counts(path, run_id: str) -> dict[str, int]:
    """Rows per table: the run's own rows where the key starts with run_id, else all rows."""
    return {table: _scalar(path, f'select count(*) from "{table}" where run_id = ?', run_id)
            if key[0] == "run_id" else _scalar(path, f'select count(*) from "{table}"')
            for table, key in TABLE_KEYS.items() if table != "runs"}


def test_a_run_killed_at_any_stage_reruns_to_the_same_tables_and_leaves_no_process(tmp_path):
    clean = pipeline(**OPTIONS, db_path=tmp_path / "clean.duckdb", data_dir=tmp_path / "data",
                     out_dir=tmp_path / "out-clean")
    db = tmp_path / "killed.duckdb"
    started = [_stop_at(stage, signal_number, db, tmp_path) for stage, signal_number in KILLS]
    assert any(len(processes) >= 2 for processes in started), "the runs had started processes to stop"
    stopped = dict(duckdb.connect(str(db), read_only=True).execute(
        "select run_id, status from runs order by started_at").fetchall())
    assert len(stopped) == len(KILLS)
    # A SIGTERM'd run records its own end; a SIGKILL'd one is recorded by the next run.
    assert _scalar(db, "select count(*) from runs where error like 'interrupted: stopped%'") == 2

    rerun = pipeline(**OPTIONS, db_path=db, data_dir=tmp_path / "data", out_dir=tmp_path / "out-rerun")

    statuses = dict(duckdb.connect(str(db), read_only=True).execute("select run_id, status from runs").fetchall())
    assert statuses == {run_id: "failed" for run_id in stopped} | {rerun.run_id: "completed"}
    rerun_counts = _table_counts(db, rerun.run_id)
    assert rerun_counts == _table_counts(tmp_path / "clean.duckdb", clean.run_id)
    assert rerun_counts["gmm_assignments"] == 2 * 2 * 30
    assert _scalar(db, "select count(*) from tracks") == 30
    for table, key in TABLE_KEYS.items():
        columns = ", ".join(f'"{c}"' for c in key)
        assert _scalar(db, f'select count(*) - count(distinct ({columns})) from "{table}"') == 0, table
