"""The figures' cache key compares what is drawn by content, not by the objects holding it."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from songmix.tasks.compare import _figures_key, figure_inputs
from songmix.tasks.modeling import fit_mixtures
from songmix.tasks.options import ModelOptions


def _inputs(fits):
    features = {"spotify": pd.DataFrame(np.random.default_rng(1).normal(size=(80, 3)), columns=list("abc"))}
    curves = pd.DataFrame({"feature_set": "spotify", "k": [2, 3], "seed": 0, "bic": [10.0, 9.0], "aic": [8.0, 7.5]})
    return figure_inputs({"spotify": fits}, features, None, curves, None, None)


def test_a_fit_read_back_from_the_cache_gives_the_same_key_and_other_content_another():
    X = np.random.default_rng(0).normal(size=(80, 3))
    fits = fit_mixtures.fn("spotify", X, list("abc"), ModelOptions(ks=[2, 3], n_seeds=3, covariance_type="full"))
    read_back = pickle.loads(pickle.dumps(fits))
    key = _figures_key(None, {"figures": _inputs(fits)})
    assert _figures_key(None, {"figures": _inputs(read_back)}) == key
    other_k = 5 - fits.chosen_k  # the k of [2, 3] the selection did not choose
    other = fit_mixtures.fn("spotify", X, list("abc"),
                            ModelOptions(ks=[2, 3], fixed_k=other_k, n_seeds=3, covariance_type="full"))
    assert _figures_key(None, {"figures": _inputs(other)}) != key
