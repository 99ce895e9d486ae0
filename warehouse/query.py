"""Read-only access for people: ad-hoc SQL, the documented schema, and model lookups.

Readers open the file read-only and wait briefly when a writer holds it, so a query during
a scheduled run answers as soon as the running stage has written.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd

from songmix.warehouse.connection import (
    WarehouseError,
    connect,
    schema_version_of_code,
    validate_path,
)

#: Statements a read-only query may start with.
_READ_STATEMENTS = ("select", "with", "from", "describe", "show", "summarize", "explain", "values", "table")
_WRITE_WORDS = re.compile(
    r"\b(insert|update|delete|drop|create|alter|attach|detach|copy|export|import|install|load|"
    r"pragma|set|checkpoint|vacuum|call|truncate|replace|grant|begin|commit|rollback|use)\b",
    re.IGNORECASE,
)


def _strip_literals(sql: str) -> str:
    """``sql`` with string literals, quoted names and comments blanked out."""
    sql = re.sub(r"--[^\n]*", " ", sql)
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL)
    sql = re.sub(r"'(?:[^']|'')*'", "''", sql)
    return re.sub(r'"(?:[^"]|"")*"', '""', sql)


def check_read_only(sql: str) -> None:
    """Refuse anything but a single reading statement.

    The file is opened read-only as well; this check gives a clear message first and also
    refuses statements read-only mode would allow (ATTACH of another file, COPY ... TO, SET).
    """
    bare = _strip_literals(sql).strip().rstrip(";").strip()
    if not bare:
        raise WarehouseError("empty query; try: songmix sql \"select count(*) from tracks\"")
    if ";" in bare:
        raise WarehouseError("one statement at a time, please")
    first = bare.split(None, 1)[0].lower()
    word = _WRITE_WORDS.search(bare)
    if first not in _READ_STATEMENTS or word:
        offending = word.group(0).upper() if word else first.upper()
        raise WarehouseError(
            f"songmix sql is read-only ({offending} refused); "
            "the pipeline is the warehouse's only writer"
        )


def _check_version(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    version = connection.execute(
        "SELECT coalesce(max(version), 0) FROM schema_version"
    ).fetchone()[0]
    if version > schema_version_of_code():
        raise WarehouseError(
            f"{path} has schema version {version}, newer than this songmix knows "
            f"({schema_version_of_code()}); upgrade songmix to read it"
        )


def run_query(path: Path | str, sql: str, *, lock_timeout_s: float = 5.0) -> pd.DataFrame:
    """Run one read-only statement and return its result."""
    path = Path(path)
    check_read_only(sql)
    validate_path(path, for_writing=False)
    with connect(path, read_only=True, lock_timeout_s=lock_timeout_s) as connection:
        _check_version(connection, path)
        try:
            return connection.execute(sql).df()
        except duckdb.Error as error:
            raise WarehouseError(f"query failed: {error}") from None


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


def _read(path: Path | str, sql: str, parameters: list) -> pd.DataFrame:
    """A parameterized read for songmix's own helpers (no read-only check needed)."""
    path = Path(path)
    validate_path(path, for_writing=False)
    with connect(path, read_only=True, lock_timeout_s=5.0) as connection:
        _check_version(connection, path)
        return connection.execute(sql, parameters).df()


