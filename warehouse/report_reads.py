"""Read-only reads the report and ``songmix predict`` are built from: one stored run's marts.

Everything is read through one read-only connection with ``?`` parameters; nothing here
computes, the report's logic lives in :mod:`songmix.analysis.report`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from songmix.warehouse.connection import WarehouseError, reading

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
