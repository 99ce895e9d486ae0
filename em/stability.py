"""How much the clustering depends on the EM start: agreement between seeds.

A clustering that every converged seed reproduces (adjusted Rand index near 1 with the best
seed) is a property of the data; one that changes from seed to seed is an accident of
initialisation.
"""

from __future__ import annotations

import numpy as np

from ._estep import most_probable
from .gmm import GaussianMixtureModel, reduce_log_prob, seed_parameters


def _pairs(counts: np.ndarray) -> np.ndarray:
    """Number of unordered pairs, ``C(count, 2)``, elementwise (int64)."""
    return counts * (counts - 1) // 2


def adjusted_rand_from_tables(tables) -> np.ndarray:
    """Adjusted Rand index of one or many contingency tables (Hubert & Arabie 1985).

    Parameters
    ----------
    tables : array-like of int, shape (..., n_clusters_a, n_clusters_b)
        Samples per (cluster a, cluster b); empty rows and columns are allowed.

    Returns
    -------
    ari : ndarray of shape (...)
        1 for identical partitions (both one cluster, or both all singletons, count as
        identical, as in scikit-learn), about 0 for independent ones.
    """
    tables = np.asarray(tables, dtype=np.int64)
    index = _pairs(tables).sum(axis=(-2, -1))
    row_pairs = _pairs(tables.sum(axis=-1)).sum(axis=-1)
    col_pairs = _pairs(tables.sum(axis=-2)).sum(axis=-1)
    total_pairs = _pairs(tables.sum(axis=(-2, -1)))
    # A single sample has no pairs; it is "identical" below, the max() only avoids 0/0.
    expected = row_pairs.astype(np.float64) * col_pairs / np.maximum(total_pairs, 1)
    maximum = (row_pairs + col_pairs) / 2.0
    # max == expected only when both sides are one cluster or both all singletons: identical
    # partitions. Tested in exact integers to avoid 0/0.
    identical = (row_pairs == col_pairs) & ((row_pairs == 0) | (row_pairs == total_pairs))
    return np.where(identical, 1.0, (index - expected) / np.where(identical, 1.0, maximum - expected))


def adjusted_rand_index(labels_a, labels_b) -> float:
    """Adjusted Rand index of two labelings of the same samples (Hubert & Arabie 1985).

    1 for identical partitions (whatever the label names), about 0 for independent ones.

    Parameters
    ----------
    labels_a, labels_b : array-like of shape (n_samples,)

    Returns
    -------
    ari : float
    """
    a = np.asarray(labels_a)
    b = np.asarray(labels_b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"Both labelings must be 1-D and of equal length; got shapes {a.shape} and {b.shape}."
        )
    _, codes_a = np.unique(a, return_inverse=True)
    _, codes_b = np.unique(b, return_inverse=True)
    contingency = np.zeros((codes_a.max(initial=-1) + 1, codes_b.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(contingency, (codes_a, codes_b), 1)
    return float(adjusted_rand_from_tables(contingency))


def seed_labels(model: GaussianMixtureModel, X, *, n_jobs: int | None = None) -> np.ndarray:
    """Most probable component of each sample under every seed's mixture.

    Parameters
    ----------
    model, X, n_jobs
        As for :func:`songmix.em.predict_proba` (``model`` from :func:`songmix.em.fit_gmm`).

    Returns
    -------
    labels : ndarray of int, shape (n_seeds, n_samples)
        Row ``s`` for ``model.seeds[s]``; -1 throughout for a failed seed.
    """
    usable = [seed for seed in model.seeds if not seed.failed]
    if not usable:
        raise ValueError(
            "The model has no fitted seeds (mixture_from_parameters builds none); seed labels "
            "and stability need a model from fit_gmm."
        )
    usable_labels = reduce_log_prob(model, X, seed_parameters(model, usable), most_probable, n_jobs)
    labels = np.full((len(model.seeds), usable_labels.shape[1]), -1, dtype=np.int64)
    labels[[seed.seed for seed in usable]] = usable_labels
    return labels


def seed_stability(model: GaussianMixtureModel, X, *, n_jobs: int | None = None) -> np.ndarray:
    """Agreement of every converged seed's clustering with the best seed's (the arguments
    are those of :func:`seed_labels`).

    Returns
    -------
    ari : ndarray of shape (n_seeds,)
        Adjusted Rand index between each seed's labels and the best seed's, in the order of
        ``model.seeds``: 1.0 for the best seed itself, NaN for seeds that failed or did not
        converge. ``np.delete(ari, model.best_seed)`` leaves the other seeds.
    """
    labels = seed_labels(model, X, n_jobs=n_jobs)
    best = labels[model.best_seed]
    return np.array(
        [
            adjusted_rand_index(best, labels[seed.seed])
            if seed.converged or seed.seed == model.best_seed
            else np.nan
            for seed in model.seeds
        ]
    )
