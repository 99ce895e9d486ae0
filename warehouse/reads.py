"""Every read of the warehouse that songmix's own code makes, by question.

Two kinds of connection, one per kind of caller:

- the flows (the warehouse's one writer process) read through :meth:`Warehouse.reading`;
- commands that only read (``report``, ``predict``, ``runs``) open the file through
  :func:`~songmix.warehouse.connection.reading`, read-only and locked down by DuckDB.

Every value reaches SQL as a parameter; nothing here computes (the report's logic lives in
:mod:`songmix.analysis.report`). Ad-hoc SQL, the schema and export are
:mod:`songmix.warehouse.query`; the writes are :mod:`songmix.warehouse.store`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from songmix.warehouse.connection import WarehouseError, reading
from songmix.warehouse.store import Warehouse


def _frame(warehouse: Warehouse, sql: str, parameters: Sequence[object]) -> pd.DataFrame:
    """A parameterized read on the writer process's connection."""
    with warehouse.reading() as connection:
        return connection.execute(sql, list(parameters)).df()


def _frame_at(path: Path | str, sql: str, parameters: Sequence[object]) -> pd.DataFrame:
    """A parameterized read on a locked-down read-only connection."""
    with reading(path) as connection:
        return connection.execute(sql, list(parameters)).df()


# -- runs --------------------------------------------------------------------------------
def previous_completed_runs(warehouse: Warehouse, run_id: str, *, source: str) -> list[str]:
    """The runs on ``source`` that completed and started before ``run_id`` did, newest first
    (empty for a source's first run)."""
    with warehouse.reading() as connection:
        found = connection.execute(
            "SELECT previous.run_id FROM runs previous, runs current "
            "WHERE current.run_id = ? AND previous.run_id <> current.run_id "
            "AND previous.source = ? AND previous.status = 'completed' "
            "AND previous.started_at <= current.started_at "
            "ORDER BY previous.started_at DESC, previous.finished_at DESC",
            [run_id, source],
        ).fetchall()
    return [previous for (previous,) in found]


def latest_completed_run(warehouse: Warehouse, *, source: str | None = None) -> str | None:
    """The most recently started completed run (on ``source`` when given), or None."""
    with warehouse.reading() as connection:
        found = connection.execute(
            "SELECT run_id FROM runs WHERE status = 'completed' "
            "AND (CAST(? AS VARCHAR) IS NULL OR source = ?) "
            "ORDER BY started_at DESC LIMIT 1",
            [source, source],
        ).fetchone()
    return found[0] if found else None


def run_parameters(warehouse: Warehouse, run_id: str) -> dict:
    """The parameters ``run_id`` was started with (empty if the run is unknown)."""
    with warehouse.reading() as connection:
        found = connection.execute(
            "SELECT parameters FROM runs WHERE run_id = ?", [run_id]
        ).fetchone()
    return json.loads(found[0]) if found else {}


