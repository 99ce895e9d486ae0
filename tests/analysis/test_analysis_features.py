"""Feature-level agreement: ridge R², best single feature, direct measures, missing tracks."""

import numpy as np
import pandas as pd
import pytest

from songmix.analysis.features import align_tracks, direct_agreement, feature_agreement
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES


def track_ids(n):
    return pd.Index([f"track{i:04d}" for i in range(n)], name="track_id")


@pytest.fixture
def feature_tables():
    """Spotify features and Aubio features where energy and loudness are predictable."""
    rng = np.random.default_rng(0)
    n = 300
    ids = track_ids(n)
    spotify = pd.DataFrame({name: rng.random(n) for name in SPOTIFY_CLUSTER_FEATURES}, index=ids)
    spotify["loudness"] = rng.normal(-8, 3, n)
    spotify["tempo"] = rng.uniform(70, 170, n)
    spotify["key"] = rng.integers(0, 12, n)
    spotify["mode"] = rng.integers(0, 2, n)
    aubio = pd.DataFrame({f"mfcc_{i}_mean": rng.normal(size=n) for i in range(1, 14)}, index=ids)
    aubio["onset_rate"] = 4 * spotify["energy"] + rng.normal(0, 0.3, n)
    aubio["loudness"] = spotify["loudness"] + rng.normal(0, 1, n)
    aubio["spectral_centroid_mean"] = rng.normal(2000, 300, n)
    aubio["tempo"] = spotify["tempo"]
    aubio["key"] = spotify["key"]
    aubio["mode"] = spotify["mode"]
    return spotify, aubio


def test_predictable_features_score_high_and_noise_scores_near_zero(feature_tables):
    spotify, aubio = feature_tables
    result = feature_agreement(spotify, aubio)
    table = result.table
    assert list(table.index) == list(SPOTIFY_CLUSTER_FEATURES)
    assert table.loc["energy", "cv_r2"] > 0.8
    assert table.loc["loudness", "cv_r2"] > 0.8
    assert table.loc["energy", "best_aubio_feature"] == "onset_rate"
    assert table.loc["loudness", "best_aubio_feature"] == "loudness"
    expected_r = np.corrcoef(spotify["energy"], aubio["onset_rate"])[0, 1]
    assert table.loc["energy", "best_pearson_r"] == pytest.approx(expected_r)
    assert abs(table.loc["valence", "cv_r2"]) < 0.1
    assert (table["n_tracks"] == 300).all()
    assert result.notes == ()


def test_key_and_mode_are_not_used_as_predictors_by_default(feature_tables):
    spotify, aubio = feature_tables
    aubio = aubio.assign(key=spotify["energy"] * 11)  # would leak energy if used
    table = feature_agreement(spotify, aubio).table
    assert table.loc["energy", "best_aubio_feature"] == "onset_rate"


def test_missing_tracks_are_counted_and_listed(feature_tables):
    spotify, aubio = feature_tables
    spotify = pd.concat([spotify, spotify.iloc[:1].rename(index={"track0000": "spotify_only"})])
    aubio = aubio.drop(index=["track0003", "track0004"])
    aubio.loc["track0010", "onset_rate"] = np.nan  # a failed extraction
    result = feature_agreement(spotify, aubio)
    alignment = result.alignment
    assert set(alignment.missing_from_aubio) == {"track0003", "track0004", "track0010", "spotify_only"}
    assert alignment.missing_from_spotify == ()
    assert alignment.n_tracks == 301 - 4
    assert "4 tracks lack Aubio features" in result.notes[0]
    assert (result.table["n_tracks"] == 297).all()


def test_tracks_only_aubio_has_are_missing_from_spotify():
    ids = track_ids(4)
    spotify = pd.DataFrame({"tempo": [100.0, 120.0, np.nan, 90.0]}, index=ids)
    aubio = pd.DataFrame({"tempo": [100.0, 121.0, 80.0, 90.0, 70.0]}, index=ids.append(pd.Index(["extra"])))
    alignment = align_tracks(spotify, aubio, spotify_columns=["tempo"], aubio_columns=["tempo"])
    assert alignment.track_ids == ("track0000", "track0001", "track0003")
    assert alignment.missing_from_spotify == ("track0002", "extra")
    assert alignment.missing_from_aubio == ()


def test_too_few_tracks_still_answers_what_it_can(feature_tables):
    spotify, aubio = feature_tables
    result = feature_agreement(spotify.iloc[:6], aubio.iloc[:6])
    assert result.table["cv_r2"].isna().all()
    assert result.table["best_pearson_r"].notna().any()
    assert any("too few" in note for note in result.notes)


