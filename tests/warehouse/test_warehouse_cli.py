"""The warehouse commands: export round-trips, refusals, and bad --db files left untouched."""

from __future__ import annotations

import re

import duckdb
import pandas as pd
import pytest

from songmix.cli.main import main
from songmix.warehouse.store import Warehouse


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "w.duckdb"
    Warehouse(path).write({
        "tracks": pd.DataFrame({"track_id": ["a", "b", "c"], "name": "n", "artists": "x", "run_id": "r1"}),
        "gmm_assignments": pd.DataFrame({
            "run_id": "r1", "feature_set": "aubio", "k": 2, "track_id": ["a", "b"], "cluster": [0, 1],
            "probability": [0.6, 0.7]}),
        "gmm_memberships": pd.DataFrame({
            "run_id": "r1", "feature_set": "aubio", "k": 2, "track_id": ["a", "b"],
            "probabilities": [[0.6, 0.4], [0.3, 0.7]]}),
    })
    return path


def _counts(path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as connection:
        names = [n for (n,) in connection.execute(
            "select table_name from duckdb_tables() union all "
            "select view_name from duckdb_views() where not internal").fetchall()]
        return {n: connection.execute(f'select count(*) from "{n}"').fetchone()[0] for n in names}


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_export_writes_every_table_and_view_with_all_rows(warehouse_path, tmp_path, capsys, file_format):
    before = warehouse_path.read_bytes()
    out = tmp_path / "export"
    assert main(["export", str(out), "--format", file_format, "--db", str(warehouse_path)]) == 0
    reader = {"parquet": "read_parquet", "csv": "read_csv_auto"}[file_format]
    expected = _counts(warehouse_path)
    exported = {}
    with duckdb.connect() as connection:
        for name in expected:
            # a CSV of an empty table is a header alone: no rows to read back
            exported[name] = connection.execute(f"select count(*) from {reader}(?)",
                                                [str(out / f"{name}.{file_format}")]).fetchone()[0]
    assert exported == expected
    assert expected["tracks"] == 3 and expected["gmm_assignments"] == 2
    assert warehouse_path.read_bytes() == before
    assert f"tracks.{file_format}" in capsys.readouterr().out


def test_exported_lists_keep_their_values(warehouse_path, tmp_path):
    main(["export", str(tmp_path), "--db", str(warehouse_path)])
    with duckdb.connect() as connection:
        rows = connection.execute("select track_id, probabilities from read_parquet(?) order by 1",
                                  [str(tmp_path / "gmm_memberships.parquet")]).fetchall()
    assert rows == [("a", [0.6, 0.4]), ("b", [0.3, 0.7])]


def test_export_into_a_file_is_refused(warehouse_path, tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    assert main(["export", str(target), "--db", str(warehouse_path)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("statement", [
    "delete from tracks", "copy tracks to 'x.csv'", "attach ':memory:' as m",
    "select 1 as \"'\"; copy (select 'x') to '{db}'; select 1 as \"'\""])
def test_sql_refuses_writes_in_one_line_and_leaves_the_file_unchanged(warehouse_path, capsys, statement):
    before = warehouse_path.read_bytes()
    assert main(["sql", statement.format(db=warehouse_path), "--db", str(warehouse_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("songmix: error: songmix sql is read-only") and error.count("\n") == 1
    assert warehouse_path.read_bytes() == before


def _corrupted_copy(source, target):
    """A DuckDB file whose header is intact but whose blocks are garbage."""
    data = bytearray(source.read_bytes())
    for position in range(4096, len(data), 7):
        data[position] ^= 0xFF
    target.write_bytes(bytes(data))
    return bytes(data)


@pytest.mark.parametrize("command", [["sql", "select count(*) from tracks"], ["schema"], ["export", "OUT"]])
@pytest.mark.parametrize("damage", ["text", "corrupt"])
def test_a_bad_db_file_is_a_clear_error_and_left_untouched(warehouse_path, tmp_path, capsys, command, damage):
    path = tmp_path / "bad.duckdb"
    if damage == "text":
        content = b"name,artist\nsong,someone\n" * 40
        path.write_bytes(content)
        expected = "not a DuckDB database"
    else:
        content = _corrupted_copy(warehouse_path, path)
        expected = "[Cc]orrupt"
    argv = [str(tmp_path / "out") if part == "OUT" else part for part in command]
    assert main([*argv, "--db", str(path)]) == 2
    error = capsys.readouterr().err
    assert re.search(expected, error), error
    assert "Traceback" not in error
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.duckdb"]  # no WAL, no export folder


def test_csv_export_prefixes_text_cells_a_spreadsheet_would_run_as_formulas(tmp_path):
    names = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain", "it's = fine"]
    path = tmp_path / "w.duckdb"
    Warehouse(path).write({"tracks": pd.DataFrame({
        "track_id": [f"t{i}" for i in range(len(names))], "name": names, "artists": "x", "run_id": "r1",
        "duration_ms": -5})})
    assert main(["export", str(tmp_path / "out"), "--format", "csv", "--db", str(path)]) == 0
    exported = pd.read_csv(tmp_path / "out" / "tracks.csv", dtype=str, keep_default_na=False)
    assert exported.sort_values("track_id")["name"].tolist() == [
        "'=cmd|' /C calc'!A0", "'+1+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "plain", "it's = fine"]
    assert set(exported["duration_ms"]) == {"-5"}  # numbers are not text: left as they are
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "w.duckdb"]
