"""Bad input to the CLI: one clear line on stderr, non-zero exit, no traceback, and the
warehouse exactly as before."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from songmix.cli.main import main
from songmix.warehouse.store import Warehouse


@pytest.fixture
def warehouse_path(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path).write({"tracks": pd.DataFrame(
        {"track_id": ["t1"], "name": ["a song"], "artists": "someone", "run_id": "r1"})})
    return path


def _fails_cleanly(capsys, argv, *, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("songmix: error:") and match in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("arguments, message", [
    (["--tracks", "0"], "--tracks"),
    (["--k", "0"], "--k"),
    (["--tracks", "20", "--k", "21"], "--k"),
    (["--seeds", "0"], "--seeds"),
    (["--demo-groups", "9"], "--demo-groups"),
    (["--spotify-features", "energy,loudnes"], "unknown spotify features ['loudnes']; choose from danceability"),
    (["--aubio-features", "tempo"], "the aubio model needs at least two features"),
])
def test_impossible_run_parameters_are_refused_before_anything_is_written(
        capsys, warehouse_path, arguments, message):
    before = warehouse_path.read_bytes()
    _fails_cleanly(capsys, ["run", "--db", str(warehouse_path), *arguments], match=message)
    assert warehouse_path.read_bytes() == before


def test_a_db_in_a_missing_folder_is_refused(capsys, tmp_path):
    _fails_cleanly(capsys, ["run", "--db", str(tmp_path / "nope" / "w.duckdb")], match="does not exist")
    assert not (tmp_path / "nope").exists()


def test_a_db_in_a_read_only_folder_is_refused(capsys, tmp_path):
    if os.geteuid() == 0:
        folder = Path("/sys")  # read-only even for root
    else:
        folder = tmp_path / "locked"
        folder.mkdir(mode=0o500)
    _fails_cleanly(capsys, ["run", "--db", str(folder / "w.duckdb")], match="not writable")


def test_a_file_that_is_not_a_warehouse_is_refused_and_untouched(capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my shopping list\n" * 20)
    for command in (["run"], ["sql", "select 1"], ["schema"], ["predict", "t1"]):
        _fails_cleanly(capsys, [*command, "--db", str(notes)], match="not a DuckDB database")
    assert notes.read_text() == "my shopping list\n" * 20


def test_predict_an_unknown_track_or_unreadable_file(capsys, warehouse_path, tmp_path):
    _fails_cleanly(capsys, ["predict", "t1", "--db", str(warehouse_path)], match="songmix run")
    fake_audio = tmp_path / "song.mp3"
    fake_audio.write_text("not audio at all")
    before = warehouse_path.read_bytes()
    _fails_cleanly(capsys, ["predict", str(fake_audio), "--db", str(warehouse_path)], match="")
    assert warehouse_path.read_bytes() == before


def test_sql_refuses_writes_with_one_line(capsys, warehouse_path):
    _fails_cleanly(capsys, ["sql", "drop table tracks", "--db", str(warehouse_path)], match="read-only")
