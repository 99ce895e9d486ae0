"""Threads: by default em/ starts none and leaves BLAS alone; ``n_jobs`` asks for both."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import songmix.em._em as em_loop
import songmix.em._estep as estep
import songmix.em._parallel as parallel
from songmix import em

# A BLAS thread count no default setting uses, so that seeing it proves nothing changed it.
_CALLERS_BLAS_THREADS = 3


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def _blas_threads_seen_by_another_thread_during_a_fit(monkeypatch, X, **options) -> list[int]:
    """Fit on this thread; at its first E-step, another thread reads the BLAS thread counts."""
    seen: list[int] = []
    original = em_loop.e_step_statistics

    def e_step_that_looks_around(*args, **kwargs):
        if not seen:
            reader = threading.Thread(target=lambda: seen.extend(_blas_threads()))
            reader.start()
            reader.join()
        return original(*args, **kwargs)

    monkeypatch.setattr(em_loop, "e_step_statistics", e_step_that_looks_around)
    em.fit_gmm(X, 3, n_init=2, random_state=0, **options)
    assert seen, "the fit never reached its E-step"
    return seen


def test_a_fit_leaves_the_blas_threads_of_other_threads_alone(monkeypatch, blobs):
    X, _ = blobs
    with threadpool_limits(limits=_CALLERS_BLAS_THREADS, user_api="blas"):
        seen = _blas_threads_seen_by_another_thread_during_a_fit(monkeypatch, X)
        assert _blas_threads() == [_CALLERS_BLAS_THREADS] * len(seen)
    assert seen == [_CALLERS_BLAS_THREADS] * len(seen)


def test_n_jobs_holds_blas_to_one_thread_during_the_call_and_restores_it(monkeypatch, blobs):
    X, _ = blobs
    with threadpool_limits(limits=_CALLERS_BLAS_THREADS, user_api="blas"):
        seen = _blas_threads_seen_by_another_thread_during_a_fit(monkeypatch, X, n_jobs=2)
        assert _blas_threads() == [_CALLERS_BLAS_THREADS] * len(seen)
    assert seen == [1] * len(seen)


def test_the_default_starts_no_thread_and_n_jobs_starts_them(monkeypatch, make_blobs):
    X, _ = make_blobs(3000, 3, 3, separation=3.0, seed=4)
    monkeypatch.setattr(estep, "_MIN_BLOCK_VALUES", 1000)  # many blocks
    monkeypatch.setattr(estep, "_MAX_BLOCK_VALUES", 1000)
    pools = []

    class CountedPool(ThreadPoolExecutor):
        def __init__(self, max_workers):
            pools.append(max_workers)
            super().__init__(max_workers)

    monkeypatch.setattr(parallel, "ThreadPoolExecutor", CountedPool)
    model = em.fit_gmm(X, 3, n_init=3, random_state=0)
    em.predict_proba(model, X)
    em.seed_stability(model, X)
    assert pools == []
    em.fit_gmm(X, 3, n_init=3, random_state=0, n_jobs=2)
    assert pools and set(pools) == {2}


def test_concurrent_fits_with_n_jobs_restore_the_blas_thread_count(blobs):
    X, _ = blobs
    with threadpool_limits(limits=_CALLERS_BLAS_THREADS, user_api="blas"):
        with ThreadPoolExecutor(4) as pool:
            models = list(pool.map(
                lambda seed: em.fit_gmm(X, 3, n_init=2, random_state=seed, n_jobs=2), range(8)
            ))
        assert set(_blas_threads()) == {_CALLERS_BLAS_THREADS}
    reference = em.fit_gmm(X, 3, n_init=2, random_state=0)
    np.testing.assert_allclose(models[0].means, reference.means, rtol=1e-12)


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2"])
def test_n_jobs_must_be_none_a_positive_integer_or_minus_one(blobs, n_jobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="n_jobs must be None, a positive integer or -1"):
        em.fit_gmm(X, 2, n_jobs=n_jobs)