def chosen_models(path: Path | str, run_id: str | None = None) -> pd.DataFrame:
    """The models a run used (default: the latest completed run that fitted any), one row
    per feature set and component: run_id, source, started_at, feature_set, k,
    covariance_type, n_samples, feature_version, log_density_p01, warnings, features,
    scaler_mean, scaler_scale, component, weight, mean, covariance (standardized, row-major
    d*d)."""
    return _read(
        path,
        "WITH chosen_run AS ("
        "  SELECT r.run_id, r.source, r.started_at FROM runs r JOIN gmm_models m USING (run_id) "
        "  WHERE (? IS NULL AND r.status = 'completed') OR r.run_id = ? "
        "  ORDER BY r.started_at DESC LIMIT 1) "
        "SELECT m.run_id, chosen_run.source, chosen_run.started_at, m.feature_set, m.k, "
        "       m.covariance_type, m.n_samples, m.feature_version, m.log_density_p01, "
        "       coalesce(m.warnings, []) AS warnings, "
        "       m.features, m.scaler_mean, m.scaler_scale, "
        "       c.component, c.weight, c.mean, c.covariance "
        "FROM gmm_models m JOIN chosen_run USING (run_id) "
        "JOIN gmm_components c USING (run_id, feature_set, k) "
        "WHERE m.chosen ORDER BY m.feature_set, c.component",
        [run_id, run_id],
    )


def recent_runs(path: Path | str, limit: int) -> pd.DataFrame:
    """The ``limit`` latest runs, newest first: run_id, source, status, started_at, models
    (``"spotify k=6 diag (100 tracks), ..."``, NULL without any) and warnings (runs.warnings)."""
    return _read(
        path,
        "SELECT r.run_id, r.source, r.status, r.started_at, coalesce(r.warnings, []) AS warnings, "
        "  (SELECT string_agg(m.feature_set || ' k=' || m.k || ' ' || m.covariance_type || ' ('"
        "     || m.n_samples || ' tracks)', ', ' ORDER BY m.feature_set DESC) "
        "   FROM gmm_models m WHERE m.run_id = r.run_id AND m.chosen) AS models "
        "FROM runs r ORDER BY r.started_at DESC LIMIT ?",
        [limit],
    )


def matched_clusters(path: Path | str, run_id: str) -> pd.DataFrame:
    """The run's Hungarian pairing of Spotify clusters with Aubio clusters."""
    return _read(
        path,
        "SELECT left_cluster AS spotify_cluster, right_cluster AS aubio_cluster, n_tracks "
        "FROM contingency WHERE run_id = ? AND left_set = 'spotify' AND right_set = 'aubio' "
        "AND matched ORDER BY 1",
        [run_id],
    )


def track_features(path: Path | str, track_id: str) -> dict[str, pd.DataFrame]:
    """A stored track's name and its Spotify and Aubio feature rows (empty when absent)."""
    return {
        "track": _read(path, "SELECT track_id, name, artists FROM tracks WHERE track_id = ?",
                       [track_id]),
        "spotify": _read(path, "SELECT * FROM spotify_features WHERE track_id = ?", [track_id]),
        "aubio": _read(
            path,
            "SELECT x.* FROM audio_files a JOIN aubio_features x USING (sha256) "
            "WHERE a.track_id = ? AND a.status = 'ok'",
            [track_id],
        ),
    }


#: File formats ``export_warehouse`` writes, with DuckDB's COPY options for each.
EXPORT_FORMATS = {"parquet": "(FORMAT parquet)", "csv": "(FORMAT csv, HEADER)"}


def export_warehouse(
    path: Path | str, directory: Path | str, *, file_format: str = "parquet"
) -> dict[str, int]:
    """Write every table and view to ``directory/<name>.<format>``, one file each.

    The warehouse is opened read-only (a running pipeline only has to pause for the copy);
    names come from DuckDB's own catalog, quoted, and each file path is a parameter.

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
    validate_path(path, for_writing=False)
    written = {}
    with connect(path, read_only=True, lock_timeout_s=5.0) as connection:
        _check_version(connection, path)
        directory.mkdir(exist_ok=True)
        names = [name for (name,) in connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' UNION ALL "
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal "
            "ORDER BY 1").fetchall()]
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            target = directory / f"{name}.{file_format}"
            connection.execute(f"COPY (SELECT * FROM {quoted}) TO ? {EXPORT_FORMATS[file_format]}",
                               [str(target)])
            written[name] = connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
    return written
