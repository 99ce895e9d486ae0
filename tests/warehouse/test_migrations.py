"""Migration numbers, and that every warehouse ends with the same schema however it got there."""

from __future__ import annotations

import duckdb

import songmix.warehouse.connection as connection_module
from songmix.warehouse.connection import migrations
from songmix.warehouse.store import Warehouse

#: The migrations the released songmix shipped (005 was added later, into the gap).
RELEASED = (1, 2, 3, 4, 6, 7, 8, 9)


def test_migration_numbers_run_from_001_without_a_gap():
    versions = [version for version, _, _ in migrations()]
    assert versions == list(range(1, len(versions) + 1))


def _schema(path) -> dict[str, list[tuple]]:
    """Every table, view, column (type, nullability, comment) and constraint of the file."""
    with duckdb.connect(str(path), read_only=True) as connection:
        def rows(sql: str) -> list[tuple]:
            return connection.execute(sql).fetchall()

        return {
            "versions": rows("SELECT version, name FROM schema_version ORDER BY version"),
            "tables": rows("SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'main' "
                           "ORDER BY ALL"),
            "views": rows("SELECT view_name, comment, sql FROM duckdb_views() "
                          "WHERE schema_name = 'main' AND NOT internal ORDER BY ALL"),
            "columns": rows("SELECT table_name, column_index, column_name, data_type, is_nullable, "
                            "column_default, comment FROM duckdb_columns() WHERE schema_name = 'main' "
                            "ORDER BY ALL"),
            "constraints": rows("SELECT table_name, constraint_type, constraint_text FROM duckdb_constraints() "
                                "WHERE schema_name = 'main' ORDER BY ALL"),
        }


def test_a_warehouse_at_the_released_schema_migrates_to_the_schema_of_a_new_one(tmp_path, monkeypatch):
    every = migrations()
    released = tmp_path / "released.duckdb"
    with monkeypatch.context() as released_code:
        released_code.setattr(connection_module, "migrations",
                              lambda: [migration for migration in every if migration[0] in RELEASED])
        Warehouse(released)
    assert [version for (version, _) in _schema(released)["versions"]] == list(RELEASED)

    Warehouse(released)  # this songmix: applies 005 after 009, then the rest
    new = tmp_path / "new.duckdb"
    Warehouse(new)  # 001 onwards, 005 before 006
    upgraded, fresh = _schema(released), _schema(new)
    assert upgraded["columns"], "the schema was read"
    assert upgraded == fresh
