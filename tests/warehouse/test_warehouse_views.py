"""Views for the common questions describe the latest completed run; lineage is documented."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pandas as pd
import pytest

from songmix.warehouse.query import describe_schema, run_query
from songmix.warehouse.store import Warehouse

TRACKS = ["a", "b", "c"]


def _model_rows(run_id: str, feature_set: str, k: int, *, chosen: bool, clusters: list[int]):
    """Minimal gmm_models / gmm_assignments / gmm_memberships rows of one fitted model."""
    model = pd.DataFrame([{
        "run_id": run_id, "feature_set": feature_set, "k": k, "covariance_type": "full",
        "chosen": chosen, "features": ["x"], "scaler_mean": [0.0], "scaler_scale": [1.0],
        "log_likelihood": -1.0, "bic": 1.0, "aic": 1.0, "n_samples": len(TRACKS),
        "track_ids": TRACKS,
    }])
    probabilities = np.full((len(TRACKS), k), 0.1 / max(k - 1, 1))
    probabilities[np.arange(len(TRACKS)), clusters] = 0.9
    key = {"run_id": run_id, "feature_set": feature_set, "k": k, "track_id": TRACKS}
    assignments = pd.DataFrame(key | {"cluster": clusters, "probability": 0.9})
    memberships = pd.DataFrame(key | {"probabilities": list(probabilities)})
    return {"gmm_models": model, "gmm_assignments": assignments, "gmm_memberships": memberships}


def _run(warehouse: Warehouse, run_id: str, *, clusters: list[int], finish: str | None):
    warehouse.start_run(run_id, source="demo", parameters={}, code_version="0", flow_run_id=None)
    models = [_model_rows(run_id, feature_set, k, chosen=k == 2, clusters=clusters)
              for k in (2, 3) for feature_set in ("spotify", "aubio")]
    warehouse.write({
        "tracks": pd.DataFrame({"track_id": TRACKS, "name": [f"song {t}" for t in TRACKS],
                                "artists": "someone", "run_id": run_id}),
        "run_tracks": pd.DataFrame({"run_id": run_id, "track_id": TRACKS, "position": [0, 1, 2]}),
        **{name: pd.concat([m[name] for m in models], ignore_index=True)
           for name in ("gmm_models", "gmm_assignments", "gmm_memberships")},
        "comparison": pd.DataFrame([{
            "run_id": run_id, "left_set": "spotify", "right_set": "aubio", "left_k": 2,
            "right_k": 2, "metric": "ari", "value": 0.5, "n_tracks": 3}]),
    })
    if finish:
        warehouse.finish_run(run_id, status=finish, counts={})


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """Two completed runs and a newer unfinished one, built once and copied per test."""
    warehouse = Warehouse(tmp_path_factory.mktemp("views") / "w.duckdb")
    _run(warehouse, "old", clusters=[0, 0, 1], finish="completed")
    _run(warehouse, "new", clusters=[1, 1, 0], finish="completed")
    _run(warehouse, "unfinished", clusters=[0, 1, 0], finish=None)
    return warehouse.path


@pytest.fixture
def warehouse(three_runs, tmp_path):
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(three_runs, copy)
    return Warehouse(copy)


def test_track_clusters_show_the_chosen_models_of_the_latest_completed_run(warehouse):
    rows = run_query(warehouse.path, "select * from track_clusters")
    assert list(rows["track_id"]) == TRACKS
    assert set(rows["run_id"]) == {"new"}
    assert list(rows["spotify_cluster"]) == [1, 1, 0]
    assert list(rows["aubio_cluster"]) == [1, 1, 0]
    assert set(rows["spotify_k"]) == {2}
    assert rows["spotify_probability"].between(0, 1).all()
    assert list(rows["name"]) == [f"song {t}" for t in TRACKS]


def test_a_track_without_a_fit_still_appears_with_no_cluster(warehouse):
    warehouse.write({"run_tracks": pd.DataFrame({"run_id": "new", "track_id": ["a2"], "position": [3]}),
                     "tracks": pd.DataFrame({"track_id": ["a2"], "name": ["n"], "artists": "x",
                                             "run_id": "new"})})
    rows = run_query(warehouse.path, "select * from track_clusters where track_id = 'a2'")
    assert len(rows) == 1
    assert rows[["spotify_cluster", "aubio_cluster"]].isna().all(axis=None)


def test_latest_comparison_holds_only_the_latest_completed_runs_rows(warehouse):
    rows = run_query(warehouse.path, "select run_id, metric from latest_comparison")
    assert rows.values.tolist() == [["new", "ari"]]


def test_failed_items_list_failures_and_unexplained_bad_audio_once(warehouse):
    now = pd.Timestamp("2026-01-01")
    warehouse.write({
        "item_failures": pd.DataFrame({"run_id": "new", "stage": ["download", "fit"],
                                       "item_id": ["a", "aubio"], "reason": ["404", "too few"],
                                       "recorded_at": now}),
        "audio_files": pd.DataFrame({"track_id": ["a", "b", "c"],
                                     "status": ["failed", "unavailable", "ok"],
                                     "sha256": [None, None, "f" * 64], "path": [None, None, "/x"],
                                     "error": ["404", "no preview", None], "run_id": "new",
                                     "downloaded_at": now}),
    })
    rows = run_query(warehouse.path, "select stage, item_id, reason, run_id, run_status "
                                     "from failed_items order by stage, item_id")
    assert rows.values.tolist() == [
        ["download", "a", "404", "new", "completed"],
        ["download", "b", "no preview", "new", "completed"],
        ["fit", "aubio", "too few", "new", "completed"],
    ]


def test_every_view_and_its_lineage_columns_are_documented(warehouse):
    described = describe_schema(warehouse.path)
    views = described[described["kind"] == "view"]
    assert {"track_clusters", "latest_comparison", "failed_items"} <= set(views["name"])
    assert views.groupby("name")["object_description"].first().str.len().gt(20).all()
    tables = described[described["kind"] == "table"].set_index(["name", "column_name"])
    assert "track_ids" in tables.loc[("gmm_fits", "data_sha256"), "column_description"]
    assert "Lineage" in tables.loc[("gmm_models", "track_ids"), "column_description"]


def test_a_killed_runs_row_is_marked_interrupted_when_the_next_run_starts(warehouse):
    with warehouse.recording_run("next", source="demo", parameters={}, flow_run_id=None):
        status = run_query(warehouse.path, "select run_id, status, error from runs order by run_id")
    by_run = status.set_index("run_id")
    assert by_run.loc["unfinished", "status"] == "failed"
    assert "interrupted" in by_run.loc["unfinished", "error"]
    assert by_run.loc["next", "status"] == "running"
    assert by_run.loc["new", "status"] == "completed"


def test_a_run_holding_the_lock_is_never_marked_by_a_second_run(warehouse):
    """The run lock is the one test of liveness: a second run waits for the first to end,
    so it never sees the first one's row while that run lives."""
    first_inside, first_may_end, second_saw = threading.Event(), threading.Event(), []

    def first_run():
        with warehouse.recording_run("first", source="demo", parameters={}, flow_run_id=None):
            first_inside.set()
            first_may_end.wait(10)

    def second_run():
        with warehouse.recording_run("second", source="demo", parameters={}, flow_run_id=None):
            second_saw.append(dict(run_query(warehouse.path, "select run_id, status from runs").values))

    first = threading.Thread(target=first_run)
    first.start()
    assert first_inside.wait(10)
    second = threading.Thread(target=second_run)
    second.start()
    second.join(0.5)
    assert second.is_alive(), "the second run waits for the lock"
    first_may_end.set()
    first.join(10), second.join(10)
    assert second_saw[0]["first"] == "completed"
