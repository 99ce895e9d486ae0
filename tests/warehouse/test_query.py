"""Readers: read-only SQL enforced by DuckDB itself, that waits out a writer; the documented schema.

The bypasses below each got past the old text check of the statement (quotes, dollar quoting,
comments inside strings, escape strings, newlines, several statements) or needed no trick at
all (a single SELECT reading another file or a URL). DuckDB must refuse every one of them, with
one line saying songmix sql is read-only, and leave the warehouse and its folder as they were.
"""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pandas as pd
import pytest

from songmix.warehouse.connection import WarehouseError, connect
from songmix.warehouse.query import describe_schema, run_query
from songmix.warehouse.store import Warehouse


@pytest.fixture
def warehouse_path(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path).write({"tracks": pd.DataFrame(
        {"track_id": ["a", "b"], "name": ["x", "y"], "artists": "z", "run_id": "r1"})})
    return path


def test_a_select_returns_its_rows(warehouse_path):
    assert run_query(warehouse_path, "select count(*) as n from tracks")["n"].item() == 2


#: Each: a statement refused today by DuckDB; {db} is the warehouse, {dir} its folder.
BYPASSES = {
    # the issue's own: a quote inside a quoted name hid the COPY that overwrote the warehouse
    "quoted name hides copy over the warehouse":
        """select 1 as "'"; copy (select 'x') to '{db}'; select 1 as "'" """,
    # DuckDB itself still lets a connection without external access write its own file and WAL
    "copy over the warehouse without a temporary file":
        "select '--'; copy (select 'x') to '{db}' (format csv, use_tmp_file false)",
    "copy over the warehouse's WAL": "select '--'; copy (select 'x') to '{db}.wal' (format csv)",
    "dash comment inside a string": "select '--'; copy (select 'x') to '{dir}/out.csv'",
    "block comment inside strings": "select '/*'; copy (select 'x') to '{dir}/out.csv'; select '*/'",
    "dollar quoting": "select $$'$$; copy (select 'x') to '{dir}/out.csv'; select $$'$$",
    "tagged dollar quoting": "select $t$'$t$; copy (select 'x') to '{dir}/out.csv'; select $t$'$t$",
    "escape string": r"select e'\''; copy (select 'x') to '{dir}/out.csv'; select E'\''",
    "newline inside a string": "select '\n--'; copy (select 'x') to '{dir}/out.csv'",
    "block comment inside a quoted name": """select 1 as "/*"; copy (select 1) to '{dir}/out.csv'; select 1 as "*/" """,
    "export database": "select '--'; export database '{dir}/exported'",
    "attach another file read-write":
        "select '--'; attach '{dir}/other.duckdb' as other (read_write); create table other.t as select 1",
    "attach the warehouse again": "select '--'; attach '{db}' as again (read_only)",
    "install an extension": "select '--'; install httpfs",
    "load an extension": "select '--'; load httpfs",
    "load an extension file": "select '--'; load '{dir}/evil.duckdb_extension'",
    "set a setting": "select '--'; set threads = 1; select current_setting('threads')",
    "reset a setting": "select '--'; reset threads",
    "pragma writes a profile": "select '--'; pragma enable_profiling = 'json'; "
                               "pragma profiling_output = '{dir}/profile.json'; select 42",
    "logging to a file": "select '--'; call enable_logging(storage = 'file', storage_path = '{dir}/logs')",
    "read a URL (auto-installs an extension)": "select * from read_text('http://127.0.0.1:9/x')",
    "read a local file as CSV": "select * from read_csv('/etc/passwd', header = false)",
    "read a local file as text": "from read_text('/etc/hostname')",
    "read the warehouse's own bytes": "select content from read_blob('{db}')",
    "list a folder": "select * from glob('/etc/*')",
    "summarize another file": "summarize select * from read_text('/etc/hostname')",
    "describe another file": "describe select * from read_text('/etc/hostname')",
}


@pytest.mark.parametrize("statement", BYPASSES.values(), ids=BYPASSES.keys())
def test_duckdb_refuses_every_bypass_and_nothing_changes(warehouse_path, statement):
    folder = warehouse_path.parent
    before = warehouse_path.read_bytes()
    with pytest.raises(WarehouseError, match="^songmix sql is read-only") as refused:
        run_query(warehouse_path, statement.format(db=warehouse_path, dir=folder))
    assert "\n" not in str(refused.value)
    assert warehouse_path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["w.duckdb"]


