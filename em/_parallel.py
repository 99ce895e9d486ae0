"""Threads for independent pieces of work (blocks of samples, seeds), and single-threaded BLAS.

numpy releases the GIL inside matrix products and large element-wise operations, so threads
over blocks of samples use every core for both. BLAS is limited to one thread for the whole
call meanwhile: its own threads, on these thin products and a machine shared with other work,
mostly wait on each other (measured 2-10x slower than one thread per block on a loaded 2-core
machine). scikit-learn's k-means does the same (``threadpoolctl`` is installed with it).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from threadpoolctl import ThreadpoolController

Item = TypeVar("Item")
Result = TypeVar("Result")
Parameters = ParamSpec("Parameters")

_MAX_WORKERS = 8


@functools.cache
def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count() -> int:
    """Threads that :func:`parallel_map` uses at most."""
    return max(1, min(_available_cores(), _MAX_WORKERS))


@functools.cache
def _blas_controller() -> ThreadpoolController:
    # Inspecting the loaded libraries takes about a millisecond; do it once per process.
    return ThreadpoolController()


# The BLAS thread count is process-wide. Concurrent or nested calls share one limit: the first
# to enter sets it and the last to leave restores it (two overlapping limit/restore pairs would
# otherwise leave the process at one thread).
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = _blas_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()


def single_threaded_blas(function: Callable[Parameters, Result]) -> Callable[Parameters, Result]:
    """Decorator: run ``function`` with BLAS limited to one thread, restored afterwards."""

    @functools.wraps(function)
    def limited(*args: Parameters.args, **kwargs: Parameters.kwargs) -> Result:
        with _one_blas_thread():
            return function(*args, **kwargs)

    return limited


def parallel_map(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """``[function(item) for item in items]``, computed on up to :func:`worker_count` threads.

    Results keep the order of ``items``, so sums over them are reproducible. Callers pass
    several items only when each is worth a thread.
    """
    n_workers = min(worker_count(), len(items))
    if n_workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(n_workers) as pool:
        return list(pool.map(function, items))
