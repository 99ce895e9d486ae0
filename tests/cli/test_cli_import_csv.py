"""``songmix import-csv``: a Kaggle-shaped file loads as a csv:<name> run, bad rows land in
rejected_rows, and the Spotify-side clustering is scored against the genre column."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "sources"))
from test_sources_csv import BAD_ROWS, KAGGLE_HEADER, kaggle_rows, write_kaggle_csv  # noqa: E402

from songmix.cli.main import main  # noqa: E402

N_ROWS = 90


def _rows(db: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_import_csv_loads_rejects_and_scores_the_clustering_against_genres(tmp_path, capsys):
    path = tmp_path / "spotify_tracks.csv"
    expected_rejections = write_kaggle_csv(path, n=N_ROWS)
    db = tmp_path / "w.duckdb"
    assert main(["import-csv", str(path), "--name", "kaggle", "--db", str(db), "--ks", "2,3,4",
                 "--seeds", "3", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    [(run_id, status)] = _rows(db, "select run_id, status from runs where source = 'csv:kaggle'")
    assert status == "completed"
    assert _rows(db, "select count(*) from run_tracks where run_id = ?", run_id) == [(N_ROWS - len(BAD_ROWS),)]
    assert _rows(db, "select distinct provider from spotify_features") == [("csv:kaggle",)]
    assert _rows(db, "select count(*) from csv_genres where run_id = ?", run_id) == [(N_ROWS - len(BAD_ROWS),)]
    rejected = dict(_rows(db, "select line_number, reason from rejected_rows where run_id = ?", run_id))
    assert set(rejected) == set(expected_rejections)
    # Three well-separated genres: the EM on the Spotify features should find them.
    [(ari,)] = _rows(db, "select value from comparison where run_id = ? and left_set = 'spotify' "
                         "and right_set = 'truth' and metric = 'ari'", run_id)
    assert ari > 0.8
    assert f"run {run_id} (csv:kaggle): {N_ROWS - len(BAD_ROWS)} tracks clustered" in out and "spotify vs truth" in out
    # Its report asks its own question and shows no section a data set without audio cannot fill.
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.startswith("# How closely does clustering Spotify's features recover the data set's genres?")
    assert "**Spotify's clustering agrees with the data set's genres" in markdown
    assert not any(word in markdown for word in ("Aubio", "demo", "notebook", "Extractor accuracy"))
    assert f"report: {tmp_path / 'out' / 'report.html'}" in out
    assert f"{len(expected_rejections)} rows of the file were rejected" in out


def test_missing_columns_are_one_line_and_nothing_is_loaded(tmp_path, capsys):
    path = tmp_path / "thin.csv"
    path.write_text("id,name,energy\nabc,Song,0.5\n")
    db = tmp_path / "w.duckdb"
    assert main(["import-csv", str(path), "--db", str(db)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "artists" in error and "danceability" in error
    assert not db.exists()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_file_of_200000_empty_rows_keeps_its_rejections_and_fails_in_one_line(tmp_path, capsys):
    path = tmp_path / "empty_rows.csv"
    path.write_text(",".join(KAGGLE_HEADER) + "\n" + ("," * (len(KAGGLE_HEADER) - 1) + "\n") * 200_000)
    db = tmp_path / "w.duckdb"
    assert main(["import-csv", str(path), "--db", str(db), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "holds no row that could be loaded (200000 rejected" in error
    assert _rows(db, "select status from runs") == [("failed",)]
    assert _rows(db, "select count(*) from rejected_rows") == [(200_000,)]


def test_a_latin1_file_is_refused_naming_it_before_anything_starts(tmp_path, capsys):
    rows = kaggle_rows(5)
    rows[2]["track_name"] = "Café Olé"
    path = tmp_path / "latin1.csv"
    pd.DataFrame(rows, columns=KAGGLE_HEADER).to_csv(path, index=False, encoding="latin-1")
    db = tmp_path / "w.duckdb"
    assert main(["import-csv", str(path), "--db", str(db)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(path) in error and "not UTF-8" in error
    assert not db.exists()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_csv_without_a_bad_row_imports_and_run_source_csv_is_the_same_run(tmp_path, capsys):
    path = tmp_path / "clean.csv"
    pd.DataFrame(kaggle_rows(45), columns=KAGGLE_HEADER).to_csv(path, index=False)
    db = tmp_path / "w.duckdb"
    assert main(["import-csv", str(path), "--db", str(db), "--ks", "2,3", "--seeds", "2", "--quiet",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "45 tracks clustered" in out and "rejected" not in out
    assert main(["run", "--source", f"csv:{path}", "--db", str(db), "--ks", "2,3", "--seeds", "2",
                 "--quiet", "--out", str(tmp_path / "out")]) == 0
    runs = _rows(db, "select source, status from runs order by started_at")
    assert runs == [("csv:clean", "completed")] * 2
    assert _rows(db, "select count(*) from rejected_rows") == [(0,)]
    assert _rows(db, "select count(distinct track_id), count(*) from run_tracks") == [(45, 90)]
    assert _rows(db, "select count(*) from run_drift where n_common = 45") == [(1,)]
