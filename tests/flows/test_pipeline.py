"""End to end on a small demo: tables fill and add up, clusterings recover the demo groups,
and a second run downloads and extracts nothing again."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import numpy as np
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
    # every (covariance type, k) considered; of the chosen type, one row per (feature set, k,
    # seed) and per (feature set, k, track)
    assert _scalar(db, "select count(*) from model_selection where run_id = ?", first.run_id) == 2 * 4 * 3
    fitted = _scalar(db, "select count(*) from model_selection s join (select distinct feature_set, "
                         "covariance_type from gmm_models where run_id = ?) using (feature_set, covariance_type) "
                         "where s.run_id = ? and s.status = 'fitted'", first.run_id, first.run_id)
    assert fitted >= 2
    assert _scalar(db, "select count(*) from gmm_fits where run_id = ?", first.run_id) == fitted * 4
    assert _scalar(db, "select count(*) from gmm_assignments where run_id = ?", first.run_id) == fitted * N_TRACKS
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
    assert _scalar(db, "select sum(n_tracks) from contingency where run_id = ? and left_set = 'spotify' "
                       "and right_set = 'aubio'", first.run_id) == N_TRACKS
    # The chosen model is the pair of lowest BIC, and gmm_models holds it.
    assert _scalar(db, "select count(*) from (select feature_set, arg_min((covariance_type, k), bic) as best "
                       "from model_selection where run_id = ? and status = 'fitted' group by all) b "
                       "join gmm_models m on m.feature_set = b.feature_set and m.run_id = ? and m.chosen "
                       "and (m.covariance_type, m.k) = b.best", first.run_id, first.run_id) == 2
    assert _scalar(db, "select count(*) from comparison where run_id = ?", first.run_id) > 0
    assert _scalar(db, "select status from runs where run_id = ?", first.run_id) == "completed"


def test_the_summary_of_a_demo_run_says_its_audio_is_synthesised(demo_runs):
    _, first, _ = demo_runs
    assert DEMO_AUDIO_CAVEAT in first.notes
    lines = first.as_text().splitlines()
    # the run line, the answer, then at once what the answer can mean
    assert lines[1] == first.headline and "synthesised from its own features" in lines[2]


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


def test_each_demo_preview_is_stored_once(demo_runs):
    """The rendered preview and its download are one file: the download finds its bytes cached."""
    root, first, _ = demo_runs
    with duckdb.connect(str(root / "w.duckdb"), read_only=True) as connection:
        downloaded = [Path(path) for (path,) in connection.execute(
            "select path from audio_files where status = 'ok'").fetchall()]
    rendered = list((root / "data" / "demo-previews").rglob("*.mp3"))
    assert len(downloaded) == len(rendered) == N_TRACKS
    assert {path.stat().st_ino for path in downloaded} == {path.stat().st_ino for path in rendered}


def test_the_run_writes_its_report_with_plots(demo_runs):
    root, first, _ = demo_runs
    assert first.report == root / "out" / "report.html" and first.report.is_file()
    assert first.headline in (root / "out" / "report.md").read_text()
    plots = sorted((root / "out" / "report-plots").glob("*.png"))
    assert len(plots) == 6 and all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in plots)


def test_a_second_run_on_the_same_results_takes_its_figures_from_the_cache(demo_runs, latest_task_run_states):
    _, first, second = demo_runs
    assert latest_task_run_states("render-plots", 2) == ["Cached", "Completed"]
    assert second.report.is_file()


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
    assert "aubio    cluster" in shown and "an audio file has no Spotify features" in shown


# -- predict knows its model ----------------------------------------------------------------


def _predict(db, *arguments, capsys) -> str:
    from songmix.cli.main import main

    assert main(["predict", *map(str, arguments), "--db", str(db)]) == 0
    return capsys.readouterr().out


def test_predict_names_the_run_it_uses_and_takes_another_with_run(demo_runs, capsys):
    root, first, second = demo_runs
    db = root / "w.duckdb"
    track_id = _scalar(db, "select track_id from run_tracks where run_id = ? order by position limit 1",
                       first.run_id)
    shown = _predict(db, track_id, capsys=capsys)
    assert f"models of run {second.run_id} (source demo, started " in shown
    assert "the latest completed run with models, choose another with --run" in shown
    shown = _predict(db, track_id, "--run", first.run_id, capsys=capsys)
    assert f"models of run {first.run_id} (source demo" in shown and "choose another" not in shown
    assert "extractor flags: none" in shown


def test_predict_refuses_features_of_another_extractor_version(demo_runs, tmp_path, capsys):
    root, _, second = demo_runs
    db = tmp_path / "older-model.duckdb"
    db.write_bytes((root / "w.duckdb").read_bytes())
    with duckdb.connect(str(db)) as connection:
        connection.execute("update gmm_models set feature_version = 'songmix-audio-0' "
                           "where run_id = ? and feature_set = 'aubio'", [second.run_id])
    song = root / "silence-free.wav"
    _write_wav(song, _clicks(bpm=120.0))
    shown = _predict(db, song, capsys=capsys)
    assert ("aubio    no cluster: the model was fitted on features of extractor songmix-audio-0, the "
            "song's come from songmix-audio-") in shown
    assert "aubio    cluster" not in shown


def test_a_silent_file_gets_no_cluster_and_its_flags_are_shown(demo_runs, tmp_path, capsys):
    root, _, _ = demo_runs
    song = tmp_path / "silence.wav"
    _write_wav(song, np.zeros(22050 * 5))
    shown = _predict(root / "w.duckdb", song, capsys=capsys)
    assert "extractor flags: silent, no_beat" in shown
    assert "aubio    no cluster: " in shown and "the model was fitted without such clips" in shown
    assert "aubio    cluster" not in shown


def test_a_song_unlike_every_training_track_is_flagged(demo_runs, tmp_path, capsys):
    root, _, _ = demo_runs
    from songmix.audio import synthetic

    song = tmp_path / "drums.wav"
    # Loud drums and chords at 200 BPM: nothing like the demo's rendered previews.
    _write_wav(song, 0.9 * synthetic.song(200.0, 3, 0, seconds=10.0) / 0.5)
    shown = _predict(root / "w.duckdb", song, capsys=capsys)
    assert "aubio    cluster" in shown, shown
    assert re.search(r"warning: aubio: unlike every track the model was fitted on \(log-density "
                     r"-?[\d.]+, below -?[\d.]+, the 1st percentile of its 60 tracks\)", shown)
    familiar = _scalar(root / "w.duckdb", "select track_id from run_tracks order by position limit 1")
    assert "unlike every track" not in _predict(root / "w.duckdb", familiar, capsys=capsys)


def _clicks(*, bpm: float, seconds: float = 8.0, rate: int = 22050) -> np.ndarray:
    samples = np.zeros(int(seconds * rate))
    for start in np.arange(0, len(samples) - 200, int(rate * 60 / bpm)):
        samples[start:start + 200] = np.hanning(200) * 0.8
    return samples


def _write_wav(path, samples: np.ndarray, rate: int = 22050) -> None:
    import soundfile

    soundfile.write(str(path), samples, rate, subtype="PCM_16")


def test_runs_lists_each_run_with_its_models_and_warnings(demo_runs, capsys):
    from songmix.cli.main import main

    root, first, second = demo_runs
    db = root / "w.duckdb"
    assert main(["runs", "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert shown.index(second.run_id) < shown.index(first.run_id)  # newest first
    models = _scalar(db, "select string_agg(feature_set || ' k=' || k || ' ' || covariance_type, ', ' "
                         "order by feature_set desc) from gmm_models where run_id = ? and chosen", first.run_id)
    assert all(model in shown for model in models.split(", "))
    stored = _scalar(db, "select warnings from runs where run_id = ?", first.run_id)
    assert list(stored) == [f"{name}: {warning}" for name, warnings in sorted(first.warnings.items())
                            for warning in warnings]
    assert all(f"    warning: {warning}" in shown for warning in stored)
