"""``songmix run --audio-dir`` (the pipeline on source ``dir:PATH``): a folder of good and bad files is clustered, every bad file is
recorded with a reason or flagged, and truth.csv drives the accuracy and the comparison."""

from __future__ import annotations

import hashlib
import struct

import duckdb
import numpy as np
import pandas as pd
import pytest
import soundfile

from songmix.audio import synthetic
from songmix.audio.accuracy import tempo_accuracy
from songmix.audio.decode import resample
from songmix.audio.features import AUBIO_FEATURE_COLUMNS, UNFIT_FOR_CLUSTERING
from songmix.audio.folder import track_id_of
from songmix.flows.pipeline import pipeline

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

RATE = 22050
SECONDS = 8.0
# Two styles the clustering should find: slow and quiet, fast and loud.
GOOD_SONGS = {
    "slow/a.wav": (84.0, 9, 0, 0.15), "slow/b.flac": (88.0, 2, 0, 0.15),
    "slow/c.ogg": (86.0, 4, 0, 0.15), "slow/d.wav": (90.0, 11, 0, 0.15),
    "fast/a.wav": (150.0, 0, 1, 1.0), "fast/b.flac": (146.0, 7, 1, 1.0),
    "fast/c.mp3": (154.0, 5, 1, 1.0), "fast/d.wav": (148.0, 10, 1, 1.0),
}
# Nine files cannot support 13 variances per component: the conjugate prior keeps them regular.
OPTIONS = dict(ks=[2], n_seeds=2, covariance_type="diag", prior=True)


def _write_two_hour_wav(path) -> None:
    """A 2-hour 8 kHz 16-bit WAV whose data is a sparse run of zeros (no disk, no time)."""
    n_bytes = 2 * 3600 * 8000 * 2
    header = (b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
              + b"data" + struct.pack("<I", n_bytes))
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + n_bytes)