def run_source(warehouse: Warehouse, run_id: str) -> str:
    """The source ``run_id`` read its tracks from.

    Raises
    ------
    ValueError
        No run ``run_id`` is stored.
    """
    with warehouse.reading() as connection:
        found = connection.execute("SELECT source FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if found is None:
        raise ValueError(f"no run {run_id!r} in {warehouse.path}; list runs with "
                         "`songmix sql \"select run_id, source, status from runs\"`")
    return found[0]


def recent_runs(path: Path | str, limit: int) -> pd.DataFrame:
    """The ``limit`` latest runs, newest first: run_id, source, status, started_at, models
    (``"spotify k=6 diag (100 tracks), ..."``, NULL without any) and warnings (runs.warnings)."""
    return _frame_at(
        path,
        "SELECT r.run_id, r.source, r.status, r.started_at, coalesce(r.warnings, []) AS warnings, "
        "  (SELECT string_agg(m.feature_set || ' k=' || m.k || ' ' || m.covariance_type || ' ('"
        "     || m.n_samples || ' tracks)', ', ' ORDER BY m.feature_set DESC) "
        "   FROM gmm_models m WHERE m.run_id = r.run_id AND m.chosen) AS models "
        "FROM runs r ORDER BY r.started_at DESC LIMIT ?",
        [limit],
    )


# -- what a run holds and lacks: the stages' work lists -----------------------------------
def run_tracks(warehouse: Warehouse, run_id: str) -> pd.DataFrame:
    """The ``tracks`` rows of the run's tracks, in the run's order."""
    return _frame(
        warehouse,
        "SELECT t.* EXCLUDE (run_id) FROM run_tracks r JOIN tracks t USING (track_id) "
        "WHERE r.run_id = ? ORDER BY r.position", [run_id])


def tracks_lacking_features(warehouse: Warehouse, run_id: str) -> tuple[list[str], int]:
    """The run's tracks without stored Spotify-style features (in the run's order), and
    how many have them."""
    found = _frame(
        warehouse,
        "SELECT r.track_id, f.track_id IS NOT NULL AS stored FROM run_tracks r "
        "LEFT JOIN spotify_features f USING (track_id) WHERE r.run_id = ? ORDER BY r.position",
        [run_id])
    return list(found.loc[~found["stored"], "track_id"]), int(found["stored"].sum())


def tracks_lacking_audio(warehouse: Warehouse, run_id: str) -> tuple[pd.DataFrame, int]:
    """The run's tracks without a stored audio file still on disk: ``track_id,
    preview_url, isrc`` in the run's order; and how many have one."""
    found = _frame(
        warehouse,
        "SELECT r.track_id, t.preview_url, t.isrc, a.path FROM run_tracks r "
        "JOIN tracks t USING (track_id) "
        "LEFT JOIN audio_files a ON a.track_id = r.track_id AND a.status = 'ok' "
        "WHERE r.run_id = ? ORDER BY r.position", [run_id])
    present = found["path"].map(lambda path: isinstance(path, str) and Path(path).is_file())
    wanted = found.loc[~present, ["track_id", "preview_url", "isrc"]].astype(object)
    return wanted.where(wanted.notna(), None), int(present.sum())


def audio_to_extract(warehouse: Warehouse, run_id: str, *, extractor_version: str) -> tuple[pd.DataFrame, int]:
    """Stored audio of the run's tracks that ``extractor_version`` has not analysed:
    ``sha256, path``, one row per distinct file; and how many files it has analysed."""
    found = _frame(
        warehouse,
        "SELECT a.sha256, any_value(a.path) AS path, "
        "bool_or(x.sha256 IS NOT NULL) AS extracted FROM run_tracks r "
        "JOIN audio_files a ON a.track_id = r.track_id AND a.status = 'ok' "
        "LEFT JOIN aubio_features x ON x.sha256 = a.sha256 AND x.extractor_version = ? "
        "WHERE r.run_id = ? GROUP BY a.sha256 ORDER BY min(r.position)",
        [extractor_version, run_id])
    return found.loc[~found["extracted"], ["sha256", "path"]], int(found["extracted"].sum())


def spotify_feature_frame(warehouse: Warehouse, run_id: str) -> pd.DataFrame:
    """Spotify-style features of the run's tracks, indexed by track_id, in the run's order."""
    return _frame(
        warehouse,
        "SELECT f.* EXCLUDE (run_id) FROM run_tracks r JOIN spotify_features f USING (track_id) "
        "WHERE r.run_id = ? ORDER BY r.position", [run_id]).set_index("track_id")


def aubio_feature_frame(warehouse: Warehouse, run_id: str) -> pd.DataFrame:
    """Aubio features of the run's tracks (through their audio file) and the extractor
    version that computed them, indexed by track_id, in the run's order."""
    return _frame(
        warehouse,
        "SELECT r.track_id, x.* EXCLUDE (sha256, run_id, flags) "
        "FROM run_tracks r JOIN audio_files a ON a.track_id = r.track_id AND a.status = 'ok' "
        "JOIN aubio_features x ON x.sha256 = a.sha256 WHERE r.run_id = ? ORDER BY r.position",
        [run_id]).set_index("track_id")


def truth_frame(warehouse: Warehouse, run_id: str) -> pd.DataFrame:
    """Ground truth of the run's tracks, indexed by track_id: ``group_name`` (the demo's
    group, a folder's truth.csv group, or a data set's genre; None where unknown), and
    ``tempo``, ``key``, ``mode`` where known (NaN otherwise)."""
    return _frame(
        warehouse,
        "SELECT r.track_id, coalesce(t.group_name, g.genre) AS group_name, "
        "t.tempo, t.\"key\", t.\"mode\" FROM run_tracks r "
        "LEFT JOIN demo_truth t USING (track_id) "
        # A track imported by several data sets: this run's genre first.
        "LEFT JOIN (SELECT track_id, arg_max(genre, run_id = ?) AS genre FROM csv_genres "
        "GROUP BY track_id) g USING (track_id) "
        "WHERE r.run_id = ? ORDER BY r.position", [run_id, run_id]).set_index("track_id")


def fresh_search_pages(
    warehouse: Warehouse, *, source_key: str, query: str, offsets: Sequence[int], since: datetime
) -> dict[int, dict]:
    """Stored pages of ``query`` at ``offsets`` fetched from this source since ``since``.

    Parameters
    ----------
    warehouse : Warehouse
    source_key : str
        The source's ``cache_key`` (``spotify``, ``demo:<fingerprint>``): pages of another
        catalog never stand in.
    query : str
        The exact search query (or ``playlist:<id>``).
    offsets : sequence of int
        Offsets wanted.
    since : datetime
        Naive UTC; older pages are stale (search results change from week to week).

    Returns
    -------
    dict
        ``{offset: {"query", "offset", "fetched_at", "page"}}`` with the newest copy of each
        page, in the shape the tracks stage stores (a fetch task's page, stamped when it arrived).
    """
    with warehouse.reading() as connection:
        connection.register("wanted", pd.DataFrame({"wanted_offset": list(offsets)}, dtype="int64"))
        try:
            rows = connection.execute(
                'SELECT "offset", fetched_at, page FROM search_pages '
                'JOIN wanted ON "offset" = wanted.wanted_offset '
                "WHERE source_key = ? AND query = ? AND fetched_at >= ? "
                'QUALIFY row_number() OVER (PARTITION BY "offset" ORDER BY fetched_at DESC) = 1',
                [source_key, query, since],
            ).fetchall()
        finally:
            connection.unregister("wanted")
    return {offset: {"query": query, "offset": offset, "fetched_at": fetched_at, "page": json.loads(page)}
            for offset, fetched_at, page in rows}


def rejection_reasons(warehouse: Warehouse, run_id: str, *, top: int = 5) -> tuple[int, dict[str, int]]:
    """How many rows of an imported file the run rejected, and its ``top`` most frequent first
    reasons -> how many rows gave them."""
    with warehouse.reading() as connection:
        rows = connection.execute(
            "SELECT split_part(reason, '; ', 1) AS first, count(*) AS n FROM rejected_rows "
            "WHERE run_id = ? GROUP BY first ORDER BY n DESC, first", [run_id]).fetchall()
    return sum(n for _, n in rows), {reason: n for reason, n in rows[:top]}


# -- fitted models and their clusterings --------------------------------------------------
def fitted_track_ids(warehouse: Warehouse, run_id: str) -> list[str]:
    """The tracks the run's mixtures were fitted on, in row order (empty if none)."""
    with warehouse.reading() as connection:
        found = connection.execute(
            "SELECT track_ids FROM gmm_models WHERE run_id = ? AND chosen ORDER BY feature_set LIMIT 1",
            [run_id],
        ).fetchone()
    return list(found[0]) if found else []


def chosen_models(warehouse: Warehouse, run_id: str) -> pd.DataFrame:
    """Each feature set's chosen model: ``feature_set, k, covariance_type, warnings``
    (a list, empty when none)."""
    return _frame(
        warehouse,
        "SELECT feature_set, k, covariance_type, coalesce(warnings, []) AS warnings "
        "FROM gmm_models WHERE run_id = ? AND chosen ORDER BY feature_set", [run_id])


def chosen_assignments(warehouse: Warehouse, run_id: str) -> pd.DataFrame:
    """Each track's cluster under the k the run chose, per feature set.

    Returns
    -------
    DataFrame with columns feature_set, k, track_id, cluster (empty when the run fitted
    nothing).
    """
    return _frame(
        warehouse,
        "SELECT a.feature_set, a.k, a.track_id, a.cluster FROM gmm_assignments a "
        "JOIN gmm_models m USING (run_id, feature_set, k) "
        "WHERE a.run_id = ? AND m.chosen ORDER BY a.feature_set, a.track_id",
        [run_id],
    )


#: Feature sets in the order summaries list them.
_SET_ORDER = {"spotify": 0, "aubio": 1}


@dataclass(frozen=True)
class StoredClustering:
    """One feature set's clusterings of a run, as stored, in the fitted tracks' order.

    Attributes
    ----------
    feature_set : str
    chosen_k : int
    covariance_type : str
        The chosen model's.
    warnings : tuple of str
        Why the chosen model may not deserve trust (``gmm_models.warnings``).
    labels_by_k : dict[int, ndarray of shape (n_tracks,)]
        Each fitted k's most probable component per track.
    """

    feature_set: str
    chosen_k: int
    covariance_type: str
    warnings: tuple[str, ...]
    labels_by_k: dict[int, np.ndarray]

    @property
    def labels(self) -> np.ndarray:
        """The chosen k's labels."""
        return self.labels_by_k[self.chosen_k]


def stored_clusterings(warehouse: Warehouse, run_id: str, fitted_ids: Sequence[str]) -> dict[str, StoredClustering]:
    """Every feature set's stored clusterings of run ``run_id`` (``fitted_ids``:
    :func:`fitted_track_ids`), by feature set."""
    chosen = chosen_models(warehouse, run_id)
    fitted = pa.array(list(fitted_ids), pa.string())
    clusterings = {}
    with warehouse.reading() as connection:
        for model in sorted(chosen.itertuples(index=False), key=lambda model: _SET_ORDER[model.feature_set]):
            labels_by_k = {}
            ks = connection.execute("SELECT k FROM gmm_models WHERE run_id = ? AND feature_set = ? ORDER BY k",
                                    [run_id, model.feature_set]).fetchall()
            for (k,) in ks:
                assigned = connection.execute(
                    "SELECT track_id, cluster FROM gmm_assignments WHERE run_id = ? AND feature_set = ? AND k = ?",
                    [run_id, model.feature_set, k]).to_arrow_table()
                labels = np.full(len(fitted), -1, dtype=np.int64)
                positions = pc.index_in(assigned["track_id"], value_set=fitted).to_numpy(zero_copy_only=False)
                labels[positions.astype(np.int64)] = assigned["cluster"].to_numpy()
                labels_by_k[k] = labels
            clusterings[model.feature_set] = StoredClustering(
                feature_set=model.feature_set, chosen_k=int(model.k), covariance_type=model.covariance_type,
                warnings=tuple(model.warnings), labels_by_k=labels_by_k)
    return clusterings


# -- for `songmix predict`: a run's models, read-only ------------------------------------
def chosen_model_components(path: Path | str, run_id: str | None = None) -> pd.DataFrame:
    """The models a run used (default: the latest completed run that fitted any), one row
    per feature set and component: run_id, source, started_at, feature_set, k,
    covariance_type, n_samples, feature_version, log_density_p01, warnings, features,
    scaler_mean, scaler_scale, component, weight, mean, covariance (standardized, row-major
    d*d)."""
    return _frame_at(
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


def matched_clusters(path: Path | str, run_id: str) -> pd.DataFrame:
    """The run's Hungarian pairing of Spotify clusters with Aubio clusters."""
    return _frame_at(
        path,
        "SELECT left_cluster AS spotify_cluster, right_cluster AS aubio_cluster, n_tracks "
        "FROM contingency WHERE run_id = ? AND left_set = 'spotify' AND right_set = 'aubio' "
        "AND matched ORDER BY 1",
        [run_id],
    )


def matched_cluster_names(path: Path | str, run_id: str) -> pd.DataFrame:
    """Name of every cluster of the run's chosen Spotify and Aubio models, with its partner.

    Returns
    -------
    DataFrame
        Columns ``side`` (spotify / aubio), ``cluster``, ``cluster_name``, ``partner``
        (the matched cluster on the other side, <NA> when unmatched), ``partner_name``.
    """
    with reading(path) as connection:
        if not _has_report_marts(connection):
            return pd.DataFrame(columns=["side", "cluster", "cluster_name", "partner", "partner_name"])
        return connection.execute(
            "WITH named AS (SELECT DISTINCT side, cluster, pair, cluster_name FROM cluster_profiles "
            "  WHERE run_id = ? AND left_set = 'spotify' AND right_set = 'aubio') "
            "SELECT n.side, n.cluster, n.cluster_name, p.cluster AS partner, p.cluster_name AS partner_name "
            "FROM named n LEFT JOIN named p ON p.pair = n.pair AND p.side <> n.side "
            "ORDER BY n.side, n.cluster",
            [run_id],
        ).df()


def track_features(path: Path | str, track_id: str) -> dict[str, pd.DataFrame]:
    """A stored track's name and its Spotify and Aubio feature rows (empty when absent)."""
    return {
        "track": _frame_at(path, "SELECT track_id, name, artists FROM tracks WHERE track_id = ?",
                       [track_id]),
        "spotify": _frame_at(path, "SELECT * FROM spotify_features WHERE track_id = ?", [track_id]),
        "aubio": _frame_at(
            path,
            "SELECT x.* FROM audio_files a JOIN aubio_features x USING (sha256) "
            "WHERE a.track_id = ? AND a.status = 'ok'",
            [track_id],
        ),
    }


# -- the report's tables, read-only ---------------------------------------------------------
# One query per table of the report, each taking the run id as its only parameter.
_REPORT_QUERIES: dict[str, str] = {
    "run": "SELECT run_id, source, parameters, code_version, started_at, finished_at, status "
           "FROM runs WHERE run_id = ?",
    "comparison": "SELECT * EXCLUDE (run_id) FROM comparison WHERE run_id = ? "
                  "ORDER BY left_set, right_set, metric",
    "agreement_by_k": "SELECT * EXCLUDE (run_id) FROM agreement_by_k WHERE run_id = ? "
                      "ORDER BY comparison, k",
    "cluster_pairs": "SELECT * EXCLUDE (run_id) FROM cluster_pairs WHERE run_id = ? "
                     "ORDER BY left_set, right_set, pair",
    "cluster_profiles": "SELECT * EXCLUDE (run_id) FROM cluster_profiles WHERE run_id = ? "
                        "ORDER BY left_set, right_set, side, cluster, feature",
    "contingency": "SELECT * EXCLUDE (run_id) FROM contingency WHERE run_id = ? "
                   "ORDER BY left_set, right_set, left_cluster, right_cluster",
    "feature_agreement": "SELECT * EXCLUDE (run_id) FROM feature_agreement WHERE run_id = ? "
                         "ORDER BY spotify_feature, measure",
    "extractor_accuracy": "SELECT metric, value, n_tracks FROM extractor_accuracy WHERE run_id = ? "
                          "ORDER BY metric",
    "model_selection": "SELECT * EXCLUDE (run_id) FROM model_selection WHERE run_id = ? "
                       "ORDER BY feature_set = 'spotify' DESC, feature_set, covariance_type, k",
    "fit_curves": "SELECT feature_set, k, seed, bic, aic FROM gmm_fits "
                  "WHERE run_id = ? AND bic IS NOT NULL ORDER BY feature_set, k, seed",
    "models": "SELECT feature_set, k, covariance_type, coalesce(warnings, []) AS warnings, features, "
              "scaler_mean, scaler_scale, "
              "n_samples, track_ids FROM gmm_models WHERE run_id = ? AND chosen "
              "ORDER BY feature_set = 'spotify' DESC, feature_set",
    "components": "SELECT c.feature_set, c.k, c.component, c.weight, c.mean_original, c.covariance "
                  "FROM gmm_components c JOIN gmm_models m USING (run_id, feature_set, k) "
                  "WHERE c.run_id = ? AND m.chosen ORDER BY c.feature_set, c.component",
    "assignments": "SELECT a.feature_set, a.track_id, a.cluster FROM gmm_assignments a "
                   "JOIN gmm_models m USING (run_id, feature_set, k) WHERE a.run_id = ? AND m.chosen",
    "spotify_features": "SELECT f.* EXCLUDE (run_id, provider) FROM run_tracks r "
                        "JOIN spotify_features f USING (track_id) WHERE r.run_id = ? ORDER BY r.position",
    "aubio_features": "SELECT r.track_id, x.* EXCLUDE (sha256, run_id, extractor_version, flags) "
                      "FROM run_tracks r JOIN audio_files a ON a.track_id = r.track_id AND a.status = 'ok' "
                      "JOIN aubio_features x ON x.sha256 = a.sha256 WHERE r.run_id = ? ORDER BY r.position",
    # Every track of the run with what it has; the report lists those lacking a side.
    "track_coverage": "SELECT r.track_id, t.name, t.artists, f.track_id IS NOT NULL AS has_spotify, "
                      "x.sha256 IS NOT NULL AS has_aubio, "
                      "(SELECT string_agg(i.stage || ': ' || i.reason, '; ' ORDER BY i.stage) "
                      " FROM item_failures i WHERE i.run_id = r.run_id "
                      " AND i.item_id IN (r.track_id, a.sha256)) AS reasons "
                      "FROM run_tracks r LEFT JOIN tracks t ON t.track_id = r.track_id "
                      "LEFT JOIN spotify_features f ON f.track_id = r.track_id "
                      "LEFT JOIN audio_files a ON a.track_id = r.track_id AND a.status = 'ok' "
                      "LEFT JOIN aubio_features x ON x.sha256 = a.sha256 "
                      "WHERE r.run_id = ? ORDER BY r.position",
}


_LATEST_FITTED_RUN = (
    "SELECT r.run_id FROM runs r WHERE EXISTS (SELECT 1 FROM gmm_models m WHERE m.run_id = r.run_id) "
    "ORDER BY (r.status = 'completed') DESC, r.started_at DESC LIMIT 1"
)


def _has_report_marts(connection) -> bool:
    """False for a warehouse last written before the report's tables existed (the last of
    them, model_selection, came with schema 9)."""
    return bool(connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'model_selection'").fetchone()[0])


def report_tables(path: Path | str, run_id: str | None = None) -> dict[str, pd.DataFrame]:
    """Every table the report of one run needs, by name (see ``_REPORT_QUERIES``).

    Parameters
    ----------
    path : Path or str
        The warehouse file.
    run_id : str, optional
        Default: the latest run that fitted models, completed runs first.

    Raises
    ------
    WarehouseError
        No warehouse, no run with models, or ``run_id`` unknown.
    """
    with reading(path) as connection:
        if not _has_report_marts(connection):
            raise WarehouseError(f"{path} predates the report's tables; run `songmix run` once "
                                 "with this songmix to upgrade it and compute them")
        if run_id is None:
            found = connection.execute(_LATEST_FITTED_RUN).fetchone()
            if found is None:
                raise WarehouseError(f"no run in {path} has fitted models yet; run `songmix run` first")
            run_id = found[0]
        tables = {name: connection.execute(sql, [run_id]).df() for name, sql in _REPORT_QUERIES.items()}
    if tables["run"].empty:
        raise WarehouseError(
            f"no run {run_id!r} in {path}; list runs with "
            "`songmix sql \"select run_id, status, started_at from runs order by started_at\"`")
    return tables

