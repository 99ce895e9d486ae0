"""The one writer of the warehouse (its reads are :mod:`songmix.warehouse.reads`).

Every write is one transaction on a short-lived connection: the stage's rows land whole or
not at all, and between stages the file is free for readers (``songmix sql``). Writes are
idempotent: rows are replaced on their natural key, so a rerun never duplicates them.
Values reach SQL only as parameters or registered DataFrames; table and column names come
from the allow-list below.
"""

from __future__ import annotations

import contextlib
import json
import logging
from importlib.metadata import version
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from songmix.warehouse.checks import check_written
from songmix.warehouse.connection import (
    WRITER_LOCK_TIMEOUT_S,
    WarehouseError,
    connect,
    identifier,
    literal,
    migrate,
    validate_path,
)
from songmix.warehouse.records import utc_now
from songmix.warehouse.run_lock import holding_run_lock

#: Shown on stderr by ``songmix run`` (and in Prefect's log with PREFECT_LOGGING_EXTRA_LOGGERS=songmix).
_LOGGER = logging.getLogger("songmix.warehouse")


#: Natural key of every table the writer may touch.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "runs": ("run_id",),
    "search_pages": ("run_id", "query", "offset"),
    "raw_audio_features": ("track_id", "provider"),
    "run_tracks": ("run_id", "track_id"),
    "tracks": ("track_id",),
    "spotify_features": ("track_id",),
    "audio_files": ("track_id",),
    "aubio_features": ("sha256",),
    "item_failures": ("run_id", "stage", "item_id"),
    "demo_truth": ("track_id",),
    "model_selection": ("run_id", "feature_set", "covariance_type", "k"),
    "gmm_fits": ("run_id", "feature_set", "k", "seed"),
    "gmm_models": ("run_id", "feature_set", "k"),
    "gmm_components": ("run_id", "feature_set", "k", "component"),
    "gmm_assignments": ("run_id", "feature_set", "k", "track_id"),
    "gmm_memberships": ("run_id", "feature_set", "k", "track_id"),
    "seed_stability": ("run_id", "feature_set", "k", "seed"),
    "comparison": ("run_id", "left_set", "right_set", "left_k", "right_k", "metric"),
    "contingency": ("run_id", "left_set", "right_set", "left_cluster", "right_cluster"),
    "feature_agreement": ("run_id", "spotify_feature", "measure"),
    "extractor_accuracy": ("run_id", "metric"),
    "agreement_by_k": ("run_id", "comparison", "k"),
    "cluster_pairs": ("run_id", "left_set", "right_set", "pair"),
    "cluster_profiles": ("run_id", "left_set", "right_set", "side", "cluster", "feature"),
    "rejected_rows": ("run_id", "line_number"),
    "csv_genres": ("run_id", "track_id"),
    "run_drift": ("run_id", "feature_set"),
}


#: Rows per Arrow record batch handed to DuckDB: its row-group size, the unit its parallel
#: insert works in.
_SCAN_BATCH_ROWS = 122_880


def as_arrow(rows: pd.DataFrame | pa.Table) -> pa.Table:
    """``rows`` as an Arrow table in batches of at most :data:`_SCAN_BATCH_ROWS` rows.

    DuckDB scans Arrow list columns (``probabilities``) faster than a pandas column of per-row
    arrays, and hands each record batch to one thread: a table in one piece is inserted by one
    thread, in batches by all of them (``benchmarks/warehouse.py`` times both).
    """
    if not isinstance(rows, pa.Table):
        try:
            rows = pa.Table.from_pandas(rows, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise WarehouseError(f"rows cannot be stored as typed columns: {error}") from None
    return pa.Table.from_batches(rows.to_batches(max_chunksize=_SCAN_BATCH_ROWS), schema=rows.schema)


def _run_ids_of(rows: pa.Table) -> list[str]:
    """The distinct run ids among ``rows`` (none when the table is not run-tagged)."""
    if "run_id" not in rows.column_names:
        return []
    return pc.unique(rows.column("run_id")).drop_null().to_pylist()


def _may_hold_keys_of(
    connection: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...], run_ids: list[str]
) -> bool:
    """False when ``table`` certainly holds none of the incoming keys (a new run's rows).

    Deleting through a PRIMARY KEY index is costly even when nothing matches; a key that
    starts with run_id lets a cheap scan rule the whole delete out.
    """
    if key[0] != "run_id":
        return True
    return connection.execute(
        f"SELECT EXISTS (SELECT 1 FROM {identifier(table)} WHERE run_id IN (SELECT unnest(?)))", [run_ids]
    ).fetchone()[0]


#: Longest error text stored in ``runs.error`` (the first lines say what happened; a
#: traceback or an echo of the inputs would only slow the write and the reader).
MAX_ERROR_CHARS = 2000


#: Exceptions that mean "stopped from outside" (Ctrl-C, SIGTERM; Prefect's own for SIGTERM;
#: DuckDB's for a statement a stopping run interrupted, the only time songmix interrupts one).
STOPS = ("KeyboardInterrupt", "TerminationSignal", "InterruptException")


