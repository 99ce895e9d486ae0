"""Threads: the BLAS limit is restored after use, also when fits overlap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_info

from songmix import em


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_concurrent_fits_restore_the_blas_thread_count(blobs):
    X, _ = blobs
    before = _blas_threads()
    with ThreadPoolExecutor(4) as pool:
        models = list(pool.map(lambda seed: em.fit_gmm(X, 3, n_init=2, random_state=seed), range(8)))
    assert _blas_threads() == before
    reference = em.fit_gmm(X, 3, n_init=2, random_state=0)
    np.testing.assert_allclose(models[0].means, reference.means, rtol=1e-12)
