"""The figures' cache key compares what is drawn by content, not by the objects holding it."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from songmix.tasks.compare import _figures_key
from songmix.tasks.modeling import fit_mixtures
from songmix.tasks.options import ModelOptions
from songmix.warehouse.records import data_sha256

X = np.random.default_rng(0).normal(size=(80, 3))


def _figures(fits) -> dict[str, tuple[str, dict]]:
    """The BIC figure of one fit, as the report's figure specs hand it to render-plots."""
    selection = pd.DataFrame(fits.selection.candidates()).assign(feature_set="spotify")
    labels = fits.probabilities(X)[fits.chosen_k].argmax(axis=1)
    return {"information_criteria": ("plot_information_criteria", {
                "fits": selection[selection["status"] == "fitted"], "chosen_k": {"spotify": fits.chosen_k}}),
            "labels": ("plot_cluster_scatter", {"labels": labels, "means": fits.models[fits.chosen_k].means})}


def _fit(fixed_k=None):
    return fit_mixtures.fn("spotify", X, data_sha256(X, [str(i) for i in range(len(X))]), list("abc"),
                           ModelOptions(ks=[2, 3], fixed_k=fixed_k, n_seeds=3, covariance_type="full"))


def test_a_fit_read_back_from_the_cache_gives_the_same_key_and_other_content_another():
    fits = _fit()
    read_back = pickle.loads(pickle.dumps(fits))
    key = _figures_key(None, {"figures": _figures(fits)})
    assert _figures_key(None, {"figures": _figures(read_back)}) == key
    other = _fit(fixed_k=5 - fits.chosen_k)  # the k of [2, 3] the selection did not choose
    assert _figures_key(None, {"figures": _figures(other)}) != key
