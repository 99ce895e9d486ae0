"""Where extraction and download chunks run: threads, worker processes, or a Dask cluster.

Extraction is CPU-bound Python and C; in threads it holds the GIL for much of each clip, so
by default chunks go to a pool of worker processes. Downloads wait on the network, so they
run in threads, unless a Dask cluster is chosen: then both go to its workers. The choice is
made at the edge:

``SONGMIX_EXECUTOR``      ``processes`` (default), ``threads`` or ``dask``
``SONGMIX_WORKERS``       worker processes (or threads) for extraction (default 2)
``SONGMIX_DASK_ADDRESS``  with ``dask``: the scheduler of an existing cluster (e.g.
                          ``tcp://10.0.0.5:8786``); without it a local cluster of
                          ``SONGMIX_WORKERS`` single-threaded processes starts for the stage

Every worker runs its numeric libraries single-threaded (``OMP_NUM_THREADS=1`` and friends;
Dask's nanny does the same), so two workers on two cores do not fight over them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from songmix.flows.lifecycle import die_with_parent
from songmix.sources.http import InterruptibleThreadPoolTaskRunner

EXECUTORS = ("processes", "threads", "dask")
DEFAULT_EXECUTOR = "processes"
DEFAULT_WORKERS = 2
#: Downloads at once in this process (threads).
DOWNLOAD_THREADS = 4
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def configured_executor() -> tuple[str, int]:
    """The executor and worker count chosen by ``SONGMIX_EXECUTOR`` and ``SONGMIX_WORKERS``."""
    executor = os.environ.get("SONGMIX_EXECUTOR", DEFAULT_EXECUTOR).strip().lower()
    workers = os.environ.get("SONGMIX_WORKERS", str(DEFAULT_WORKERS)).strip()
    if executor not in EXECUTORS:
        raise ValueError(f"SONGMIX_EXECUTOR must be one of {', '.join(EXECUTORS)} "
                         f"(got {executor!r})")
    if not workers.isdigit() or int(workers) < 1:
        raise ValueError(f"SONGMIX_WORKERS must be a whole number of at least 1 (got {workers!r})")
    return executor, int(workers)


def extraction_task_runner(executor: str, *, max_workers: int) -> TaskRunner:
    """A fresh, not yet started task runner for ``executor``.

    Parameters
    ----------
    executor : {"processes", "threads", "dask"}
    max_workers : int, keyword-only
        Processes (or threads) working at once, >= 1.

    Raises
    ------
    ValueError
        Unknown executor, or ``dask`` without the ``dask`` extra installed.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1 (got {max_workers})")
    if executor == "processes":
        return ProcessPoolTaskRunner(max_workers=max_workers, initializer=single_threaded_worker)
    if executor == "threads":
        return ThreadPoolTaskRunner(max_workers=max_workers)
    if executor == "dask":
        return _dask_task_runner(max_workers)
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)} (got {executor!r})")


def download_task_runner(executor: str) -> TaskRunner:
    """A fresh task runner for download chunks: ``DOWNLOAD_THREADS`` threads, or the Dask
    cluster when ``executor`` is ``dask`` (its workers then write into the audio cache, a
    folder they must share with this process)."""
    if executor == "dask":
        return _dask_task_runner(DEFAULT_WORKERS)
    return InterruptibleThreadPoolTaskRunner(max_workers=DOWNLOAD_THREADS)


@contextlib.contextmanager
def api_for_workers() -> Iterator[None]:
    """Point worker processes at this process's Prefect API while the block runs.

    Without ``PREFECT_API_URL`` this process talks to a temporary server it started; workers
    would each start their own (8-15 s apiece, and their task runs recorded where nobody looks),
    so they are handed this one's address instead.
    """
    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: str(get_client(sync_client=True).api_url)}):
        yield


def single_threaded_worker() -> None:
    """Worker initializer: the worker ends when the run's process does, and uses one thread
    for OpenMP/BLAS (set before and after numpy loads)."""
    die_with_parent()
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _dask_task_runner(n_workers: int) -> TaskRunner:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as error:
        raise ValueError("SONGMIX_EXECUTOR=dask needs the dask extra: "
                         "pip install 'songmix[dask]'") from error
    address = os.environ.get("SONGMIX_DASK_ADDRESS")
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": n_workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})
