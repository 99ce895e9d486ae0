"""Read-only access for people: ad-hoc SQL, the documented schema, and export.

songmix's own reads are :mod:`songmix.warehouse.reads`.

Every reader gets a locked-down read-only connection (:func:`~songmix.warehouse.connection.reading`):
DuckDB itself refuses writes, other files, URLs, extensions and changes of settings, in every
statement of a query, whatever its text looks like. Readers wait briefly when a writer holds
the file, so a query during a scheduled run answers as soon as the running stage has written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd

from songmix.warehouse.connection import WarehouseError, identifier, literal, reading

_Fetched = TypeVar("_Fetched")
#: DuckDB's words for a statement its read-only, locked-down connection refused.
_REFUSAL_WORDS = ("read-only mode", "configuration has been locked", "LocalFileSystem disabled")


@dataclass(frozen=True)
class QueryRows:
    """A query's result as Python values.

    Attributes
    ----------
    columns : list of str
    types : list of str
        DuckDB type of each column (``DOUBLE``, ``VARCHAR``, ...).
    rows : list of tuple
        One tuple per row; ``None`` is SQL NULL (a float NaN stays NaN).
    """

    columns: list[str]
    types: list[str]
    rows: list[tuple]


def run_query(path: Path | str, sql: str, *, lock_timeout_s: float = 5.0) -> pd.DataFrame:
    """Run a read-only query (one statement, or several: the last one's rows are returned)."""
    return _run_read_only(path, sql, lambda result: result.df(), lock_timeout_s=lock_timeout_s)


def query_rows(path: Path | str, sql: str, *, lock_timeout_s: float = 5.0) -> QueryRows:
    """:func:`run_query`, keeping NULL apart from NaN and every value as DuckDB returns it."""
    return _run_read_only(path, sql, lambda result: QueryRows(
        columns=[column[0] for column in result.description],
        types=[str(column[1]) for column in result.description],
        rows=result.fetchall()), lock_timeout_s=lock_timeout_s)


def _run_read_only(
    path: Path | str,
    sql: str,
    fetch: Callable[[duckdb.DuckDBPyConnection], _Fetched],
    *,
    lock_timeout_s: float,
) -> _Fetched:
    """``fetch`` of the result of ``sql`` on a locked-down read-only connection.

    Raises
    ------
    WarehouseError
        One line: the query is empty, DuckDB refused it (read-only), or it failed.
    """
    with reading(path, lock_timeout_s=lock_timeout_s) as connection:
        try:
            result = connection.execute(sql)
            if result is None:  # no statement at all: blank, or only comments
                raise WarehouseError('empty query; try: songmix sql "select count(*) from tracks"')
            return fetch(result)
        except duckdb.InterruptException:
            raise  # stopped (Ctrl-C, SIGTERM): not the query's failure
        except duckdb.Error as error:
            raise _query_error(error) from None


def _query_error(error: duckdb.Error) -> WarehouseError:
    message = str(error).strip()
    first_line = message.splitlines()[0] if message else type(error).__name__
    if isinstance(error, duckdb.PermissionException) or any(
            word in first_line for word in _REFUSAL_WORDS):
        return WarehouseError(
            f"songmix sql is read-only and reads nothing but the warehouse; DuckDB refused: {first_line}")
    return WarehouseError(f"query failed: {message}")


def describe_schema(path: Path | str) -> pd.DataFrame:
    """Every table and view with its columns, types and descriptions.

    The descriptions are the ``COMMENT``s the migrations attach, so the documentation lives
    beside the DDL and cannot drift from it.
    """
    return run_query(
        path,
        "SELECT o.kind, o.name, o.description AS object_description, c.column_name, "
        "c.data_type, c.comment AS column_description "
        "FROM (SELECT 'table' AS kind, table_name AS name, comment AS description "
        "      FROM duckdb_tables() WHERE schema_name = 'main' "
        "      UNION ALL SELECT 'view', view_name, comment FROM duckdb_views() "
        "      WHERE schema_name = 'main' AND NOT internal) o "
        "JOIN duckdb_columns() c ON c.table_name = o.name AND c.schema_name = 'main' "
        "ORDER BY o.kind, o.name, c.column_index",
    )


#: File formats ``export_warehouse`` writes, with DuckDB's COPY options for each.
EXPORT_FORMATS = {"parquet": "(FORMAT parquet)", "csv": "(FORMAT csv, HEADER)"}
#: A text cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV
#: Injection"); songmix's CSV output prefixes such a cell with ``'``.
SPREADSHEET_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text``, with a leading ``'`` when a spreadsheet would run it as a formula."""
    return "'" + text if text.startswith(SPREADSHEET_FORMULA_STARTS) else text


def export_warehouse(
    path: Path | str, directory: Path | str, *, file_format: str = "parquet"
) -> dict[str, int]:
    """Write every table and view to ``directory/<name>.<format>``, one file each.

    The warehouse is opened read-only and locked down (a running pipeline only has to pause
    for the copy); DuckDB may write under ``directory`` and nowhere else. Names come from
    DuckDB's own catalog, quoted, and each file path is a parameter. In CSV files a text cell
    that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
    ``'``, so a spreadsheet shows it as text instead of running it as a formula.

    Returns
    -------
    dict
        Rows written per table or view name.

    Raises
    ------
    ValueError
        Unknown format, or ``directory`` is a file or lies in a missing folder.
    """
    if file_format not in EXPORT_FORMATS:
        raise ValueError(f"--format must be one of {sorted(EXPORT_FORMATS)} (got {file_format!r})")
    path, directory = Path(path), Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} is a file; give export a folder")
    if not directory.parent.is_dir():
        raise ValueError(f"folder {directory.parent} does not exist; create it first")
    written = {}
    with reading(path, writable_folder=directory) as connection:
        directory.mkdir(exist_ok=True)
        names = [name for (name,) in connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' UNION ALL "
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal "
            "ORDER BY 1").fetchall()]
        for name in names:
            target = directory / f"{name}.{file_format}"
            connection.execute(f"COPY ({_export_select(connection, name, file_format)}) "
                               f"TO ? {EXPORT_FORMATS[file_format]}", [str(target)])
            written[name] = connection.execute(f"SELECT count(*) FROM {identifier(name)}").fetchone()[0]
    return written


def _export_select(connection: duckdb.DuckDBPyConnection, name: str, file_format: str) -> str:
    """``SELECT`` of every column of ``name``; for CSV, text cells made spreadsheet-safe."""
    if file_format != "csv":
        return f"SELECT * FROM {identifier(name)}"
    columns = connection.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index", [name]).fetchall()
    # spreadsheet_safe in SQL
    formula_starts = ", ".join(literal(start) for start in SPREADSHEET_FORMULA_STARTS)
    apostrophe = literal("'")
    selected = [
        f"CASE WHEN left({identifier(column)}, 1) IN ({formula_starts}) "
        f"THEN {apostrophe} || {identifier(column)} ELSE {identifier(column)} END AS {identifier(column)}"
        if data_type == "VARCHAR" else identifier(column)
        for column, data_type in columns]
    return f"SELECT {', '.join(selected)} FROM {identifier(name)}"
