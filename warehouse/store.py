"""The one writer of the warehouse, and the read helpers the flows need.

Every write is one transaction on a short-lived connection: the stage's rows land whole or
not at all, and between stages the file is free for readers (``songmix sql``). Writes are
idempotent: rows are replaced on their natural key, so a rerun never duplicates them.
Values reach SQL only as parameters or registered DataFrames; table and column names come
from the allow-list below.
"""

from __future__ import annotations

import contextlib
import json
from importlib.metadata import version
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from songmix.warehouse.checks import check_written
from songmix.warehouse.connection import WarehouseError, connect, migrate, validate_path
from songmix.warehouse.records import utc_now

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


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


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
        f"SELECT EXISTS (SELECT 1 FROM {_quoted(table)} WHERE run_id IN (SELECT unnest(?)))", [run_ids]
    ).fetchone()[0]


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def _mark_interrupted_runs(connection: duckdb.DuckDBPyConnection, host: str) -> None:
    """Mark failed the runs still 'running' whose writer process on ``host`` is gone."""
    running = connection.execute(
        "SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ? AND pid IS NOT NULL",
        [host],
    ).fetchall()
    for run_id, pid in running:
        if pid != os.getpid() and not _process_exists(pid):
            connection.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, "
                "error = 'interrupted: its process ended without finishing the run' "
                "WHERE run_id = ?",
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
        with connect(self.path, read_only=False) as connection:
            migrate(connection, self.path)

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
        with connect(self.path, read_only=False) as connection:
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
        with connect(self.path, read_only=False) as connection:
            yield connection

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
                    f"{_quoted(table)}.{_quoted(c)} = incoming_rows.{_quoted(c)}" for c in key
                )
                connection.execute(f"DELETE FROM {_quoted(table)} USING incoming_rows WHERE {match}")
            columns = ", ".join(_quoted(c) for c in incoming.column_names)
            try:
                connection.execute(
                    f"INSERT INTO {_quoted(table)} ({columns}) SELECT {columns} FROM incoming_rows"
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

        Runs left 'running' by a process of this machine that no longer exists (killed,
        crashed) are marked failed with reason 'interrupted' first: their finished stages
        stay, and this run redoes only what they lacked.
        """
        host = socket.gethostname()
        with self.transaction() as connection:
            _mark_interrupted_runs(connection, host)
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
    ) -> Iterator[None]:
        """Record the block as run ``run_id``: running, then completed, or failed with the
        error that ended it (which is re-raised); per-table counts either way."""
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
            self.finish_run(run_id, status=status, counts=self.table_counts(run_id),
                            error=None if ended_by is None else f"{type(ended_by).__name__}: {ended_by}")
        except WarehouseError as recording:
            if ended_by is None:
                raise
            raise WarehouseError(f"{ended_by}; and the run could not be marked failed either, so the "
                                 "next run marks it failed (interrupted)") from recording

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
                    f"SELECT count(*) FROM {_quoted(name)} WHERE run_id = ?", [run_id]
                ).fetchone()[0]
                for name in tagged
            }

    # -- read helpers for "do no work already held" ------------------------------------
    def _select_in(self, sql: str, ids: Sequence[str]) -> pd.DataFrame:
        """Run ``sql`` with the registered one-column frame ``wanted(id)``."""
        with self.reading() as connection:
            connection.register("wanted", pd.DataFrame({"id": list(ids)}, dtype="string"))
            try:
                return connection.execute(sql).df()
            finally:
                connection.unregister("wanted")

    def tracks_with_features(self, track_ids: Sequence[str]) -> set[str]:
        """The subset of ``track_ids`` whose Spotify-style features are stored."""
        found = self._select_in(
            "SELECT track_id FROM spotify_features JOIN wanted ON track_id = wanted.id",
            track_ids,
        )
        return set(found["track_id"])

    def stored_audio(self, track_ids: Sequence[str]) -> pd.DataFrame:
        """Stored audio rows (track_id, status, sha256, path) for ``track_ids``."""
        return self._select_in(
            "SELECT track_id, status, sha256, path, error FROM audio_files "
            "JOIN wanted ON track_id = wanted.id",
            track_ids,
        )

    def extracted_sha256s(self, sha256s: Sequence[str], *, extractor_version: str) -> set[str]:
        """The subset of ``sha256s`` already extracted by this extractor version."""
        with self.reading() as connection:
            connection.register("wanted", pd.DataFrame({"id": list(sha256s)}, dtype="string"))
            try:
                found = connection.execute(
                    "SELECT sha256 FROM aubio_features JOIN wanted ON sha256 = wanted.id "
                    "WHERE extractor_version = ?",
                    [extractor_version],
                ).fetchall()
            finally:
                connection.unregister("wanted")
        return {sha for (sha,) in found}

    def spotify_feature_frame(self, track_ids: Sequence[str]) -> pd.DataFrame:
        """Spotify-style features of ``track_ids``, indexed by track_id, in their order."""
        frame = self._select_in(
            "SELECT f.* EXCLUDE (run_id) FROM spotify_features f "
            "JOIN wanted ON f.track_id = wanted.id",
            track_ids,
        ).set_index("track_id")
        return frame.reindex([t for t in track_ids if t in frame.index])

    def aubio_feature_frame(self, track_ids: Sequence[str]) -> pd.DataFrame:
        """Aubio features of ``track_ids`` (through their audio file) and the extractor version
        that computed them, indexed by track_id."""
        frame = self._select_in(
            "SELECT a.track_id, x.* EXCLUDE (sha256, run_id, flags) "
            "FROM audio_files a JOIN wanted ON a.track_id = wanted.id "
            "JOIN aubio_features x ON x.sha256 = a.sha256 WHERE a.status = 'ok'",
            track_ids,
        ).set_index("track_id")
        return frame.reindex([t for t in track_ids if t in frame.index])

    def fitted_track_ids(self, run_id: str) -> list[str]:
        """The tracks the run's mixtures were fitted on, in row order (empty if none)."""
        with self.reading() as connection:
            found = connection.execute(
                "SELECT track_ids FROM gmm_models WHERE run_id = ? ORDER BY feature_set, k LIMIT 1",
                [run_id],
            ).fetchone()
        return list(found[0]) if found else []

    def truth_frame(self, track_ids: Sequence[str]) -> pd.DataFrame:
        """Demo ground truth of ``track_ids`` (empty for sources without truth)."""
        frame = self._select_in(
            "SELECT t.* EXCLUDE (run_id) FROM demo_truth t JOIN wanted ON t.track_id = wanted.id",
            track_ids,
        ).set_index("track_id")
        return frame.reindex([t for t in track_ids if t in frame.index])