def describe_error(error: BaseException) -> str:
    """``"Type: message"``, cut to :data:`MAX_ERROR_CHARS` characters."""
    if type(error).__name__ in STOPS:
        return "interrupted: stopped by Ctrl-C or SIGTERM; rerun to resume from the last finished stage"
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 16] + " ... (cut short)"


def _mark_interrupted_runs(connection: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Mark failed every other run still 'running': the caller holds the run lock, so
    whatever process recorded them has ended without finishing (killed, crashed)."""
    connection.execute(
        "UPDATE runs SET status = 'failed', finished_at = ?, "
        "error = 'interrupted: its process ended without finishing the run' "
        "WHERE status = 'running' AND run_id <> ?",
        [utc_now(), run_id],
    )


class Warehouse:
    """A DuckDB warehouse file, opened for one transaction at a time.

    Parameters
    ----------
    path : Path
        The ``.duckdb`` file. Created (with the schema) if missing.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        validate_path(self.path, for_writing=True)
        with self._connect() as connection:
            migrate(connection, self.path)

    def _connect(self):
        """The writer's connection: it waits for readers of the file, however long they take
        (up to :data:`WRITER_LOCK_TIMEOUT_S`), saying so every few seconds."""
        def waiting(seconds: float) -> None:
            _LOGGER.warning("waiting %.0f s for a reader of %s (songmix sql, duckdb -readonly) "
                            "to close it", seconds, self.path)

        return connect(self.path, read_only=False, lock_timeout_s=WRITER_LOCK_TIMEOUT_S, waiting=waiting)

    # -- transactions ------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One stage's writes: committed together, or rolled back together.

        Raises
        ------
        WarehouseError
            The file could not be written (a full disk, an I/O error): one line, and nothing
            of the transaction is kept.
        """
        with self._connect() as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                yield connection
            except BaseException as error:
                with contextlib.suppress(duckdb.Error):  # a failed write may have ended it already
                    connection.execute("ROLLBACK")
                if isinstance(error, duckdb.IOException):
                    raise self._write_error(error) from None
                raise
            try:
                connection.execute("COMMIT")
            except duckdb.Error as error:
                raise self._write_error(error) from None

    def _write_error(self, error: duckdb.Error) -> WarehouseError:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return WarehouseError(f"could not write {self.path} ({reason}); nothing of this step was "
                              "kept, earlier ones were: free space or fix the disk, then rerun")

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for the flow's own reads (the flow's process is the writer)."""
        with self._connect() as connection:
            yield connection

    def add_columns(self, table: str, documented: Mapping[str, str], *, column_type: str = "DOUBLE") -> None:
        """Give ``table`` every column of ``documented`` (name -> its comment) it lacks.

        For columns the schema takes from the code that fills them (``aubio_features``: one per
        feature of the extractor's feature table); older rows hold NULL there.
        """
        if table not in TABLE_KEYS:
            raise WarehouseError(f"unknown table {table!r}")
        with self.transaction() as connection:
            existing = {name for (name,) in connection.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]).fetchall()}
            for name, comment in documented.items():
                if name not in existing:
                    connection.execute(f"ALTER TABLE {identifier(table)} ADD COLUMN {identifier(name)} {column_type}")
                    connection.execute(f"COMMENT ON COLUMN {identifier(table)}.{identifier(name)} IS {literal(comment)}")

    # -- generic idempotent write ------------------------------------------------------
    @staticmethod
    def replace_rows(
        connection: duckdb.DuckDBPyConnection, table: str, rows: pd.DataFrame | pa.Table
    ) -> int:
        """Insert ``rows`` into ``table``, replacing rows with the same natural key, then
        run the table's checks (:mod:`songmix.warehouse.checks`) on the runs written.

        Returns the number of rows written. Columns are matched by name; a column the
        table lacks is an error, so a typo cannot silently drop data. A key repeated within
        ``rows`` breaks the table's PRIMARY KEY or its key check: the stage produced duplicates.

        Raises
        ------
        WarehouseError
            Unknown table or column, repeated keys, a constraint or a check broken; the
            caller's transaction must roll back (``write`` does).
        """
        if table not in TABLE_KEYS:
            raise WarehouseError(f"unknown table {table!r}")
        if len(rows) == 0:
            return 0
        key = TABLE_KEYS[table]
        table_columns = {
            name
            for (name,) in connection.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]
            ).fetchall()
        }
        incoming = as_arrow(rows)
        unknown = sorted(set(incoming.column_names) - table_columns)
        if unknown:
            raise WarehouseError(f"{table} has no columns {unknown}")
        connection.register("incoming_rows", incoming)
        try:
            run_ids = _run_ids_of(incoming)
            if _may_hold_keys_of(connection, table, key, run_ids):
                match = " AND ".join(
                    f"{identifier(table)}.{identifier(c)} = incoming_rows.{identifier(c)}" for c in key
                )
                connection.execute(f"DELETE FROM {identifier(table)} USING incoming_rows WHERE {match}")
            columns = ", ".join(identifier(c) for c in incoming.column_names)
            try:
                connection.execute(
                    f"INSERT INTO {identifier(table)} ({columns}) SELECT {columns} FROM incoming_rows"
                )
            except duckdb.ConstraintException as error:
                raise WarehouseError(f"check failed, stage not written: {table}: {error}") from None
            check_written(connection, table, key, run_ids)
        finally:
            connection.unregister("incoming_rows")
        return incoming.num_rows

    def write(self, tables: Mapping[str, pd.DataFrame | pa.Table]) -> dict[str, int]:
        """Write several tables in one transaction; returns rows written per table.

        Every table's checks run before COMMIT: a broken rule rolls the whole stage back.
        """
        with self.transaction() as connection:
            return {name: self.replace_rows(connection, name, rows) for name, rows in tables.items()}

    # -- runs --------------------------------------------------------------------------
    def start_run(
        self,
        run_id: str,
        *,
        source: str,
        parameters: Mapping[str, object],
        code_version: str,
        flow_run_id: str | None,
    ) -> None:
        """Record a run as running (a resumed run keeps its original start time).

        Call it holding the run lock (:meth:`recording_run` does): runs left 'running' are
        then known to be dead and are marked failed with reason 'interrupted' first; their
        finished stages stay, and this run redoes only what they lacked.
        """
        host = socket.gethostname()
        with self.transaction() as connection:
            _mark_interrupted_runs(connection, run_id)
            existing = connection.execute(
                "SELECT started_at FROM runs WHERE run_id = ?", [run_id]
            ).fetchone()
            started_at = existing[0] if existing else utc_now()
            connection.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
            connection.execute(
                "INSERT INTO runs (run_id, flow_run_id, source, parameters, code_version, "
                "started_at, status, host, pid) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                [run_id, flow_run_id, source, json.dumps(dict(parameters)), code_version,
                 started_at, host, os.getpid()],
            )

    def finish_run(
        self, run_id: str, *, status: str, counts: Mapping[str, int], error: str | None = None
    ) -> None:
        """Mark a run completed or failed, with its per-stage counts and its chosen models'
        warnings."""
        with self.transaction() as connection:
            connection.execute(
                "UPDATE runs SET status = ?, finished_at = ?, counts = ?, error = ?, warnings = ("
                "  SELECT coalesce(flatten(list(list_transform(m.warnings, w -> m.feature_set || ': ' || w) "
                "                               ORDER BY m.feature_set)), []) "
                "  FROM gmm_models m WHERE m.run_id = ? AND m.chosen AND m.warnings IS NOT NULL) "
                "WHERE run_id = ?",
                [status, utc_now(), json.dumps(dict(counts)), error, run_id, run_id],
            )

    @contextlib.contextmanager
    def recording_run(
        self,
        run_id: str,
        *,
        source: str,
        parameters: Mapping[str, object],
        flow_run_id: str | None,
        logger: logging.Logger | None = None,
    ) -> Iterator[None]:
        """Record the block as run ``run_id``, holding the warehouse's run lock throughout
        (:mod:`songmix.warehouse.run_lock`; a second run waits for it): running, then
        completed, or failed with the error that ended it (cut to a few KB, and re-raised);
        per-table counts either way."""
        with holding_run_lock(self.path, logger=logger):
            self.start_run(run_id, source=source, parameters=parameters,
                           code_version=version("songmix"), flow_run_id=flow_run_id)
            try:
                yield
            except BaseException as error:
                self._finish_recorded(run_id, "failed", error)
                raise
            self._finish_recorded(run_id, "completed", None)

    def _finish_recorded(self, run_id: str, status: str, ended_by: BaseException | None) -> None:
        """``finish_run``; when the file takes no more writes (a full disk), one line saying
        so instead: the run stays 'running' until the next run marks it failed (interrupted)."""
        try:
            try:
                self._finish_run_counted(run_id, status, ended_by)
            except duckdb.InterruptException:
                # A stop signal interrupts the statement in flight once, from another thread:
                # under load that may be this one, started after the stop was raised here.
                self._finish_run_counted(run_id, status, ended_by)
        except WarehouseError as recording:
            if ended_by is None:
                raise
            raise WarehouseError(f"{ended_by}; and the run could not be marked failed either, so the "
                                 "next run marks it failed (interrupted)") from recording

    def _finish_run_counted(self, run_id: str, status: str, ended_by: BaseException | None) -> None:
        self.finish_run(run_id, status=status, counts=self.table_counts(run_id),
                        error=None if ended_by is None else describe_error(ended_by))

    def table_counts(self, run_id: str) -> dict[str, int]:
        """Rows each run-tagged table holds for ``run_id``."""
        with self.reading() as connection:
            tagged = [
                name
                for (name,) in connection.execute(
                    "SELECT DISTINCT table_name FROM duckdb_columns() "
                    "WHERE column_name = 'run_id' AND table_name <> 'runs' ORDER BY 1"
                ).fetchall()
                if name in TABLE_KEYS
            ]
            return {
                name: connection.execute(
                    f"SELECT count(*) FROM {identifier(name)} WHERE run_id = ?", [run_id]
                ).fetchone()[0]
                for name in tagged
            }