def test_feature_agreement_rejects_bad_tables(feature_tables):
    spotify, aubio = feature_tables
    with pytest.raises(ValueError, match="duplicate track ids"):
        feature_agreement(pd.concat([spotify, spotify.iloc[:2]]), aubio)
    with pytest.raises(ValueError, match="spotify_columns"):
        feature_agreement(spotify.drop(columns="energy"), aubio)
    with pytest.raises(ValueError, match="no numeric feature column"):
        feature_agreement(spotify, aubio[["key", "mode"]])


def direct_tables(spotify_rows, aubio_rows):
    columns = ["tempo", "key", "mode", "loudness", "energy"]
    spotify = pd.DataFrame(spotify_rows, columns=columns, index=track_ids(len(spotify_rows)))
    aubio = pd.DataFrame(
        aubio_rows, columns=["tempo", "key", "mode", "loudness", "onset_rate"], index=track_ids(len(aubio_rows))
    )
    return spotify, aubio


def test_tempo_accuracy_allows_octave_errors_only_in_acc2():
    spotify, aubio = direct_tables(
        [[100, 0, 1, -5, 0.9], [100, 0, 1, -9, 0.2], [120, 0, 1, -7, 0.5], [90, 0, 1, -6, 0.6], [80, 0, 1, -4, 0.1]],
        # exact, 3 % off, double, a third, 10 % off
        [[100, 0, 1, -5, 4.0], [103, 0, 1, -9, 1.0], [240, 0, 1, -7, 2.0], [30, 0, 1, -6, 3.0], [88, 0, 1, -4, 1.5]],
    )
    table = direct_agreement(spotify, aubio).table
    assert table.loc["tempo_acc1", "value"] == pytest.approx(2 / 5)
    assert table.loc["tempo_acc2", "value"] == pytest.approx(4 / 5)
    assert table.loc["tempo_acc1", "n_tracks"] == 5
    assert table.loc["loudness_pearson_r", "value"] == pytest.approx(1.0)
    expected = np.corrcoef([0.9, 0.2, 0.5, 0.6, 0.1], [4.0, 1.0, 2.0, 3.0, 1.5])[0, 1]
    assert table.loc["energy_vs_onset_rate_r", "value"] == pytest.approx(expected)


def test_key_and_mode_agreement_with_names_unknown_keys_and_chance():
    spotify, aubio = direct_tables(
        [[100, 0, 1, -5, 0.5], [100, 7, 1, -6, 0.5], [100, 9, 0, -7, 0.5], [100, -1, 1, -8, 0.5]],
        [[100, 0, 1, -5, 1], [100, 7, 0, -6, 1], [100, 0, 1, -7, 1], [100, 3, 1, -8, 1]],
    )
    aubio["key"] = ["C", "G", "C", "D#"]
    aubio["mode"] = ["major", "minor", "major", "major"]
    table = direct_agreement(spotify, aubio).table
    # Spotify's key -1 (unknown) leaves the fourth track out of key measures only.
    assert table.loc["key_agreement", "n_tracks"] == 3
    assert table.loc["key_agreement", "value"] == pytest.approx(2 / 3)
    assert table.loc["mode_agreement", "value"] == pytest.approx(2 / 4)
    assert table.loc["mode_agreement", "n_tracks"] == 4
    # C major = C major (1); G major vs G minor is parallel (0.2); A minor vs C major relative (0.3).
    assert table.loc["key_weighted_score", "value"] == pytest.approx((1 + 0.2 + 0.3) / 3)
    spotify_share = np.bincount([0, 7, 9], minlength=12) / 3
    aubio_share = np.bincount([0, 7, 0], minlength=12) / 3
    assert table.loc["key_agreement", "chance"] == pytest.approx(spotify_share @ aubio_share)


def test_direct_agreement_names_the_missing_column():
    spotify, aubio = direct_tables([[100, 0, 1, -5, 0.5]] * 3, [[100, 0, 1, -5, 1]] * 3)
    with pytest.raises(ValueError, match="aubio_columns"):
        direct_agreement(spotify, aubio.rename(columns={"loudness": "rms_db"}))
    renamed = direct_agreement(
        spotify,
        aubio.rename(columns={"loudness": "rms_db"}),
        aubio_columns={"tempo": "tempo", "key": "key", "mode": "mode", "loudness": "rms_db", "onset_rate": "onset_rate"},
    )
    assert renamed.table.loc["tempo_acc1", "value"] == 1.0
    with pytest.raises(ValueError, match="pitch classes"):
        direct_agreement(spotify, aubio.assign(key=[0, 1, 14]))
    with pytest.raises(ValueError, match="major"):
        direct_agreement(spotify, aubio.assign(mode=["major", "dorian", "minor"]))
