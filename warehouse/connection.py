"""Opening the DuckDB file: validation, lock waiting and migrations.

DuckDB lets one process hold a database file for writing at a time, and a read-only
process cannot attach while a writer holds it. songmix's writer therefore opens the file
only for the length of one stage's transaction, and every opener (writer or reader) waits
briefly and retries when it finds the file locked, instead of failing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import duckdb

#: Bytes 8..12 of every DuckDB database file.
_DUCKDB_MAGIC = b"DUCK"
#: Settings every read-only connection opens with, beside external access off. With
#: ``_lock_down`` after it, DuckDB itself (not a check of the statement text) refuses, in every
#: statement of a query alike, whatever a reader must not do: write the warehouse (it is opened
#: read-only), read or write any other file or URL, install or load an extension, store a
#: secret, or change a setting.
_READER_SETTINGS = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_persistent_secrets": False,
}
#: How long an opener waits for another process's lock before giving up.
DEFAULT_LOCK_TIMEOUT_S = 10.0
_LOCK_RETRY_INTERVAL_S = 0.05
#: A run's writer waits this long for readers (``songmix sql``, ``duckdb -readonly``) to let
#: go of the file: a query never makes a run fail, it only pauses it (and says so).
WRITER_LOCK_TIMEOUT_S = 1800.0
#: How often a long wait for the file is reported.
WAIT_REPORT_INTERVAL_S = 10.0
#: Connections open in this process, so a stop signal can interrupt what they run.
_open_connections: set[duckdb.DuckDBPyConnection] = set()
_open_lock = threading.Lock()


class WarehouseError(Exception):
    """A warehouse cannot be opened or written; the message says what to do."""


def identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (a table or column name from an allow-list or
    DuckDB's own catalog: never a value)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str | int | float) -> str:
    """``value`` as a SQL constant, for the few places DuckDB takes no parameter (``COMMENT
    ON``, the checks' constant conditions). Every other value is a ``?`` parameter."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def migrations() -> list[tuple[int, str, str]]:
    """Ordered (version, name, sql) from the ``migrations`` folder (``NNN_name.sql``)."""
    folder = resources.files("songmix.warehouse") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(number), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def schema_version_of_code() -> int:
    """The newest schema version this code knows how to read and write."""
    return migrations()[-1][0]


def validate_path(path: Path, *, for_writing: bool) -> None:
    """Refuse a path that cannot hold a warehouse, before DuckDB touches it.

    Raises
    ------
    WarehouseError
        The folder is missing or read-only, the path is a folder, or the file exists but
        is not a DuckDB database (it is never modified in that case).
    """
    if path.is_dir():
        raise WarehouseError(f"{path} is a folder; give --db the path of a .duckdb file")
    if path.exists():
        if path.stat().st_size > 0:
            with path.open("rb") as handle:
                header = handle.read(12)
            if header[8:12] != _DUCKDB_MAGIC:
                raise WarehouseError(
                    f"{path} is not a DuckDB database; pass a new file name to --db "
                    "or the warehouse songmix created"
                )
        if for_writing and not os.access(path, os.W_OK):
            raise WarehouseError(f"{path} is read-only; choose a writable --db path")
        return
    if not for_writing:
        raise WarehouseError(f"no warehouse at {path}; run `songmix run` first or pass --db")
    folder = path.parent
    if not folder.is_dir():
        raise WarehouseError(f"folder {folder} does not exist; create it or choose another --db")
    try:
        # Try it rather than ask os.access, which says yes to root on read-only mounts.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        raise WarehouseError(f"folder {folder} is not writable; choose another --db") from None


def _is_lock_conflict(error: duckdb.Error) -> bool:
    # Match DuckDB's own wording: "lock" alone also occurs in "block" (a corrupt file's
    # checksum error), which must fail at once rather than be waited out.
    message = str(error)
    return "Could not set lock" in message or "Conflicting lock" in message


@contextlib.contextmanager
def connect(
    path: Path,
    *,
    read_only: bool,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    writable_folder: Path | None = None,
    waiting: Callable[[float], None] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``path``, waiting up to ``lock_timeout_s`` for another process's lock;
    ``waiting(seconds)`` is told every :data:`WAIT_REPORT_INTERVAL_S` of a wait.

    A read-only connection is locked down (see ``_READER_SETTINGS`` and ``_lock_down``): it
    reaches no file but the warehouse, except files under ``writable_folder`` when one is
    given (an export's).
    """
    if writable_folder is not None and not read_only:
        raise ValueError("writable_folder is for read-only connections")
    # An export's folder is allowed before external access goes (DuckDB's order for these).
    config = (_READER_SETTINGS | {"enable_external_access": writable_folder is not None}
              if read_only else {})
    started = time.monotonic()
    deadline, next_report = started + lock_timeout_s, started + WAIT_REPORT_INTERVAL_S
    while True:
        try:
            connection = duckdb.connect(str(path), read_only=read_only, config=config)
            break
        except duckdb.IOException as error:
            if not _is_lock_conflict(error) or time.monotonic() >= deadline:
                if _is_lock_conflict(error):
                    raise WarehouseError(
                        f"{path} stayed locked by another process for {lock_timeout_s:.0f} s; "
                        "try again when the running stage has written"
                    ) from None
                raise WarehouseError(
                    f"cannot open {path}: {error}; the file is left as it is — restore it from "
                    "a backup or pass a new --db"
                ) from None
            if waiting is not None and time.monotonic() >= next_report:
                waiting(time.monotonic() - started)
                next_report += WAIT_REPORT_INTERVAL_S
            time.sleep(_LOCK_RETRY_INTERVAL_S)
        except duckdb.Error as error:
            raise WarehouseError(f"cannot open {path} as a DuckDB warehouse: {error}") from None
    with _open_lock:
        _open_connections.add(connection)
    try:
        if read_only:
            _lock_down(connection, writable_folder)
        yield connection
    finally:
        with _open_lock:
            _open_connections.discard(connection)
        connection.close()


def _lock_down(connection: duckdb.DuckDBPyConnection, writable_folder: Path | None) -> None:
    """Take away the files DuckDB still allows without external access, then lock the settings.

    DuckDB keeps the open database file and its WAL files writable even for a read-only
    connection without external access (``COPY ... TO 'songmix.duckdb' (use_tmp_file false)``
    would overwrite the warehouse), so a reader gets no local file system at all beyond the
    open file; an export gets its folder instead. DuckDB takes these two settings only once the
    database runs. Connections of one process to one file share the database, and with it these
    settings, so a connection that finds them locked already checks they are a reader's.

    Raises
    ------
    WarehouseError
        Another connection of this process holds the file with other settings.
    """
    locked, disabled = connection.execute(
        "SELECT current_setting('lock_configuration'), current_setting('disabled_filesystems')"
    ).fetchone()
    if locked:
        if writable_folder is not None or "LocalFileSystem" not in disabled:
            raise WarehouseError("the warehouse is open for an export or a query in this process; "
                                 "try again when that has finished")
        return
    if writable_folder is None:
        connection.execute("SET disabled_filesystems = 'LocalFileSystem'")
    else:
        connection.execute("SET allowed_directories = ?", [[f"{Path(writable_folder).resolve()}/"]])
        connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


def interrupt_open_connections() -> None:
    """Interrupt the statement every open connection of this process runs (it raises in the
    thread waiting for it, and its transaction rolls back). Safe from any thread."""
    with _open_lock:
        connections = list(_open_connections)
    for connection in connections:
        with contextlib.suppress(duckdb.Error):
            connection.interrupt()


def _applied_versions(connection: duckdb.DuckDBPyConnection) -> set[int]:
    """Migrations recorded in the file (none in a new file or a DuckDB file of another program)."""
    has_table = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'schema_version'"
    ).fetchone()[0]
    if not has_table:
        return set()
    return {version for (version,) in connection.execute("SELECT version FROM schema_version").fetchall()}


def _refuse_newer_schema(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Raise WarehouseError when a newer songmix wrote the file (its schema version is unknown)."""
    version = max(_applied_versions(connection), default=0)
    if version > schema_version_of_code():
        raise WarehouseError(
            f"{path} has schema version {version}, but this songmix only knows up to "
            f"{schema_version_of_code()}; upgrade songmix (pip install -U songmix) to open it"
        )


@contextlib.contextmanager
def reading(
    path: Path | str, *, lock_timeout_s: float = 5.0, writable_folder: Path | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A locked-down read-only connection to an existing warehouse of a known schema.

    Raises
    ------
    WarehouseError
        No warehouse at ``path``, not a DuckDB file, locked for longer than
        ``lock_timeout_s``, or written by a newer songmix.
    """
    path = Path(path)
    validate_path(path, for_writing=False)
    with connect(path, read_only=True, lock_timeout_s=lock_timeout_s,
                 writable_folder=writable_folder) as connection:
        _refuse_newer_schema(connection, path)
        yield connection


def migrate(connection: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Apply every migration the file has not recorded, in order, each in its own transaction.

    A number missing below the file's newest (migrations written in parallel and merged
    out of order) is applied too, so every file ends with the same schema. A file written by
    a newer songmix is refused before anything in it changes.

    Returns the schema version the file is at afterwards.

    Raises
    ------
    WarehouseError
        The file was written by a newer songmix (its schema version is unknown here).
    """
    _refuse_newer_schema(connection, path)
    applied = _applied_versions(connection)
    if not applied:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        connection.execute(
            "COMMENT ON TABLE schema_version IS 'Migrations applied to this file, in order.'"
        )
    newest = schema_version_of_code()
    for version, name, sql in migrations():
        if version in applied:
            continue
        connection.execute("BEGIN TRANSACTION")
        try:
            connection.execute(sql)
            connection.execute(
                "INSERT INTO schema_version VALUES (?, ?, current_timestamp)", [version, name]
            )
            connection.execute("COMMIT")
        except Exception:
            connection.execute("ROLLBACK")
            raise
    return newest

