"""The writer: schema on open, idempotent replacing writes, whole-or-nothing stages."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from songmix.warehouse.connection import WarehouseError, schema_version_of_code
from songmix.warehouse.store import Warehouse


def _tracks(*ids: str, run_id: str = "r1") -> pd.DataFrame:
    return pd.DataFrame({"track_id": list(ids), "name": [f"song {i}" for i in ids],
                         "artists": "someone", "run_id": run_id})


def test_opening_creates_every_table_at_the_current_schema_version(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path)
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = {name for (name,) in connection.execute("select table_name from duckdb_tables()").fetchall()}
        version = connection.execute("select max(version) from schema_version").fetchone()[0]
    assert {"runs", "tracks", "spotify_features", "audio_files", "aubio_features", "gmm_fits",
            "gmm_components", "gmm_assignments", "comparison", "contingency", "search_pages"} <= tables
    assert version == schema_version_of_code()


def test_reopening_applies_nothing_twice(tmp_path):
    path = tmp_path / "w.duckdb"
    applied = "select version, applied_at from schema_version order by 1"
    Warehouse(path)
    with duckdb.connect(str(path), read_only=True) as connection:
        first = connection.execute(applied).fetchall()
    Warehouse(path)
    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.execute(applied).fetchall() == first
    assert first[-1][0] == schema_version_of_code()


def test_rewriting_the_same_keys_replaces_rows_instead_of_duplicating(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.write({"tracks": _tracks("a", "b")})
    warehouse.write({"tracks": _tracks("b", "c", run_id="r2")})
    with warehouse.reading() as connection:
        rows = connection.execute("select track_id, run_id from tracks order by 1").fetchall()
    assert rows == [("a", "r1"), ("b", "r2"), ("c", "r2")]


def test_a_failing_stage_leaves_no_partial_rows(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    bad_runs = pd.DataFrame({"run_id": ["x"], "source": ["demo"], "parameters": ["{}"],
                             "code_version": ["0"], "started_at": [pd.Timestamp.now()],
                             "status": ["not-a-status"]})
    with pytest.raises(WarehouseError, match="runs"):
        warehouse.write({"tracks": _tracks("a"), "runs": bad_runs})
    with warehouse.reading() as connection:
        assert connection.execute("select count(*) from tracks").fetchone()[0] == 0


def test_unknown_tables_columns_and_duplicate_keys_are_refused(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(WarehouseError, match="unknown table"):
        warehouse.write({"tracks; drop table runs": _tracks("a")})
    with pytest.raises(WarehouseError, match="no columns"):
        warehouse.write({"tracks": _tracks("a").assign(colour="red")})
    with pytest.raises(WarehouseError, match="tracks.*[Dd]uplicate key"):
        warehouse.write({"tracks": _tracks("a", "a")})


def test_runs_record_status_and_counts(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.start_run("r1", source="demo", parameters={"n_tracks": 2}, code_version="0", flow_run_id=None)
    warehouse.write({"tracks": _tracks("a", "b")})
    warehouse.finish_run("r1", status="completed", counts=warehouse.table_counts("r1"))
    with warehouse.reading() as connection:
        status, counts = connection.execute("select status, counts from runs").fetchone()
    assert status == "completed"
    assert '"tracks": 2' in counts


def test_a_non_duckdb_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.duckdb"
    content = b"hello, I am a text file\n" * 10
    path.write_bytes(content)
    with pytest.raises(WarehouseError, match="not a DuckDB database"):
        Warehouse(path)
    assert path.read_bytes() == content


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(WarehouseError, match="does not exist"):
        Warehouse(tmp_path / "missing" / "w.duckdb")
    assert not (tmp_path / "missing").exists()


def test_a_file_from_a_newer_songmix_is_refused_before_anything_in_it_changes(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path)
    with duckdb.connect(str(path)) as connection:
        connection.execute("insert into schema_version values (999, 'future', current_timestamp)")
        # a newer songmix may document its tables differently: this file must keep its words
        connection.execute("comment on table schema_version is 'written by songmix 9'")
    before = path.read_bytes()
    with pytest.raises(WarehouseError, match="upgrade songmix"):
        Warehouse(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb"]


def test_migrations_007_and_008_keep_every_assignment_and_vector_of_an_older_file(tmp_path):
    from songmix.warehouse.connection import migrations

    path = tmp_path / "v6.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                           "applied_at TIMESTAMP NOT NULL)")
        for version, name, sql in migrations():
            if version < 7:
                connection.execute(sql)
                connection.execute("INSERT INTO schema_version VALUES (?, ?, current_timestamp)", [version, name])
        connection.execute("INSERT INTO gmm_assignments VALUES ('r1', 'spotify', 2, 'a', 1, 0.8, [0.2, 0.8]), "
                           "('r1', 'spotify', 3, 'a', 0, 0.5, [0.5, 0.3, 0.2])")
    Warehouse(path)
    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.execute("select * from gmm_assignments order by k").fetchall() == [
            ("r1", "spotify", 2, "a", 1, 0.8), ("r1", "spotify", 3, "a", 0, 0.5)]
        assert connection.execute("select * from gmm_memberships order by k").fetchall() == [
            ("r1", "spotify", 2, "a", [0.2, 0.8]), ("r1", "spotify", 3, "a", [0.5, 0.3, 0.2])]
        assert connection.execute("select count(*) from duckdb_constraints() where table_name = 'gmm_assignments' "
                                  "and constraint_type = 'PRIMARY KEY'").fetchone() == (0,)
        assert connection.execute("select count(*) from track_clusters").fetchone() == (0,)
        assert connection.execute("select comment from duckdb_columns() where table_name = 'gmm_memberships' "
                                  "and column_name = 'probabilities'").fetchone()[0].startswith("Membership")


FULL_DISK = """
import os, resource, signal, sys
import pandas as pd
from songmix.warehouse.connection import WarehouseError
from songmix.warehouse.store import Warehouse

