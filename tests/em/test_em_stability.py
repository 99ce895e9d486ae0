"""Agreement between seeds, measured by the adjusted Rand index."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from songmix import em


@pytest.mark.parametrize("seed", range(5))
def test_adjusted_rand_index_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, size=200)
    b = np.where(rng.random(200) < 0.6, a, rng.integers(0, 5, size=200))
    assert em.adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 1, 1], [5, 5, 9, 9], 1.0),  # same partition, other names
        ([0, 0, 0, 0], [1, 1, 1, 1], 1.0),  # one cluster both sides
        ([0, 1, 2, 3], [3, 2, 1, 0], 1.0),  # all singletons both sides
        (["x", "x", "y"], ["p", "q", "q"], adjusted_rand_score(["x", "x", "y"], ["p", "q", "q"])),
    ],
)
def test_adjusted_rand_index_special_cases(a, b, expected):
    assert em.adjusted_rand_index(a, b) == pytest.approx(expected)


def test_separated_blobs_are_stable_across_seeds(blobs):
    X, _ = blobs
    model = em.fit_gmm(X, 3, n_init=5, random_state=0)
    labels = em.seed_labels(model, X)
    assert labels.shape == (5, len(X))
    np.testing.assert_array_equal(labels[model.best_seed], em.predict(model, X))
    stability = em.seed_stability(model, X)
    assert stability.shape == (5,)
    assert stability[model.best_seed] == 1.0
    assert (stability > 0.99).all()


def test_overlapping_clusters_show_instability(make_blobs):
    X, _ = make_blobs(600, 6, 2, separation=1.0, seed=3)
    model = em.fit_gmm(X, 6, n_init=8, random_state=0)
    stability = em.seed_stability(model, X)
    assert np.nanmin(stability) < 0.9


def test_failed_and_unconverged_seeds_have_no_stability(monkeypatch, blobs):
    X, _ = blobs
    monkeypatch.setattr("songmix.em._mstep.MIN_COMPONENT_COUNT", 80.0)
    model = em.fit_gmm(X, 4, n_init=6, random_state=0, max_iter=50)
    labels = em.seed_labels(model, X)
    stability = em.seed_stability(model, X)
    for seed in model.seeds:
        if seed.failed:
            assert (labels[seed.seed] == -1).all()
        if seed.seed != model.best_seed and (seed.failed or not seed.converged):
            assert np.isnan(stability[seed.seed])
        else:
            assert 0.0 <= stability[seed.seed] <= 1.0
    assert any(seed.failed for seed in model.seeds)
