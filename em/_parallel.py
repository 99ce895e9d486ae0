"""Worker threads and the BLAS limit behind ``n_jobs`` (its meaning: "Threads" in
:mod:`songmix.em`).

With ``n_jobs=None`` nothing here starts a thread or changes a setting. With ``n_jobs`` set, the
samples are split into blocks (k-means++ seeds into groups) that worker threads share: numpy
releases the GIL inside matrix products and large element-wise operations, so they keep that
many cores busy. BLAS is limited to one thread meanwhile through threadpoolctl, which sets it
for the whole process; overlapping calls share one limit, restored when the last returns.
"""

from __future__ import annotations

import functools
import numbers
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from threadpoolctl import ThreadpoolController

Item = TypeVar("Item")
Result = TypeVar("Result")


@functools.cache
def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count(n_jobs: int | None) -> int:
    """Worker threads for ``n_jobs``: 1 for None, every available core for -1, else ``n_jobs``.

    Raises
    ------
    ValueError
        For anything but None, a positive integer or -1.
    """
    if n_jobs is None:
        return 1
    valid = isinstance(n_jobs, numbers.Integral) and not isinstance(n_jobs, bool)
    if not valid or not (n_jobs >= 1 or n_jobs == -1):
        raise ValueError(
            f"n_jobs must be None, a positive integer or -1 (every available core), got {n_jobs!r}."
        )
    return _available_cores() if n_jobs == -1 else int(n_jobs)


@functools.cache
def _blas_controller() -> ThreadpoolController:
    # Finding the loaded libraries costs more than a small fit; do it once per process.
    return ThreadpoolController()


# Overlapping calls share one limit: the first to enter sets it and the last to leave restores
# it (two overlapping limit/restore pairs would otherwise leave the process at one thread).
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def managed_blas(n_jobs: int | None) -> Iterator[None]:
    """Hold BLAS to one thread while the block runs when ``n_jobs`` is set; None leaves it be."""
    global _blas_users, _blas_limiter
    if n_jobs is None:
        yield
        return
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


def parallel_map(
    function: Callable[[Item], Result], items: Sequence[Item], n_workers: int
) -> list[Result]:
    """``[function(item) for item in items]``, on up to ``n_workers`` threads.

    Results keep the order of ``items``, so sums over them are reproducible. With one worker
    or one item, everything runs on the calling thread.
    """
    n_threads = min(n_workers, len(items))
    if n_threads <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(function, items))