warehouse = Warehouse(sys.argv[1])
# No file may grow past its size plus a little: a write beyond fails (EFBIG), as on a full disk.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = os.path.getsize(sys.argv[1]) + 256 * 1024
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
ids = [f"track-{i:07d}" for i in range(200_000)]
try:
    with warehouse.recording_run("r1", source="demo", parameters={}, flow_run_id=None):
        warehouse.write({"tracks": pd.DataFrame({"track_id": ids, "name": "a song title " * 4,
                                                 "artists": "someone", "run_id": "r1"})})
except WarehouseError as error:
    print(error)
"""


def _ended_by(script: str, path) -> tuple[str, str, str | None, int]:
    """Run ``script`` on the warehouse ``path`` in a process of its own, which must end cleanly
    printing one line; then start the next run. Returns that line, run r1's status and error
    after it, and the tracks stored."""
    finished = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                              text=True, timeout=120)
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert finished.stdout.count("\n") == 1
    warehouse = Warehouse(path)  # still a sound file
    warehouse.start_run("r2", source="demo", parameters={}, code_version="test", flow_run_id=None)
    with duckdb.connect(str(path), read_only=True) as connection:
        [(status, error)] = connection.execute("select status, error from runs where run_id = 'r1'").fetchall()
        [(n_tracks,)] = connection.execute("select count(*) from tracks").fetchall()
    return finished.stdout, status, error, n_tracks


def test_a_full_disk_ends_the_run_in_one_line_and_the_run_is_not_left_running(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path)
    printed, status, _, n_tracks = _ended_by(FULL_DISK, path)
    assert printed.startswith("could not write") and status == "failed"
    assert n_tracks == 0  # nothing of the failed step


NO_WRITE_AT_ALL = """
import sys
from songmix.warehouse.connection import WarehouseError
from songmix.warehouse.store import Warehouse

warehouse = Warehouse(sys.argv[1])
full = WarehouseError("could not write the warehouse (No space left on device)")
try:
    with warehouse.recording_run("r1", source="demo", parameters={}, flow_run_id=None):
        def no_space(*args, **kwargs):
            raise full
        warehouse.finish_run = no_space  # from here on the disk takes nothing, not even the status
        raise full
except WarehouseError as error:
    print(error)
"""


def test_a_run_that_cannot_even_be_marked_failed_says_so_and_the_next_run_marks_it(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path)
    printed, status, error, _ = _ended_by(NO_WRITE_AT_ALL, path)
    assert "could not be marked failed either, so the next run marks it failed" in printed
    assert status == "failed" and error.startswith("interrupted")


def test_a_failed_run_stores_a_bounded_error_and_records_it_in_seconds(tmp_path):
    """A run ending in an error the size of a million track ids (the parameters of issue 15's
    422) records the first 2 KB of it, quickly."""
    import time

    from songmix.warehouse.store import MAX_ERROR_CHARS

    warehouse = Warehouse(tmp_path / "w.duckdb")
    huge = "parameters must be less than 524,288 bytes: " + ",".join(f"{i:022d}" for i in range(200_000))
    started = time.monotonic()
    with pytest.raises(ValueError):
        with warehouse.recording_run("r1", source="csv:big", parameters={}, flow_run_id=None):
            raise ValueError(huge)
    assert time.monotonic() - started < 5
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        status, error = connection.execute("select status, error from runs").fetchone()
    assert status == "failed" and len(error) <= MAX_ERROR_CHARS
    assert error.startswith("ValueError: parameters must be less than") and error.endswith("(cut short)")


def test_a_stopped_run_is_recorded_even_when_the_stop_interrupts_the_recording(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM interrupts the DuckDB statement in flight once, from another thread;
    under load that statement can be the one recording the run's end."""
    warehouse = Warehouse(tmp_path / "w.duckdb")
    counted = Warehouse.table_counts
    calls = []

    def interrupted_once(self, run_id):
        calls.append(run_id)
        if len(calls) == 1:
            raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
        return counted(self, run_id)

    monkeypatch.setattr(Warehouse, "table_counts", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        with warehouse.recording_run("r1", source="demo", parameters={}, flow_run_id=None):
            raise KeyboardInterrupt("stopped by signal SIGTERM")
    assert len(calls) == 2
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        status, error = connection.execute("select status, error from runs").fetchone()
    assert status == "failed" and error.startswith("interrupted: stopped by Ctrl-C or SIGTERM")


@pytest.mark.parametrize("stop", [KeyboardInterrupt("stopped by signal SIGTERM"),
                                  duckdb.InterruptException("INTERRUPT Error: Interrupted!")])
def test_a_stop_is_described_as_one_whatever_raised_it(stop):
    from songmix.warehouse.store import describe_error

    assert describe_error(stop).startswith("interrupted: stopped by Ctrl-C or SIGTERM")


def test_a_reader_holding_the_file_pauses_the_writer_instead_of_failing_it(tmp_path):
    """Another process reading for longer than the old 10 s limit: the write waits and lands."""
    import time

    warehouse = Warehouse(tmp_path / "w.duckdb")
    reader = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print('open', flush=True); time.sleep(12)", str(warehouse.path)],
        stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "open"
    started = time.monotonic()
    warehouse.write({"tracks": pd.DataFrame({"track_id": ["a"], "name": "n", "artists": "x", "run_id": "r"})})
    waited = time.monotonic() - started
    reader.wait(30)
    assert waited > 10, "the write waited for the reader, past the old 10 s limit"
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        assert connection.execute("select count(*) from tracks").fetchone() == (1,)
