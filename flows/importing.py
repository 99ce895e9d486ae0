"""Bring your own data: load a Spotify-schema CSV as a run, then cluster what it holds.

``import_csv_run`` reads the file (missing columns stop it before anything is written),
stores the accepted rows as a run of source ``csv:<name>`` (tracks, spotify_features with
provider ``csv:<name>``, run_tracks, csv_genres) and the rejected ones in ``rejected_rows``,
then, unless told not to, runs ``cluster_spotify_side``: EM on the Spotify-style features
of the run's tracks (there is no audio, so no Aubio side), scored against the file's genre
column when it has one (stored as ``right_set = 'truth'``, like the demo's ground truth).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import flow
from prefect.runtime import flow_run

from songmix.flows.parameters import validate_fit_parameters
from songmix.flows.progress import stage
from songmix.flows.reporting import AGREEMENT_RESAMPLES, RunSummary, fitted_summary, publish_run
from songmix.sources.csv_import import read_spotify_csv
from songmix.tasks.compare import measure_agreement
from songmix.tasks.modeling import fit_mixtures
from songmix.tasks.options import AUTO_COVARIANCE, DEFAULT_KS, DEFAULT_PRIOR, DEFAULT_SEEDS, ModelOptions
from songmix.warehouse import records
from songmix.warehouse.source_reads import run_genres
from songmix.warehouse.store import Warehouse

CSV_SOURCE_PREFIX = "csv:"



@dataclass(frozen=True)
class ImportSummary:
    """What an import loaded and, when fitted, what its clustering found.

    Attributes
    ----------
    run_id : str
    source : str
        ``csv:<name>``.
    n_loaded, n_rejected : int
        Rows stored, rows sent to ``rejected_rows``.
    rejection_reasons : dict
        Most frequent first reasons of rejected rows -> how many rows gave them.
    clustering : RunSummary or None
        The Spotify-side model and its agreement with the genres (``None`` when not fitted).
    """

    run_id: str
    source: str
    n_loaded: int
    n_rejected: int
    rejection_reasons: dict[str, int]
    clustering: RunSummary | None = None

    def as_text(self) -> str:
        lines = [f"run {self.run_id} ({self.source}): {self.n_loaded} tracks loaded, "
                 f"{self.n_rejected} rows rejected (see the rejected_rows table)"]
        lines += [f"  rejected: {count} x {reason}" for reason, count in self.rejection_reasons.items()]
        if self.clustering is not None:
            lines.append(self.clustering.as_text())
        return "\n".join(lines)


@flow(name="songmix-import-csv", log_prints=True)
def import_csv_run(
    path: Path,
    name: str | None = None,
    fit: bool = True,
    k: int | None = None,
    ks: list[int] = DEFAULT_KS,
    n_seeds: int = DEFAULT_SEEDS,
    covariance_type: str = AUTO_COVARIANCE,
    prior: bool = DEFAULT_PRIOR,
    spotify_features: list[str] | None = None,
    random_state: int = 0,
    db_path: Path | None = None,
    out_dir: Path | None = None,
) -> ImportSummary:
    """Load a Spotify-schema CSV as a run of source ``csv:<name>`` and optionally cluster it.

    ``name`` defaults to the file's stem. The file is checked before the run starts: missing
    required columns raise :class:`~songmix.sources.csv_import.CsvSchemaError` and nothing is
    written.
    """
    from songmix.flows.settings import default_db_path, default_out_dir

    validate_fit_parameters(k=k, ks=ks, n_seeds=n_seeds)
    options = ModelOptions(ks=ks, fixed_k=k, n_seeds=n_seeds, covariance_type=covariance_type,
                           prior=prior, random_state=random_state, features={"spotify": spotify_features})
    dataset = read_spotify_csv(Path(path))
    source = CSV_SOURCE_PREFIX + (name or Path(path).stem)
    warehouse = Warehouse(db_path or default_db_path())
    run_id = str(flow_run.get_id() or "local")
    parameters = dict(path=str(path), name=name, fit=fit, k=k, ks=ks, n_seeds=n_seeds,
                      covariance_type=covariance_type, prior=prior,
                      features={"spotify": options.features["spotify"]}, random_state=random_state)
    with warehouse.recording_run(run_id, source=source, parameters=parameters,
                                 flow_run_id=flow_run.get_id()):
        loaded_at = records.utc_now()
        progress = stage("csv import", len(dataset.tracks) + len(dataset.rejected))
        tables = records.track_rows(run_id, dataset.tracks.to_dict("records"))
        tables |= records.spotify_feature_rows(run_id, source, dataset.features.to_dict("index"), loaded_at)
        tables["rejected_rows"] = dataset.rejected.assign(run_id=run_id)
        tables["csv_genres"] = pd.DataFrame({"run_id": run_id, "track_id": dataset.genres.index,
                                             "genre": dataset.genres.to_numpy()})
        warehouse.write(tables)
        progress.finish(f"{len(dataset.tracks)} loaded, {len(dataset.rejected)} rejected")
        summary = ImportSummary(
            run_id=run_id, source=source, n_loaded=len(dataset.tracks), n_rejected=len(dataset.rejected),
            rejection_reasons=dataset.rejected["reason"].str.split("; ").str[0].value_counts().head(5).to_dict())
        if dataset.tracks.empty:  # the rejected rows are stored; the run is not a success
            most_often = "".join(f", most often: {reason}" for reason in list(summary.rejection_reasons)[:1])
            raise ValueError(f"{path} holds no row that could be loaded ({len(dataset.rejected)} "
                             f"rejected{most_often}; every reason is in rejected_rows)")
        clustering = (cluster_spotify_side(warehouse, run_id, list(dataset.tracks["track_id"]), options)
                      if fit else None)
    if clustering is None:
        return summary
    return dataclasses.replace(summary, clustering=publish_run(
        warehouse, clustering, None, out_dir=out_dir or default_out_dir()))


@flow(name="cluster-spotify-side")
def cluster_spotify_side(
    warehouse: Warehouse, run_id: str, track_ids: list[str], options: ModelOptions
) -> RunSummary:
    """Model selection on the stored Spotify-style features of ``track_ids``, scored against
    their genres.

    For runs without audio (CSV imports): the ``spotify`` feature set only; without a genre
    column there is nothing to score against.
    """
    frame = warehouse.spotify_feature_frame(track_ids)[options.features["spotify"]]
    fitted_ids = list(frame.index)
    progress = stage("mixture fits", options.n_fits)
    matrix = frame.to_numpy(dtype=float)
    fits = fit_mixtures("spotify", matrix, list(frame.columns), options)
    tables = records.mixture_rows(run_id, fits, matrix, fitted_ids)
    progress.finish(f"spotify: {fits.covariance_type} k={fits.chosen_k}")
    genres = run_genres(warehouse, run_id).reindex(fitted_ids)
    labelled = genres.notna().to_numpy()
    agreement = None
    if genres.nunique() > 1:
        # Tracks without a genre are left out of the score, not given a genre of their own.
        genre_codes, _ = pd.factorize(genres[labelled])
        # Stored as the run's "truth": the same place the demo's generating groups go.
        measured = measure_agreement("spotify", fits.labels()[labelled], "truth", genre_codes,
                                     n_resamples=AGREEMENT_RESAMPLES, random_state=options.random_state)
        tables |= records.agreement_rows(run_id, measured)
        agreement = {"spotify vs genre (truth)": measured.uncertainty.to_frame()}
    warehouse.write(tables)
    return fitted_summary(warehouse, run_id, {"spotify": fits}, len(fitted_ids), agreement=agreement or {},
                          notes=() if agreement else ("the data set has no genre column: nothing to "
                                                      "compare the clustering with",))
