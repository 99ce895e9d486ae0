"""Standardisation before fitting, stored with the model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from songmix import em


@pytest.fixture
def raw(blobs) -> np.ndarray:
    X, _ = blobs
    return X * [0.01, 1.0, 50.0, 1000.0] + [0.5, -7.0, 120.0, 3.0]


def test_scaler_matches_sklearn_and_round_trips(raw):
    scaler = em.fit_scaler(raw, feature_names=["a", "b", "c", "d"])
    np.testing.assert_allclose(scaler.transform(raw), StandardScaler().fit_transform(raw), atol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(raw)), raw, rtol=1e-12)
    assert scaler.feature_names == ("a", "b", "c", "d")
    with pytest.raises(dataclasses.FrozenInstanceError):
        scaler.mean = np.zeros(4)


def test_constant_columns_are_named(raw):
    X = raw.copy()
    X[:, [0, 3]] = 7.0
    with pytest.raises(ValueError, match=r"Column\(s\) 'x0', 'x3' are constant"):
        em.fit_scaler(X)


def test_scaler_refuses_other_widths(raw):
    scaler = em.fit_scaler(raw)
    with pytest.raises(ValueError, match="X has 3 features but the model was fitted on 4"):
        scaler.transform(raw[:, :3])


def test_standardized_model_takes_raw_samples(raw):
    model = em.fit_gmm(raw, 3, n_init=2, random_state=0, standardize=True)
    assert model.scaler is not None
    standardized = model.scaler.transform(raw)
    plain = em.fit_gmm(standardized, 3, n_init=2, random_state=0)
    np.testing.assert_allclose(model.means, plain.means, atol=1e-9)
    np.testing.assert_allclose(em.predict_proba(model, raw), em.predict_proba(plain, standardized), atol=1e-9)
    assert model.log_likelihood == pytest.approx(em.score_samples(model, raw).mean(), abs=1e-12)
    assert model.bic(raw) == pytest.approx(plain.bic(standardized), rel=1e-9)
    # Means back in original units sit inside the data's range.
    original_means = model.scaler.inverse_transform(model.means)
    assert (original_means >= raw.min(axis=0)).all() and (original_means <= raw.max(axis=0)).all()
