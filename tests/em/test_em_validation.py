"""Bad input fails early with a message that says what is wrong and what to do."""

from __future__ import annotations

import numpy as np
import pytest

from songmix import em


@pytest.fixture
def samples() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(30, 3))


def test_nan_and_inf_name_the_columns_and_count_rows(samples):
    X = samples.copy()
    X[[1, 4], 0] = np.nan
    X[4, 2] = np.inf
    with pytest.raises(ValueError) as raised:
        em.fit_gmm(X, 2, feature_names=["energy", "valence", "tempo"])
    message = str(raised.value)
    assert "'energy' (2 rows)" in message and "'tempo' (1 row)" in message
    assert "'valence'" not in message
    assert "2 of 30 rows" in message and "Drop or impute" in message


def test_nan_message_uses_dataframe_columns(samples):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(samples, columns=["a", "b", "c"])
    frame.loc[3, "b"] = np.nan
    with pytest.raises(ValueError, match=r"'b' \(1 row\)"):
        em.fit_gmm(frame, 2)


@pytest.mark.parametrize(
    ("X", "n_components", "options", "message"),
    [
        (np.arange(10.0), 2, {}, r"2-D .* X.reshape\(-1, 1\)"),
        (np.zeros((0, 3)), 1, {}, "empty"),
        ([["a", "b"], ["c", "d"]], 1, {}, "numbers only"),
        (np.ones((3, 2)) + np.arange(3)[:, None], 4, {}, "3 samples but n_components=4"),
        (np.ones((5, 2)), 0, {}, "at least 1"),
        (np.ones((5, 2)), 2.5, {}, "must be an integer"),
        (np.ones((5, 2)), 2, {"covariance_type": "banded"}, "Unknown covariance_type 'banded'"),
        (np.ones((5, 2)), 2, {"init": "kmeans"}, r"Unknown init 'kmeans'; use one of kmeans\+\+, random"),
        (np.ones((5, 2)), 2, {"n_init": 0}, "n_init must be at least 1"),
        (np.ones((5, 2)), 2, {"max_iter": -1}, "max_iter must be 0 or more"),
        (np.ones((5, 2)), 2, {"tol": -1e-3}, "tol must be 0 or more"),
        (np.ones((5, 2)), 2, {"reg_covar": float("nan")}, "reg_covar must be 0 or more"),
        (np.ones((5, 2)), 2, {"feature_names": ["only one"]}, "one name per column"),
    ],
)
def test_invalid_input_or_options(X, n_components, options, message):
    with pytest.raises(ValueError, match=message):
        em.fit_gmm(X, n_components, **options)


@pytest.mark.parametrize(
    ("initial", "message"),
    [
        ({"weights": [0.5, 0.5], "means": np.zeros((2, 3))}, "exactly the keys"),
        ({"weights": [0.5, 0.5], "means": np.zeros((3, 3)), "covariances": np.stack([np.eye(3)] * 2)},
         r"initial\['means'\] must have shape \(2, 3\), got \(3, 3\)"),
        ({"weights": [0.5, 0.5], "means": np.zeros((2, 3)), "covariances": np.eye(3)},
         r"initial\['covariances'\] must have shape \(2, 3, 3\)"),
        ({"weights": [0.7, 0.7], "means": np.zeros((2, 3)), "covariances": np.stack([np.eye(3)] * 2)},
         "positive and sum to 1"),
        ({"weights": [0.5, 0.5], "means": np.zeros((2, 3)), "covariances": -np.stack([np.eye(3)] * 2)},
         "not positive definite"),
        ({"responsibilities": np.full((30, 3), 1 / 3)}, r"must have shape \(30, 2\)"),
        ({"responsibilities": np.full((30, 2), 0.7)}, "rows summing to 1"),
    ],
)
def test_bad_initial_values(samples, initial, message):
    with pytest.raises(ValueError, match=message):
        em.fit_gmm(samples, 2, initial=initial)


