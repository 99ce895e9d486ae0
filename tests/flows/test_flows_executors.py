"""The extraction executor choice: read from the environment, checked, and worker processes
that run their numeric libraries single-threaded."""

from __future__ import annotations

import os

import pytest
from prefect import flow, task
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from songmix.flows.executors import api_for_workers, configured_executor, extraction_task_runner


def test_processes_are_the_default(monkeypatch):
    monkeypatch.delenv("SONGMIX_EXECUTOR", raising=False)
    monkeypatch.delenv("SONGMIX_WORKERS", raising=False)
    assert configured_executor() == ("processes", 2)


def test_the_environment_chooses_executor_and_workers(monkeypatch):
    monkeypatch.setenv("SONGMIX_EXECUTOR", " Threads ")
    monkeypatch.setenv("SONGMIX_WORKERS", "3")
    assert configured_executor() == ("threads", 3)


@pytest.mark.parametrize(("variable", "value", "match"), [
    ("SONGMIX_EXECUTOR", "gpu", "SONGMIX_EXECUTOR must be one of processes, threads, dask"),
    ("SONGMIX_WORKERS", "0", "SONGMIX_WORKERS must be a whole number of at least 1"),
    ("SONGMIX_WORKERS", "two", "SONGMIX_WORKERS must be a whole number"),
])
def test_bad_settings_are_refused_with_the_choices(monkeypatch, variable, value, match):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=match):
        configured_executor()


def test_each_executor_has_its_runner(monkeypatch):
    assert isinstance(extraction_task_runner("processes", max_workers=2), ProcessPoolTaskRunner)
    assert isinstance(extraction_task_runner("threads", max_workers=2), ThreadPoolTaskRunner)
    with pytest.raises(ValueError, match="executor must be one of"):
        extraction_task_runner("gpu", max_workers=2)
    with pytest.raises(ValueError, match="max_workers must be at least 1"):
        extraction_task_runner("threads", max_workers=0)


def test_the_dask_executor_uses_prefect_dask(monkeypatch):
    pytest.importorskip("prefect_dask", reason="the dask executor needs the 'dask' extra")
    monkeypatch.setenv("SONGMIX_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    assert type(extraction_task_runner("dask", max_workers=2)).__name__ == "DaskTaskRunner"


@task
def _worker_threading() -> tuple[str, int, int]:
    from threadpoolctl import threadpool_info

    import numpy  # noqa: F401  (loads BLAS, so threadpoolctl sees it)

    limits = {pool["num_threads"] for pool in threadpool_info()}
    return os.environ.get("OMP_NUM_THREADS", ""), max(limits, default=1), os.getpid()


@flow
def _in_worker_process() -> tuple[str, int, int]:
    with api_for_workers(), extraction_task_runner("processes", max_workers=1) as runner:
        return runner.submit(_worker_threading, {}).result()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_worker_processes_run_single_threaded():
    omp_threads, most_threads, pid = _in_worker_process()
    assert pid != os.getpid()
    assert (omp_threads, most_threads) == ("1", 1)
