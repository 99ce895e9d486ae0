"""End to end on a small demo: tables fill and add up, clusterings recover the demo groups,
and a second run downloads and extracts nothing again."""

from __future__ import annotations

import duckdb
import pytest

from songmix.analysis.report import DEMO_AUDIO_CAVEAT
from songmix.flows.pipeline import pipeline

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

N_TRACKS = 60


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """Two runs of the same 60-track, 3-group demo into one warehouse."""
    root = tmp_path_factory.mktemp("pipeline")
    options = dict(source="demo", n_tracks=N_TRACKS, demo_groups=3, ks=[2, 3, 4], n_seeds=4,
                   db_path=root / "w.duckdb", data_dir=root / "data", out_dir=root / "out")
    first = pipeline(**options)
    second = pipeline(**options)
    return root, first, second


def _scalar(path, sql, *params):
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchone()[0]


def test_every_stage_table_fills_and_counts_add_up(demo_runs):
    root, first, _ = demo_runs
    db = root / "w.duckdb"
    assert _scalar(db, "select count(*) from tracks") == N_TRACKS
    assert _scalar(db, "select count(*) from run_tracks where run_id = ?", first.run_id) == N_TRACKS
    assert _scalar(db, "select count(*) from search_pages where run_id = ?", first.run_id) == 6
    assert _scalar(db, "select count(*) from spotify_features") == N_TRACKS
    assert _scalar(db, "select count(*) from audio_files where status = 'ok'") == N_TRACKS
    assert _scalar(db, "select count(*) from aubio_features") == N_TRACKS
    # one row per (feature set, k, seed) and per (feature set, k, track)
    assert _scalar(db, "select count(*) from gmm_fits where run_id = ?", first.run_id) == 2 * 3 * 4
    assert _scalar(db, "select count(*) from gmm_assignments where run_id = ?", first.run_id) == 2 * 3 * N_TRACKS
    # every component's probability for the chosen model of each feature set, agreeing with the assignments
    assert _scalar(db, "select count(*) from gmm_memberships join gmm_models using (run_id, feature_set, k) "
                       "where run_id = ? and chosen", first.run_id) == 2 * N_TRACKS
    assert _scalar(db, "select count(*) from gmm_memberships m join gmm_assignments a "
                       "using (run_id, feature_set, k, track_id) where run_id = ? "
                       "and abs(m.probabilities[a.cluster + 1] - a.probability) < 1e-12 "
                       "and list_position(m.probabilities, list_max(m.probabilities)) = a.cluster + 1",
                   first.run_id) == 2 * N_TRACKS
    assert _scalar(db, "select sum(k) from gmm_models where run_id = ?", first.run_id) == \
        _scalar(db, "select count(*) from gmm_components where run_id = ?", first.run_id)
    chosen_k = _scalar(db, "select k from gmm_models where run_id = ? and feature_set = 'spotify' and chosen",
                       first.run_id)
    assert _scalar(db, "select sum(n_tracks) from contingency where run_id = ? and left_set = 'spotify' "
                       "and right_set = 'aubio'", first.run_id) == N_TRACKS
    assert chosen_k in (2, 3, 4)
    assert _scalar(db, "select count(*) from comparison where run_id = ?", first.run_id) > 0
    assert _scalar(db, "select status from runs where run_id = ?", first.run_id) == "completed"


def test_the_summary_of_a_demo_run_says_its_audio_is_synthesised(demo_runs):
    _, first, _ = demo_runs
    assert DEMO_AUDIO_CAVEAT in first.notes
    assert "synthesised from its own features" in first.as_text()


def test_the_spotify_clustering_recovers_the_demo_groups(demo_runs):
    root, first, _ = demo_runs
    ari = _scalar(root / "w.duckdb", "select value from comparison where run_id = ? and left_set = 'spotify' "
                  "and right_set = 'truth' and metric = 'ari'", first.run_id)
    assert ari > 0.8


def test_a_second_run_downloads_and_extracts_nothing_again(demo_runs):
    root, first, second = demo_runs
    db = root / "w.duckdb"
    assert second.run_id != first.run_id
    assert _scalar(db, "select count(*) from audio_files where run_id = ?", second.run_id) == 0
    assert _scalar(db, "select count(*) from aubio_features where run_id = ?", second.run_id) == 0
    assert _scalar(db, "select count(*) from spotify_features where run_id = ?", second.run_id) == 0
    assert _scalar(db, "select count(*) from audio_files") == N_TRACKS
    assert _scalar(db, "select count(*) from runs where status = 'completed'") == 2


def test_the_run_writes_its_plots(demo_runs):
    root, first, _ = demo_runs
    assert first.plots, "the summary lists the plots it wrote"
    for path in first.plots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_run_on_the_same_results_takes_its_figures_from_the_cache(demo_runs, latest_task_run_states):
    _, first, second = demo_runs
    assert latest_task_run_states("render-plots", 2) == ["Cached", "Completed"]
    assert second.plots.keys() == first.plots.keys()
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in second.plots.values())


def test_predict_shows_a_stored_track_under_both_models(demo_runs, capsys):
    from songmix.cli.main import main

    root, first, _ = demo_runs
    db = root / "w.duckdb"
    track_id = _scalar(db, "select track_id from run_tracks where run_id = ? order by position limit 1",
                       first.run_id)
    assert main(["predict", track_id, "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "spotify  cluster" in shown and "aubio    cluster" in shown
    assert main(["predict", "0000000000000000000000", "--db", str(db)]) == 2
    assert "neither a track id" in capsys.readouterr().err


def test_predict_a_new_audio_file_uses_the_aubio_model(demo_runs, capsys):
    from songmix.cli.main import main
    from songmix.sources.demo_audio import render_preview, write_mp3

    root, _, _ = demo_runs
    features = {"danceability": 0.8, "energy": 0.9, "key": 9, "loudness": -5.0, "mode": 0,
                "speechiness": 0.05, "acousticness": 0.02, "instrumentalness": 0.6,
                "liveness": 0.1, "valence": 0.5, "tempo": 126.0}
    song = root / "new-song.mp3"
    write_mp3(render_preview(features, seed=7, duration_s=10.0), song)
    assert main(["predict", str(song), "--db", str(root / "w.duckdb")]) == 0
    shown = capsys.readouterr().out
    assert "aubio    cluster" in shown and "no Spotify features for an audio file" in shown