def _write_folder(folder, *, with_truth: bool) -> dict[str, str]:
    """Good songs plus every kind of bad file; returns the bad files' kinds by name."""
    for name, (bpm, key, mode, gain) in GOOD_SONGS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / name, gain * synthetic.song(bpm, key, mode, seconds=SECONDS), RATE)
    song = synthetic.song(120.0, 2, 1, seconds=SECONDS)
    bad = folder / "bad"
    bad.mkdir()
    soundfile.write(bad / "whole.mp3", song, RATE)
    mp3 = (bad / "whole.mp3").read_bytes()
    (bad / "whole.mp3").unlink()
    (bad / "truncated.mp3").write_bytes(mp3[: len(mp3) // 2])
    (bad / "empty.mp3").write_bytes(b"")
    (bad / "text.mp3").write_text("<html>404 not found</html>\n")
    soundfile.write(bad / "silence.wav", np.zeros(int(10 * RATE), dtype=np.float32), RATE)
    soundfile.write(bad / "one_second.wav", song[:RATE], RATE)
    soundfile.write(bad / "low_rate.wav", resample(song, RATE, 8000), 8000)
    soundfile.write(bad / "high_rate.flac", np.stack([resample(song, RATE, 48000)] * 2, axis=1),
                    48000)
    _write_two_hour_wav(bad / "two_hours.wav")
    if with_truth:
        rows = [f"{name},{bpm},{['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'][key]},"
                f"{'major' if mode else 'minor'},{name.split('/')[0]}"
                for name, (bpm, key, mode, _) in GOOD_SONGS.items()]
        rows += ["bad/low_rate.wav,120,D,major,", "bad/high_rate.flac,120,2,1,"]
        (folder / "truth.csv").write_text("file,tempo,key,mode,genre\n" + "\n".join(rows) + "\n")
    return {"truncated.mp3": "truncated", "empty.mp3": "empty_file", "text.mp3": "not_audio"}


@pytest.fixture(scope="module")
def folder_runs(tmp_path_factory):
    # Threads: worker processes are covered by test_flows_executors and the demo pipeline
    # test; here their start-up would only add seconds.
    executor = pytest.MonkeyPatch()
    executor.setenv("SONGMIX_EXECUTOR", "threads")
    root = tmp_path_factory.mktemp("audio-dir")
    with_truth, without_truth = root / "music", root / "plain"
    with_truth.mkdir(), without_truth.mkdir()
    failing = _write_folder(with_truth, with_truth=True)
    for name in ("fast/a.wav", "slow/a.wav"):
        (without_truth / name).parent.mkdir(parents=True, exist_ok=True)
        (without_truth / name).write_bytes((with_truth / name).read_bytes())
    db = root / "w.duckdb"
    try:
        first = pipeline(f"dir:{with_truth}", db_path=db, out_dir=root / "out", **OPTIONS)
        second = pipeline(f"dir:{without_truth}", db_path=db, out_dir=root / "out2", **OPTIONS)
    finally:
        executor.undo()
    return db, with_truth, failing, first, second


def _id(folder, name: str) -> str:
    return track_id_of(folder / name)


def _frame(db, sql, *params) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute(sql, list(params)).df()


def test_every_file_is_stored_and_the_run_completes(folder_runs):
    db, folder, _, first, _ = folder_runs
    files = _frame(db, "select track_id, status from audio_files where run_id = ?", first.run_id)
    assert len(files) == len(GOOD_SONGS) + 8
    assert set(files["status"]) == {"ok"}
    assert _frame(db, "select status from runs where run_id = ?", first.run_id).iloc[0, 0] == "completed"
    assert _frame(db, "select source from runs where run_id = ?", first.run_id).iloc[0, 0] == "audio-dir"


def test_undecodable_files_are_recorded_with_their_reason(folder_runs):
    db, folder, failing, first, _ = folder_runs
    reasons = _frame(db, "select item_id, reason from item_failures where run_id = ? and "
                     "stage = 'extraction'", first.run_id).set_index("item_id")["reason"]
    for name, reason in failing.items():
        assert reasons[hashlib.sha256((folder / "bad" / name).read_bytes()).hexdigest()].startswith(reason)
    assert len(reasons) == len(failing)


def test_every_analysed_file_has_finite_features_and_flags_say_why(folder_runs):
    db, folder, _, first, _ = folder_runs
    features = _frame(db, "select a.track_id, x.* from audio_files a join aubio_features x "
                      "using (sha256) where a.run_id = ?", first.run_id).set_index("track_id")
    assert np.isfinite(features[list(AUBIO_FEATURE_COLUMNS)].to_numpy(dtype=float)).all()
    assert {"capped", "silent"} <= set(features.loc[_id(folder, "bad/two_hours.wav"), "flags"].split(","))
    assert "silent" in features.loc[_id(folder, "bad/silence.wav"), "flags"]
    # 8 kHz and 48 kHz stereo files of one 120 BPM song: a tempo on its beat grid
    resampled = features.loc[[_id(folder, "bad/low_rate.wav"), _id(folder, "bad/high_rate.flac")],
                             "tempo"]
    assert tempo_accuracy(resampled.to_numpy(), np.full(2, 120.0)).acc2 == 1.0


def test_files_without_a_tempo_are_left_out_of_the_fit_with_a_reason(folder_runs):
    db, folder, _, first, _ = folder_runs
    left_out = _frame(db, "select item_id, reason from item_failures where run_id = ? and "
                      "stage = 'fit'", first.run_id).set_index("item_id")["reason"]
    assert {_id(folder, "bad/silence.wav"), _id(folder, "bad/two_hours.wav")} <= set(left_out.index)
    assert set(left_out) == {UNFIT_FOR_CLUSTERING}
    fitted = set(_frame(db, "select track_id from gmm_assignments where run_id = ?",
                        first.run_id)["track_id"])
    assert fitted.isdisjoint(left_out.index)
    assert {_id(folder, name) for name in GOOD_SONGS} <= fitted


def test_truth_csv_gives_accuracy_and_a_comparison(folder_runs):
    db, _, _, first, _ = folder_runs
    accuracy = _frame(db, "select metric, value, n_tracks from extractor_accuracy where run_id = ?",
                      first.run_id).set_index("metric")
    assert set(accuracy.index) == {"tempo_acc1", "tempo_acc2", "key_weighted_score",
                                   "plain_aubio_tempo_acc1", "plain_aubio_tempo_acc2"}
    assert (accuracy["n_tracks"] == len(GOOD_SONGS) + 2).all()
    assert accuracy.loc["tempo_acc2", "value"] >= accuracy.loc["tempo_acc1", "value"]
    assert accuracy.loc["tempo_acc2", "value"] >= 0.8
    assert accuracy.loc["key_weighted_score", "value"] >= 0.8
    assert accuracy.loc["plain_aubio_tempo_acc2", "value"] >= accuracy.loc[
        "plain_aubio_tempo_acc1", "value"] > 0
    assert first.extractor_accuracy == pytest.approx(accuracy["value"].to_dict())
    comparison = _frame(db, "select left_set, right_set, n_tracks from comparison where run_id = ? "
                        "and metric = 'ari'", first.run_id)
    assert comparison[["left_set", "right_set"]].values.tolist() == [["aubio", "truth"]]
    assert comparison["n_tracks"].iloc[0] == len(GOOD_SONGS)


def test_without_truth_the_comparison_is_skipped(folder_runs):
    db, _, _, _, second = folder_runs
    assert second.agreement == {}
    assert _frame(db, "select count(*) from comparison where run_id = ?", second.run_id).iloc[0, 0] == 0
    assert _frame(db, "select count(*) from extractor_accuracy where run_id = ?",
                  second.run_id).iloc[0, 0] == 0
    assert second.chosen_k == {"aubio": 2}


def test_the_report_answers_the_folders_question_without_spotify_sections(folder_runs):
    _, _, _, first, second = folder_runs
    assert "truth.csv's groups" in first.headline and not first.headline.startswith("No answer")
    markdown = first.report.with_suffix(".md").read_text()
    assert markdown.startswith("# How closely does clustering the files' Aubio features recover truth.csv's groups?")
    assert "## Extractor accuracy against truth.csv's groups" in markdown and "## Model selection" in markdown
    assert not any(word in markdown for word in ("Spotify", "demo", "notebook"))
    assert second.headline.startswith("No answer for this run: Aubio's clustering was not compared with "
                                      "truth.csv's groups (the folder has no truth.csv")
    assert "report: " in second.as_text() and "No comparison" not in second.as_text()
