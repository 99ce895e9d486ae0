"""Bad input to the CLI: one clear line on stderr, non-zero exit, no traceback, and the
warehouse exactly as before."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
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


def _exit_status(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exited:  # argparse refused an argument
        return exited.code


def _fails_cleanly(capsys, argv, *, match):
    assert _exit_status(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("songmix: error:") and match in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("arguments, message", [
    (["--tracks", "0"], "--tracks"),
    (["--tracks", "1e9"], "--tracks must be a whole number from 1 to 10000"),
    (["--k", "0"], "--k"),
    (["--k", "500"], "--k must be a whole number from 1 to 100 (got 500)"),
    (["--tracks", "20", "--k", "21"], "--k 21 is more clusters than there are tracks (20)"),
    (["--ks", "10-2"], "--ks 10-2 goes down; write the smaller k first: 2-10"),
    (["--ks", "2,4,-8"], "every k of --ks must be a whole number from 1 to 100 (got -8)"),
    (["--ks", "two-ten"], "--ks takes a range like 2-10 or a list like 2,4,8"),
    (["--seeds", "0"], "--seeds"),
    (["--seeds", "100000"], "--seeds must be a whole number from 1 to 100"),
    (["--demo-groups", "9"], "--demo-groups"),
    (["--spotify-features", "energy,loudnes"], "unknown spotify features ['loudnes']; choose from danceability"),
    (["--aubio-features", "tempo"], "the aubio model needs at least two features"),
    (["--year", "-1"], "--year must be a whole number from 1900"),
    (["--audio-dir", ".", "--k", "0"], "--k must be a whole number from 1 to 100"),
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


@pytest.mark.parametrize("arguments", [["--k", "500"], ["--ks", "0-4"], ["--seeds", "-1"]])
def test_import_csv_refuses_impossible_fits_before_reading_the_file(capsys, tmp_path, arguments):
    data = tmp_path / "clean.csv"
    data.write_text("track_id,track_name,artists\n")  # never read: the arguments stop it first
    database = tmp_path / "w.duckdb"
    _fails_cleanly(capsys, ["import-csv", str(data), "--db", str(database), *arguments], match="must be")
    assert not database.exists()


def test_a_huge_k_range_is_refused_at_once_without_building_it(tmp_path):
    """``--ks 2-30000000`` once built a 30-million-element list (2.8 GB) before any check."""
    limit_memory = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
                    "from songmix.cli.main import main; sys.exit(main(sys.argv[1:]))")
    finished = subprocess.run(
        [sys.executable, "-c", limit_memory, "run", "--ks", "2-30000000", "--db", str(tmp_path / "w.duckdb")],
        capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    assert finished.stderr.startswith("songmix: error: every k of --ks") and finished.stderr.count("\n") == 1
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.parametrize("command", [["run"], ["run", "--audio-dir", "."], ["report"]])
@pytest.mark.parametrize("inside", [False, True])
def test_an_out_folder_that_is_a_file_is_refused_before_anything_runs(capsys, tmp_path, command, inside):
    existing = tmp_path / "plots.png"
    existing.write_bytes(b"keep me")
    out = existing / "sub" if inside else existing
    database = tmp_path / "w.duckdb"
    _fails_cleanly(capsys, [*command, "--db", str(database), "--out", str(out)], match="is a file")
    assert existing.read_bytes() == b"keep me" and not database.exists()


def test_a_full_disk_is_one_line_naming_the_file(capsys, warehouse_path, tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "report.html"))

    monkeypatch.setattr("songmix.cli.report.write_report", full_disk)
    _fails_cleanly(capsys, ["report", "--db", str(warehouse_path), "--out", str(tmp_path / "out")],
                   match=f"No space left on device: {tmp_path / 'out' / 'report.html'}")
