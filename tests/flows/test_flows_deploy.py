"""`songmix serve` for real: a Prefect server on a free port, the process work pool, the demo
deployment from prefect.yaml and a worker; one run of a small demo through them, its
artifacts read back from the API, the warehouse filled, and everything stopped at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from songmix.cli.serve import deployment_environment, project_dir, wait_healthy

PROJECT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _read_until(process: subprocess.Popen, marker: str, timeout_s: float) -> tuple[bool, str]:
    """Whether ``process`` printed a line containing ``marker`` in time, and its output."""
    lines, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return True, "".join(lines)
    return False, "".join(lines)


def _post(url: str, body: dict) -> list[dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def test_serve_refuses_a_folder_without_prefect_yaml(tmp_path):
    with pytest.raises(FileNotFoundError, match="no prefect.yaml"):
        project_dir(tmp_path)


def test_deployments_get_absolute_paths_and_the_project_as_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environment = deployment_environment(PROJECT, db=Path("w.duckdb"), data_dir=Path("data"),
                                         out_dir=Path("out"), api_url="http://127.0.0.1:1/api")
    assert environment["PWD"] == str(PROJECT)
    assert environment["SONGMIX_DB"] == str(tmp_path / "w.duckdb")
    assert all(Path(environment[name]).is_absolute() for name in ("SONGMIX_DATA_DIR", "SONGMIX_OUT_DIR"))


def test_waiting_for_a_server_that_never_answers_gives_up(tmp_path):
    with pytest.raises(RuntimeError, match="no Prefect API answered"):
        wait_healthy(f"http://127.0.0.1:{_free_port()}/api", timeout_s=0.5)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`songmix serve` with only the demo deployment, in a throwaway Prefect home."""
    root = tmp_path_factory.mktemp("serve")
    port = _free_port()
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("PREFECT_", "SONGMIX_"))}
    environment |= {"PREFECT_HOME": str(root / "prefect-home"), "DO_NOT_TRACK": "1",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_LOCAL_STORAGE_PATH": str(root / "results")}
    serve = subprocess.Popen(
        [sys.executable, "-m", "songmix.cli.main", "serve", "--port", str(port),
         "--deployment", "demo-weekly", "--db", str(root / "w.duckdb"),
         "--data-dir", str(root / "data"), "--out", str(root / "out")],
        cwd=root, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        healthy, output = _read_until(serve, "songmix: Prefect API healthy", READY_TIMEOUT_S)
        assert healthy, f"the Prefect server did not start within {READY_TIMEOUT_S} s:\n{output}"
        ready, output = _read_until(serve, "songmix: ready after", READY_TIMEOUT_S)
        assert ready, output
        children = subprocess.run(["pgrep", "-P", str(serve.pid)], capture_output=True, text=True)
        yield root, f"http://127.0.0.1:{port}/api", environment, serve, children.stdout.split()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)


@pytest.fixture(scope="module")
def finished_run(served):
    root, api_url, environment, *_ = served
    started = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", "songmix-pipeline/demo-weekly",
         "-p", "n_tracks=30", "-p", "demo_groups=2", "-p", "ks=[2, 3]", "-p", "n_seeds=2",
         "--watch", "--watch-timeout", "400"],
        cwd=root, env=environment | {"PREFECT_API_URL": api_url}, capture_output=True, text=True,
        timeout=450)
    runs = _post(f"{api_url}/flow_runs/filter",
                 {"flow_runs": {"parent_task_run_id": {"is_null_": True}}})
    created = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout)
    return started, [run for run in runs if created and run["id"] == created[1]], runs


@pytest.mark.slow
def test_the_deployment_run_completes_through_the_worker(finished_run):
    started, ours, _ = finished_run
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    assert [(run["state_type"], run["work_pool_name"]) for run in ours] == [("COMPLETED", "songmix")]


@pytest.mark.slow
def test_the_weekly_schedule_queues_monday_runs(finished_run):
    _, ours, runs = finished_run
    scheduled = [run for run in runs if run not in ours]
    assert scheduled and all(run["state_type"] == "SCHEDULED" for run in scheduled)
    starts = [datetime.fromisoformat(run["expected_start_time"]) for run in scheduled]
    assert all((start.weekday(), start.hour, start.minute) == (0, 6, 0) for start in starts)


@pytest.mark.slow
def test_the_run_publishes_progress_tables_and_the_report(served, finished_run):
    _, api_url, *_ = served
    _, ours, _ = finished_run
    artifacts = _post(f"{api_url}/artifacts/filter", {})
    keys = {artifact["key"] for artifact in artifacts}
    assert {"downloads", "aubio-extraction", "mixture-fits", "downloads-summary",
            "songmix-comparison", "songmix-report"} <= keys
    progress = {a["key"]: a["data"] for a in artifacts if a["type"] == "progress"}
    assert progress["downloads"] == progress["aubio-extraction"] == 100.0
    report = next(a for a in artifacts if a["key"] == "songmix-report")
    assert "data:image/png;base64," in report["data"]
    assert {a["flow_run_id"] for a in artifacts if a["key"] == "songmix-report"} == {ours[0]["id"]}


@pytest.mark.slow
def test_the_warehouse_fills(served, finished_run):
    root, *_ = served
    with duckdb.connect(str(root / "w.duckdb"), read_only=True) as connection:
        assert connection.execute("select status from runs").fetchall() == [("completed",)]
        assert connection.execute("select count(*) from tracks").fetchone() == (30,)
        assert connection.execute("select count(distinct feature_set) from gmm_models").fetchone() == (2,)


@pytest.mark.slow
def test_stopping_serve_stops_the_server_and_the_worker(served, finished_run):
    _, api_url, _, serve, children = served
    assert len(children) >= 2, "at least a server and a worker"
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(60) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{api_url}/health", timeout=2)
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


def test_every_deployment_is_the_one_pipeline_and_one_needing_credentials_starts_paused():
    import yaml

    deployments = {d["name"]: d for d in yaml.safe_load((PROJECT / "prefect.yaml").read_text())["deployments"]}
    assert {d["entrypoint"] for d in deployments.values()} == {"flows/pipeline.py:pipeline"}
    assert {d["work_pool"]["name"] for d in deployments.values()} == {"songmix"}
    assert {name: d["parameters"]["source"] for name, d in deployments.items()} == {
        "demo-weekly": "demo", "spotify-2020-weekly": "spotify", "recluster-weekly": "run:latest"}
    assert [name for name, d in deployments.items() if d.get("paused")] == ["spotify-2020-weekly"]