def test_constant_column_is_named_when_standardizing(samples):
    X = samples.copy()
    X[:, 1] = 0.5
    with pytest.raises(ValueError, match=r"'valence' are constant .* drop them"):
        em.fit_gmm(X, 2, standardize=True, feature_names=["energy", "valence", "tempo"])


def test_prediction_needs_the_fitted_columns(samples):
    model = em.fit_gmm(samples, 2, n_init=1, random_state=0)
    with pytest.raises(ValueError, match="X has 2 features but the model was fitted on 3"):
        em.predict(model, samples[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        em.predict_proba(model, [[np.nan, 0.0, 0.0]])


def test_adjusted_rand_index_needs_matching_labelings():
    with pytest.raises(ValueError, match="equal length"):
        em.adjusted_rand_index([0, 1, 1], [0, 1])


def _spd(seed: int, n_features: int = 3) -> np.ndarray:
    mixing = np.random.default_rng(seed).normal(size=(n_features, n_features))
    return mixing @ mixing.T + 0.5 * np.eye(n_features)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_an_asymmetric_covariance_is_rejected(samples, covariance_type):
    covariances = np.stack([_spd(1), _spd(2)]) * [[[1.0]], [[100.0]]]  # two scales
    covariances[1, 0, 2] += 1e-3 * 100.0  # component 1: asymmetric by 1e-3 of its scale
    if covariance_type == "tied":
        covariances = covariances[1]
    parameters = {"weights": [0.5, 0.5], "means": np.zeros((2, 3)), "covariances": covariances}
    with pytest.raises(ValueError, match=r"initial\['covariances'\] is not symmetric: the "
                                         r"(matrix of component 1|tied matrix) holds .* at \(0, 2\)"):
        em.fit_gmm(samples, 2, covariance_type=covariance_type, initial=parameters)
    with pytest.raises(ValueError, match=r"^covariances is not symmetric"):
        em.mixture_from_parameters(**parameters, covariance_type=covariance_type)


def test_asymmetry_within_rounding_is_averaged_away_so_densities_match_the_model():
    from scipy.stats import multivariate_normal

    covariance = 50.0 * _spd(3)
    rounded = covariance.copy()
    rounded[0, 1] *= 1 + 1e-12  # a stored, rounded copy of a symmetric matrix
    model = em.mixture_from_parameters([1.0], np.zeros((1, 3)), rounded[None])
    np.testing.assert_array_equal(model.covariances[0], model.covariances[0].T)
    X = np.random.default_rng(0).normal(size=(20, 3)) * 5.0
    np.testing.assert_allclose(
        em.score_samples(model, X),
        multivariate_normal(np.zeros(3), model.covariances[0]).logpdf(X),
        rtol=1e-10,
    )


@pytest.mark.parametrize(
    ("covariance_type", "covariances", "message"),
    [
        ("full", np.stack([np.eye(3), [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]),
         r"the matrix of component 1 is not positive definite"),
        ("tied", np.zeros((3, 3)), r"the tied matrix is not positive definite"),
        ("diag", np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]),
         r"covariances'?\]?\[1, 1\] is 0; variances must be positive"),
        ("spherical", np.array([1.0, -2.0]), r"covariances'?\]?\[1\] is -2; variances must be positive"),
    ],
)
def test_a_covariance_that_is_not_positive_definite_is_rejected(samples, covariance_type, covariances,
                                                                message):
    parameters = {"weights": [0.5, 0.5], "means": np.zeros((2, 3)), "covariances": covariances}
    with pytest.raises(ValueError, match=message):
        em.fit_gmm(samples, 2, covariance_type=covariance_type, initial=parameters)
    with pytest.raises(ValueError, match=message):
        em.mixture_from_parameters(**parameters, covariance_type=covariance_type)


def test_mixture_from_parameters_names_an_unknown_covariance_type():
    with pytest.raises(ValueError, match="Unknown covariance_type 'banded'"):
        em.mixture_from_parameters([1.0], [[0.0]], [[[1.0]]], covariance_type="banded")
