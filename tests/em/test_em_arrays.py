"""The caller's arrays: every public em/ call leaves them writeable and unchanged, and results
never share memory with them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from songmix import em


def _caller_arrays(make_blobs) -> dict[str, np.ndarray]:
    """Writeable float64 arrays as a notebook would hold them (no conversion makes a copy)."""
    X, labels = make_blobs(300, 2, 3, separation=5.0, seed=11)
    responsibilities = np.zeros((300, 2))
    responsibilities[np.arange(300), labels] = 1.0
    return {
        "X": X,
        "labels": labels,
        "weights": np.array([0.5, 0.5]),
        "means": np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]),
        "covariances": np.stack([np.eye(3), 2.0 * np.eye(3)]),
        "responsibilities": responsibilities,
        "scaler_mean": np.array([0.1, 0.2, 0.3]),
        "scaler_scale": np.array([1.0, 2.0, 3.0]),
    }


def _public_calls(arrays: dict[str, np.ndarray]) -> dict[str, Callable[[], object]]:
    X = arrays["X"]
    parameters = {key: arrays[key] for key in ("weights", "means", "covariances")}
    # Built from copies, so that only the calls below touch the caller's arrays.
    model = em.fit_gmm(X.copy(), 2, n_init=2, random_state=0)
    rebuilt = em.mixture_from_parameters(**{key: values.copy() for key, values in parameters.items()})
    scaler = em.Scaler(mean=arrays["scaler_mean"].copy(), scale=arrays["scaler_scale"].copy(),
                       feature_names=("a", "b", "c"))
    return {
        "fit_gmm": lambda: em.fit_gmm(X, 2, n_init=2, random_state=0, standardize=True),
        "fit_gmm(n_jobs=2)": lambda: em.fit_gmm(X, 2, n_init=2, random_state=0, n_jobs=2),
        "fit_gmm(initial=parameters)": lambda: em.fit_gmm(X, 2, initial=parameters),
        "fit_gmm(initial=responsibilities)": lambda: em.fit_gmm(
            X, 2, initial={"responsibilities": arrays["responsibilities"]}),
        "select_k": lambda: em.select_k(X, [1, 2], n_init=2, random_state=0),
        "predict_proba": lambda: em.predict_proba(model, X),
        "predict": lambda: em.predict(model, X),
        "score_samples": lambda: em.score_samples(rebuilt, X),
        "bic and aic": lambda: (model.bic(X), model.aic(X)),
        "seed_labels": lambda: em.seed_labels(model, X),
        "seed_stability": lambda: em.seed_stability(model, X, n_jobs=2),
        "adjusted_rand_index": lambda: em.adjusted_rand_index(arrays["labels"], arrays["labels"]),
        "full_covariances": lambda: em.full_covariances(rebuilt),
        "mixture_from_parameters": lambda: em.mixture_from_parameters(**parameters),
        "Scaler": lambda: em.Scaler(mean=arrays["scaler_mean"], scale=arrays["scaler_scale"],
                                    feature_names=("a", "b", "c")),
        "fit_scaler": lambda: em.fit_scaler(X),
        "Scaler.transform": lambda: scaler.transform(X),
        "Scaler.inverse_transform": lambda: scaler.inverse_transform(X),
    }


def test_every_public_call_leaves_the_callers_arrays_writeable_and_unchanged(make_blobs):
    arrays = _caller_arrays(make_blobs)
    before = {name: values.copy() for name, values in arrays.items()}
    for call_name, call in _public_calls(arrays).items():
        call()
        for name, values in arrays.items():
            assert values.flags.writeable, f"{call_name} made the caller's {name} read-only"
            np.testing.assert_array_equal(values, before[name], err_msg=f"{call_name} changed {name}")


def test_results_hold_read_only_copies_of_the_callers_arrays(make_blobs):
    arrays = _caller_arrays(make_blobs)
    model = em.mixture_from_parameters(arrays["weights"], arrays["means"], arrays["covariances"])
    scaler = em.Scaler(mean=arrays["scaler_mean"], scale=arrays["scaler_scale"],
                       feature_names=("a", "b", "c"))
    held = [model.weights, model.means, model.covariances, scaler.mean, scaler.scale]
    for values in held:
        assert not values.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            values[...] = 0.0
    callers = ["weights", "means", "covariances", "scaler_mean", "scaler_scale"]
    for values, name in zip(held, callers):
        assert not np.shares_memory(values, arrays[name])
    arrays["means"][0] = 99.0  # the caller goes on using its own array
    assert model.means[0, 0] == 0.0


def test_a_fitted_model_and_its_seeds_are_read_only(blobs):
    X, _ = blobs
    model = em.fit_gmm(X, 3, n_init=2, random_state=0)
    for values in (model.weights, model.means, model.covariances, model.precisions_cholesky,
                   *(seed.means for seed in model.seeds)):
        assert not values.flags.writeable