@pytest.mark.parametrize("statement", [
    "insert into tracks (track_id, name, artists, run_id) values ('c', 'n', 'a', 'r')",
    "drop table tracks",
    "with x as (select 1) delete from tracks",
    "select 1; drop table tracks",
    "update tracks set name = 'z'",
])
def test_writes_to_the_warehouse_are_refused(warehouse_path, statement):
    before = warehouse_path.read_bytes()
    with pytest.raises(WarehouseError, match="read-only"):
        run_query(warehouse_path, statement)
    assert warehouse_path.read_bytes() == before


#: Each: a reading query and (a column of) its first row.
ORDINARY = {
    "replace()": ("select replace('abc', 'a', 'b') as r", "bbc"),
    "CTE with replace()": ("with t as (select replace(name, 'x', 'X') as r from tracks) "
                           "select min(r) as r from t", "X"),
    "a string holding ; and copy": ("select 'a; copy (select 1) to ''x.csv''' as r",
                                    "a; copy (select 1) to 'x.csv'"),
    "words of writes in strings and names": (
        "select 'drop table' as \"delete\" from tracks where name = 'x'", "drop table"),
    "a dollar-quoted string": ("select $$it's; --$$ as r", "it's; --"),
    "comments": ("select /* copy */ 'kept' as r -- drop\n", "kept"),
    "describe": ("describe tracks", "track_id"),
    "summarize": ("summarize tracks", "track_id"),
    "show tables": ("show tables", None),
    "explain": ("explain select count(*) from tracks", "physical_plan"),
    "pragma that reads": ("pragma table_info('tracks')", 0),
    "call that reads": ("call pragma_version()", None),
    "several statements: the last one's rows": ("select 1 as r; select 'last' as r", "last"),
    "a temporary table, gone afterwards": (
        "create temp table t as select * from tracks; select count(*)::varchar as r from t", "2"),
    "checkpoint (a no-op when read-only)": ("checkpoint", None),
}


@pytest.mark.parametrize(("statement", "first"), ORDINARY.values(), ids=ORDINARY.keys())
def test_reading_queries_keep_working_and_leave_the_file_as_it_was(warehouse_path, statement, first):
    before = warehouse_path.read_bytes()
    rows = run_query(warehouse_path, statement)
    if first is not None:
        assert rows.iloc[0, 0] == first
    assert warehouse_path.read_bytes() == before
    assert sorted(p.name for p in warehouse_path.parent.iterdir()) == ["w.duckdb"]


@pytest.mark.parametrize("statement", ["", "   ", "-- only a comment", "/* and */ ;"])
def test_an_empty_query_says_how_to_write_one(warehouse_path, statement):
    with pytest.raises(WarehouseError, match="empty query; try"):
        run_query(warehouse_path, statement)


def test_songmixs_own_read_only_connections_cannot_write_either(warehouse_path):
    """The readers behind report, predict and export open through the same helper."""
    before = warehouse_path.read_bytes()
    with connect(warehouse_path, read_only=True) as connection:
        with pytest.raises(duckdb.PermissionException):
            connection.execute(f"copy (select 'x') to '{warehouse_path}.wal' (format csv)")
        with pytest.raises(duckdb.Error):
            connection.execute("set enable_external_access = true")
    assert warehouse_path.read_bytes() == before
    assert sorted(p.name for p in warehouse_path.parent.iterdir()) == ["w.duckdb"]


def test_a_query_waits_for_a_writer_holding_the_file(warehouse_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time\n"
        f"c = duckdb.connect({str(warehouse_path)!r})\n"
        "c.execute('begin transaction'); c.execute(\"update tracks set name = 'held'\")\n"
        "print('locked', flush=True); time.sleep(1.5); c.execute('commit'); c.close()\n"
    )], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        names = run_query(warehouse_path, "select distinct name from tracks")["name"].tolist()
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=10)
    assert names == ["held"]
    assert 0.5 < waited < 5


def test_the_schema_documents_every_table_and_column(warehouse_path):
    described = describe_schema(warehouse_path)
    tables = described[described["kind"] == "table"]
    assert {"tracks", "gmm_assignments", "comparison", "aubio_features"} <= set(tables["name"])
    assert tables["object_description"].notna().all()
    aubio = tables[tables["name"] == "aubio_features"]
    assert aubio[aubio["column_name"] == "tempo"]["column_description"].str.contains("BPM").all()


def test_reading_a_missing_warehouse_says_how_to_make_one(tmp_path):
    with pytest.raises(WarehouseError, match="songmix run"):
        run_query(tmp_path / "none.duckdb", "select 1")


def test_reading_a_file_from_a_newer_songmix_is_refused(warehouse_path):
    with duckdb.connect(str(warehouse_path)) as connection:
        connection.execute("insert into schema_version values (999, 'future', current_timestamp)")
    with pytest.raises(WarehouseError, match="upgrade songmix"):
        run_query(warehouse_path, "select 1")
