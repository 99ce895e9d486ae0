"""Readers: read-only SQL that waits out a writer, refuses writes, and the documented schema."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest

from songmix.warehouse.connection import WarehouseError
from songmix.warehouse.query import check_read_only, describe_schema, run_query
from songmix.warehouse.store import Warehouse


@pytest.fixture
def warehouse_path(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path).write({"tracks": pd.DataFrame(
        {"track_id": ["a", "b"], "name": ["x", "y"], "artists": "z", "run_id": "r1"})})
    return path


def test_a_select_returns_its_rows(warehouse_path):
    assert run_query(warehouse_path, "select count(*) as n from tracks")["n"].item() == 2


@pytest.mark.parametrize("statement", [
    "insert into tracks (track_id, name, artists, run_id) values ('c', 'n', 'a', 'r')",
    "drop table tracks",
    "attach 'other.duckdb' as other",
    "copy tracks to 'out.csv'",
    "pragma enable_profiling",
    "select 1; drop table tracks",
    "with x as (select 1) delete from tracks",
])
def test_writes_are_refused_and_the_file_is_unchanged(warehouse_path, statement):
    before = warehouse_path.read_bytes()
    with pytest.raises(WarehouseError, match="read-only|one statement"):
        run_query(warehouse_path, statement)
    assert warehouse_path.read_bytes() == before


def test_words_inside_strings_and_quoted_names_do_not_trip_the_check():
    check_read_only("select 'drop table' as \"delete\" from tracks where name = 'insert'")


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
