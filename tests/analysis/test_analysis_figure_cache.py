"""The figures' cache key compares what is drawn by content, not by the objects holding it."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from songmix.em import full_covariances
from songmix.tasks.compare import _figures_key, figure_inputs
from songmix.tasks.modeling import fit_mixtures
from songmix.warehouse.records import data_sha256
from songmix.warehouse.store import StoredClustering

X = np.random.default_rng(0).normal(size=(80, 3))


def _clustering(fits) -> StoredClustering:
    """The chosen clustering of ``fits`` as the comparison reads it back from the warehouse."""
    model, scale = fits.models[fits.chosen_k], fits.scaler.scale
    return StoredClustering(
        feature_set="spotify", chosen_k=fits.chosen_k,
        labels_by_k={k: p.argmax(axis=1) for k, p in fits.probabilities(X).items()},
        feature_names=tuple(fits.scaler.feature_names), means=fits.scaler.inverse_transform(model.means),
        covariances=full_covariances(model) * np.outer(scale, scale))


def _inputs(fits):
    features = {"spotify": pd.DataFrame(np.random.default_rng(1).normal(size=(80, 3)), columns=list("abc"))}
    curves = pd.DataFrame({"feature_set": "spotify", "k": [2, 3], "seed": 0, "bic": [10.0, 9.0], "aic": [8.0, 7.5]})
    return figure_inputs({"spotify": _clustering(fits)}, features, None, curves, None, None)


def _fit(fixed_k=None):
    return fit_mixtures.fn("spotify", X, data_sha256(X, [str(i) for i in range(len(X))]), list("abc"),
                           [2, 3], fixed_k=fixed_k, n_seeds=3, covariance_type="full", random_state=0)


def test_a_fit_read_back_from_the_cache_gives_the_same_key_and_other_content_another():
    fits = _fit()
    read_back = pickle.loads(pickle.dumps(fits))
    key = _figures_key(None, {"figures": _inputs(fits)})
    assert _figures_key(None, {"figures": _inputs(read_back)}) == key
    other = _fit(fixed_k=5 - fits.chosen_k)  # the k of [2, 3] the selection did not choose
    assert _figures_key(None, {"figures": _inputs(other)}) != key
