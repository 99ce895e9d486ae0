"""Post-write checks: a broken rule names table, column and count, and the stage rolls back."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from songmix.warehouse.checks import CHECKS, UNIQUE_BY_CHECK
from songmix.warehouse.connection import WarehouseError
from songmix.warehouse.store import TABLE_KEYS, Warehouse


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory):
    return Warehouse(tmp_path_factory.mktemp("checks") / "w.duckdb")


def _assignments(**overrides) -> pd.DataFrame:
    rows = pd.DataFrame({"run_id": "r1", "feature_set": "spotify", "k": 2, "track_id": ["a", "b", "c"],
                         "cluster": [0, 1, 0], "probability": [0.9, 0.8, 0.7]})
    return rows.assign(**overrides)


def _memberships(**overrides) -> pd.DataFrame:
    rows = pd.DataFrame({"run_id": "r1", "feature_set": "spotify", "k": 2, "track_id": ["a", "b", "c"],
                         "probabilities": [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]})
    return rows.assign(**overrides)


def _tracks() -> pd.DataFrame:
    return pd.DataFrame({"track_id": ["a", "b", "c"], "name": "n", "artists": "x", "run_id": "r1"})


def _count(warehouse: Warehouse, table: str) -> int:
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        return connection.execute(f'select count(*) from "{table}"').fetchone()[0]


def test_valid_rows_pass_every_check(empty_warehouse):
    empty_warehouse.write({"gmm_assignments": _assignments(run_id="ok"), "gmm_memberships": _memberships(run_id="ok")})
    assert _count(empty_warehouse, "gmm_assignments") == _count(empty_warehouse, "gmm_memberships") == 3


@pytest.mark.parametrize(("table", "overrides", "column", "n_bad"), [
    ("gmm_assignments", {"feature_set": "mfcc"}, "gmm_assignments.feature_set", 3),
    ("gmm_assignments", {"probability": [0.9, 1.5, -0.1]}, "gmm_assignments.probability", 2),
    ("gmm_assignments", {"cluster": [0, 2, 0]}, "gmm_assignments.cluster", 1),
    ("gmm_assignments", {"k": 0, "cluster": 0}, "gmm_assignments.k", 3),
    ("gmm_memberships", {"probabilities": [[0.9, 0.1], [2.0, -1.0], [0.7, 0.3]]}, "gmm_memberships.probabilities", 1),
    ("gmm_memberships", {"probabilities": [[0.9, 0.1, 0.0], [0.2, 0.8], [0.7, 0.3]]}, "gmm_memberships.probabilities", 1),
    ("gmm_memberships", {"feature_set": "mfcc"}, "gmm_memberships.feature_set", 3),
])
def test_a_broken_rule_names_table_column_and_count_and_nothing_is_written(
    empty_warehouse, table, overrides, column, n_bad
):
    before = {name: _count(empty_warehouse, name) for name in ("tracks", "gmm_assignments", "gmm_memberships")}
    rows = {"gmm_assignments": _assignments(), "gmm_memberships": _memberships()}
    rows[table] = rows[table].assign(**overrides)
    with pytest.raises(WarehouseError, match=rf"{column}: {n_bad} rows break"):
        empty_warehouse.write({"tracks": _tracks(), **rows})
    assert {name: _count(empty_warehouse, name) for name in before} == before


def test_accepted_values_and_conditional_not_null_on_audio_files(empty_warehouse):
    rows = pd.DataFrame({"track_id": ["a", "b"], "status": ["ok", "failed"], "sha256": [None, None],
                         "path": [None, None], "error": [None, None], "run_id": "r9",
                         "downloaded_at": pd.Timestamp("2026-01-01")})
    with pytest.raises(WarehouseError) as raised:
        empty_warehouse.write({"audio_files": rows})
    assert "audio_files.sha256: 1 rows" in str(raised.value)
    assert "audio_files.error: 1 rows" in str(raised.value)
    assert _count(empty_warehouse, "audio_files") == 0


def test_a_not_null_column_left_empty_is_refused_with_the_table_named(empty_warehouse):
    with pytest.raises(WarehouseError, match="tracks.*NOT NULL|tracks.*name"):
        empty_warehouse.write({"tracks": _tracks().assign(name=None)})
    assert _count(empty_warehouse, "tracks") == 0


def test_every_natural_key_is_the_tables_primary_key_or_checked_after_write(empty_warehouse):
    with duckdb.connect(str(empty_warehouse.path), read_only=True) as connection:
        primary_keys = {
            table: tuple(columns)
            for table, columns in connection.execute(
                "select table_name, constraint_column_names from duckdb_constraints() "
                "where constraint_type = 'PRIMARY KEY'").fetchall()
        }
    indexed = {table: key for table, key in TABLE_KEYS.items() if table not in UNIQUE_BY_CHECK}
    assert {table: primary_keys.get(table) for table in indexed} == indexed
    # A checked key must start with run_id: the checks scan only the runs just written.
    assert all(TABLE_KEYS[table][0] == "run_id" and table not in primary_keys for table in UNIQUE_BY_CHECK)


@pytest.mark.parametrize("table", sorted(UNIQUE_BY_CHECK))
def test_a_key_repeated_in_an_unindexed_table_is_refused_and_nothing_is_written(empty_warehouse, table):
    before = _count(empty_warehouse, table)
    repeated = {"gmm_assignments": _assignments, "gmm_memberships": _memberships}[table](
        run_id="twice", track_id=["a", "b", "a"])
    with pytest.raises(WarehouseError, match=rf"{table}: 1 rows repeat a key \(run_id, feature_set, k, track_id\)"):
        empty_warehouse.write({table: repeated})
    assert _count(empty_warehouse, table) == before


def test_a_key_hash_collision_is_not_taken_for_a_repeated_key(empty_warehouse, monkeypatch):
    """The fast screen counts distinct key hashes; a collision must not fail the stage."""
    import songmix.warehouse.checks as checks

    # The screen's hash is the one the check runs: an unknown function fails the write.
    monkeypatch.setattr(checks, "KEY_HASH", "no_such_hash")
    with pytest.raises(duckdb.Error, match="no_such_hash"):
        empty_warehouse.write({"gmm_assignments": _assignments(run_id="unknown hash")})
    # Every key hashing alike (one distinct value): the keys themselves are recounted.
    monkeypatch.setattr(checks, "KEY_HASH", "0 * hash")
    with pytest.raises(WarehouseError, match="1 rows repeat a key"):
        empty_warehouse.write({"gmm_assignments": _assignments(run_id="twice", track_id=["a", "b", "a"])})
    empty_warehouse.write({"gmm_assignments": _assignments(run_id="collide")})
    with duckdb.connect(str(empty_warehouse.path), read_only=True) as connection:
        assert connection.execute("select count(*) from gmm_assignments where run_id = 'collide'").fetchone() == (3,)


def test_rewriting_unindexed_keys_replaces_them(empty_warehouse):
    empty_warehouse.write({"gmm_assignments": _assignments(run_id="again")})
    empty_warehouse.write({"gmm_assignments": _assignments(run_id="again", cluster=[1, 1, 1],
                                                           probability=[0.6, 0.8, 0.6])})
    with duckdb.connect(str(empty_warehouse.path), read_only=True) as connection:
        rows = connection.execute("select track_id, cluster from gmm_assignments where run_id = 'again' "
                                  "order by track_id").fetchall()
    assert rows == [("a", 1), ("b", 1), ("c", 1)]


def test_every_check_names_a_real_column(empty_warehouse):
    with duckdb.connect(str(empty_warehouse.path), read_only=True) as connection:
        columns = set(connection.execute("select table_name, column_name from duckdb_columns()").fetchall())
    assert {(c.table, c.column) for c in CHECKS} <= columns
    assert {c.table for c in CHECKS} <= set(TABLE_KEYS)
