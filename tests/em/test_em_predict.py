"""Using a fitted model: probabilities, labels, densities, and the notebook's new-song query."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from songmix import em


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_probabilities_are_a_distribution_and_predict_is_their_argmax(blobs, covariance_type):
    X, _ = blobs
    model = em.fit_gmm(X, 3, covariance_type=covariance_type, n_init=2, random_state=0)
    probabilities = em.predict_proba(model, X)
    assert probabilities.shape == (len(X), 3)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(em.predict(model, X), probabilities.argmax(axis=1))
    assert em.score_samples(model, X).shape == (len(X),)


def test_far_away_point_gets_finite_probabilities(blobs):
    X, _ = blobs
    model = em.fit_gmm(X, 3, n_init=1, random_state=0)
    probabilities = em.predict_proba(model, [[1e6, -1e6, 1e6, -1e6]])
    assert np.isfinite(probabilities).all()
    assert probabilities.sum() == pytest.approx(1.0)
    assert np.isfinite(em.score_samples(model, [[1e6, -1e6, 1e6, -1e6]])).all()


def _reference_log_prob(model, X):
    """Weighted log-probabilities (n, K) by scipy, one component at a time."""
    return np.column_stack([
        np.log(weight) + stats.multivariate_normal.logpdf(X, mean, covariance)
        for weight, mean, covariance in zip(model.weights, model.means, model.covariances)
    ])


@pytest.mark.parametrize("distance", [0.0, 3.0, 40.0, 1e3], ids=["near", "3", "40", "far"])
def test_densities_and_probabilities_match_scipy_near_and_far(blobs, distance):
    """Near samples take the unshifted exp; a far one sends its block the logsumexp way."""
    X, _ = blobs
    model = em.fit_gmm(X, 3, n_init=1, random_state=0)
    samples = np.concatenate([X[:50], X[:5] + distance])
    log_prob = _reference_log_prob(model, samples)
    np.testing.assert_allclose(
        em.score_samples(model, samples), special.logsumexp(log_prob, axis=1), rtol=1e-9
    )
    expected = np.exp(log_prob - special.logsumexp(log_prob, axis=1, keepdims=True))
    np.testing.assert_allclose(em.predict_proba(model, samples), expected, rtol=1e-7, atol=1e-15)


def _notebook_p_class_given_data(song, k, means, covars, p_class):
    """Cell 8 of the seed notebook, as written there."""
    p_song_given_cluster = []
    p_cluster_given_song = []
    for cluster in range(k):
        p_song_given_cluster.append(
            stats.multivariate_normal.pdf(x=song, mean=means[cluster], cov=covars[cluster])
        )
        p_cluster_given_song.append(p_song_given_cluster[cluster] * p_class[cluster])
    summ = sum(p_cluster_given_song)
    for cluster in range(k):
        p_cluster_given_song[cluster] = p_cluster_given_song[cluster] / summ
    return p_cluster_given_song


def test_notebook_two_feature_k2_new_song():
    """The notebook fitted k=2 on (acousticness, energy) and asked about a new song."""
    rng = np.random.default_rng(2020)
    acoustic = np.column_stack([rng.beta(6, 2, 300), rng.beta(2, 5, 300)])
    electronic = np.column_stack([rng.beta(1, 12, 700), rng.beta(6, 3, 700)])
    tracks = np.vstack([acoustic, electronic])
    model = em.fit_gmm(
        tracks, 2, init="random", n_init=10, random_state=0, feature_names=["acousticness", "energy"]
    )
    test_song = [0.000112, 0.506]
    probabilities = em.predict_proba(model, [test_song])[0]
    expected = _notebook_p_class_given_data(test_song, 2, model.means, model.covariances, model.weights)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-10)
    # A song with almost no acousticness belongs with the low-acousticness cluster.
    electronic_cluster = int(np.argmin(model.means[:, 0]))
    assert probabilities[electronic_cluster] > 0.5
    assert em.adjusted_rand_index(em.predict(model, tracks), np.repeat([0, 1], [300, 700])) > 0.8


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_full_covariances_expand_every_type_to_k_by_d_by_d(covariance_type):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (60, 3)), rng.normal(5, 1, (60, 3))])
    model = em.fit_gmm(X, 2, covariance_type=covariance_type, n_init=2, random_state=0)
    expanded = em.full_covariances(model)
    assert expanded.shape == (2, 3, 3)
    for component in range(2):
        np.testing.assert_allclose(expanded[component], expanded[component].T)
        assert np.all(np.linalg.eigvalsh(expanded[component]) > 0)
    if covariance_type == "diag":
        np.testing.assert_allclose(np.diagonal(expanded, axis1=1, axis2=2), model.covariances)


def test_a_model_rebuilt_from_its_parameters_predicts_the_same():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (80, 2)), rng.normal(4, 1, (80, 2))]) * [1.0, 50.0]
    model = em.fit_gmm(X, 2, n_init=3, random_state=0, standardize=True)
    rebuilt = em.mixture_from_parameters(model.weights, model.means, model.covariances,
                                         scaler=model.scaler)
    np.testing.assert_allclose(em.predict_proba(rebuilt, X), em.predict_proba(model, X), atol=1e-12)
    with pytest.raises(ValueError, match="positive definite"):
        em.mixture_from_parameters([0.5, 0.5], [[0, 0], [1, 1]], -np.ones((2, 2, 2)))
