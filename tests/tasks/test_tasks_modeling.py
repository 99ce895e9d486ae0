"""The fit task: model selection on every track, or on a sample of a large data set and then
refined on every track; and the rows it becomes."""

from __future__ import annotations

import numpy as np
import pytest

from songmix.em import score_samples
from songmix.tasks.modeling import fit_mixtures
from songmix.tasks.options import ModelOptions
from songmix.warehouse.records import data_sha256, mixture_rows

CENTRES = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 3.0], [0.0, 6.0, -3.0]])


def _data_set(n_rows: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(3)
    features = CENTRES[rng.integers(0, 3, n_rows)] + rng.normal(0, 1, (n_rows, 3))
    return features, [f"t{i}" for i in range(n_rows)]


def _fit(features, track_ids, **options):
    return fit_mixtures.fn("spotify", features, data_sha256(features, track_ids), list("abc"),
                           ModelOptions(ks=[2, 3, 4], n_seeds=3, **options))


def test_a_data_set_within_the_sample_size_is_selected_and_fitted_on_every_track():
    features, track_ids = _data_set(300)
    fits = _fit(features, track_ids)
    assert fits.selection.n_samples == 300 and fits.chosen_k == 3
    assert all(len(model.seeds) == 3 for model in fits.models.values())
    np.testing.assert_allclose(fits.scaler.mean, features.mean(axis=0))


def test_a_large_data_set_is_selected_on_a_sample_then_refined_on_every_track():
    features, track_ids = _data_set(1500)
    fits = _fit(features, track_ids, selection_sample=400, prior=False)
    assert fits.selection.n_samples == 400 and fits.chosen_k == 3
    # every (covariance type, k) pair was compared on the sample, over every seed
    assert {row["covariance_type"] for row in fits.selection.candidates()} == {"full", "tied", "diag", "spherical"}
    assert all(len(stability) == 3 for stability in fits.stability.values())
    for k, model in fits.models.items():
        assert [seed.random_state for seed in model.seeds] == [None]  # one EM run, from the sample's fit
        sample_fit = fits.selection.chosen.models[fits.selection.chosen.ks.index(k)]
        # the refinement raised the likelihood of all the tracks above the sample's fit's
        start = score_samples(sample_fit, fits.scaler.transform(features)).mean()
        assert model.log_likelihood >= start - 1e-9
    np.testing.assert_allclose(fits.scaler.mean, features.mean(axis=0))
    rows = mixture_rows("r", fits, fits.probabilities(features), features, track_ids)
    assert set(rows["model_selection"]["n_samples"]) == {400}
    assert set(rows["gmm_models"].column("n_samples").to_pylist()) == {1500}
    assert len(rows["gmm_fits"]) == len(fits.models)
    assert len(rows["gmm_assignments"]) == 1500 * len(fits.models)
    assert rows["seed_stability"]["seed"].max() <= 2


def test_the_sample_is_seeded_and_the_same_fit_comes_back():
    features, track_ids = _data_set(900)
    first, again = (_fit(features, track_ids, selection_sample=300) for _ in range(2))
    assert first.chosen_k == again.chosen_k
    np.testing.assert_allclose(first.models[first.chosen_k].means, again.models[again.chosen_k].means)


@pytest.mark.parametrize("constant_column", [0, 2])
def test_a_constant_column_is_refused_naming_it(constant_column):
    features, track_ids = _data_set(200)
    features[:, constant_column] = 1.0
    with pytest.raises(ValueError, match=f"'{'abc'[constant_column]}'.*constant"):
        _fit(features, track_ids)


def test_the_fitted_tracks_are_stored_once_per_feature_set_on_the_chosen_model(tmp_path):
    from songmix.warehouse import reads
    from songmix.warehouse.store import Warehouse

    features, track_ids = _data_set(300)
    fits = _fit(features, track_ids)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.write(mixture_rows("r", fits, fits.probabilities(features), features, track_ids))
    with warehouse.reading() as connection:
        stored = connection.execute("select k, chosen, track_ids from gmm_models order by k").fetchall()
    assert [(k, ids) for k, chosen, ids in stored if chosen] == [(fits.chosen_k, track_ids)]
    assert all(ids is None for _, chosen, ids in stored if not chosen) and len(stored) == 3
    assert reads.fitted_track_ids(warehouse, "r") == track_ids
