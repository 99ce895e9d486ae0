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

from songmix.flows.pipeline import ks_to_fit
from songmix.flows.progress import stage
from songmix.flows.reporting import AGREEMENT_RESAMPLES
from songmix.sources.csv_import import read_spotify_csv
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES
from songmix.tasks.compare import measure_agreement
from songmix.tasks.modeling import fit_mixtures
from songmix.warehouse import records
from songmix.warehouse.source_reads import run_genres
from songmix.warehouse.store import Warehouse

CSV_SOURCE_PREFIX = "csv:"
DEFAULT_KS = list(range(2, 11))



@dataclass(frozen=True)
class ImportSummary:
    """What an import loaded and, when fitted, how its clustering relates to the genres.

    Attributes
    ----------
    run_id : str
    source : str
        ``csv:<name>``.
    n_loaded, n_rejected : int
        Rows stored, rows sent to ``rejected_rows``.
    rejection_reasons : dict
        Most frequent first reasons of rejected rows -> how many rows gave them.
    chosen_k : int or None
        The k the Spotify-side EM chose (``None`` when not fitted).
    genre_agreement : pandas.DataFrame or None
        ARI, NMI, AMI of the clustering with the genres (value, interval, chance, p-value).
    """

    run_id: str
    source: str
    n_loaded: int
    n_rejected: int
    rejection_reasons: dict[str, int]
    chosen_k: int | None = None
    genre_agreement: pd.DataFrame | None = None

    def as_text(self) -> str:
        lines = [f"run {self.run_id} ({self.source}): {self.n_loaded} tracks loaded, "
                 f"{self.n_rejected} rows rejected (see the rejected_rows table)"]
        lines += [f"  rejected: {count} x {reason}" for reason, count in self.rejection_reasons.items()]
        if self.chosen_k is not None:
            lines.append(f"  spotify features: k = {self.chosen_k}")
        if self.genre_agreement is not None:
            table = self.genre_agreement
            lines.append(f"  spotify vs genre (truth)  ARI {table.loc['ari', 'value']:.3f}  "
                         f"NMI {table.loc['nmi', 'value']:.3f}  AMI {table.loc['ami', 'value']:.3f}")
        return "\n".join(lines)


@flow(name="songmix-import-csv", log_prints=True)
def import_csv_run(
    path: Path,
    name: str | None = None,
    fit: bool = True,
    k: int | None = None,
    ks: list[int] = DEFAULT_KS,
    n_seeds: int = 10,
    covariance_type: str = "full",
    random_state: int = 0,
    db_path: Path | None = None,
) -> ImportSummary:
    """Load a Spotify-schema CSV as a run of source ``csv:<name>`` and optionally cluster it.

    ``name`` defaults to the file's stem. The file is checked before the run starts: missing
    required columns raise :class:`~songmix.sources.csv_import.CsvSchemaError` and nothing is
    written.
    """
    from songmix.flows.settings import default_db_path

    dataset = read_spotify_csv(Path(path))
    source = CSV_SOURCE_PREFIX + (name or Path(path).stem)
    warehouse = Warehouse(db_path or default_db_path())
    run_id = str(flow_run.get_id() or "local")
    parameters = dict(path=str(path), name=name, fit=fit, k=k, ks=ks, n_seeds=n_seeds,
                      covariance_type=covariance_type, random_state=random_state)
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
        if fit:
            chosen_k, agreement = cluster_spotify_side(
                warehouse, run_id, list(dataset.tracks["track_id"]), ks=ks_to_fit(ks, k),
                fixed_k=k, n_seeds=n_seeds, covariance_type=covariance_type, random_state=random_state)
            summary = dataclasses.replace(summary, chosen_k=chosen_k, genre_agreement=agreement)
    return summary


@flow(name="cluster-spotify-side")
def cluster_spotify_side(
    warehouse: Warehouse,
    run_id: str,
    track_ids: list[str],
    *,
    ks: list[int],
    fixed_k: int | None,
    n_seeds: int,
    covariance_type: str,
    random_state: int,
) -> tuple[int, pd.DataFrame | None]:
    """EM on the stored Spotify-style features of ``track_ids``, scored against their genres.

    For runs without audio (CSV imports): the ``spotify`` feature set only. Returns the
    chosen k and the agreement table with the genres (``None`` without a genre column).
    """
    frame = warehouse.spotify_feature_frame(track_ids)[list(SPOTIFY_CLUSTER_FEATURES)]
    fitted_ids = list(frame.index)
    progress = stage("mixture fits", len(ks) * n_seeds)
    matrix = frame.to_numpy(dtype=float)
    fits = fit_mixtures("spotify", matrix, list(frame.columns), ks,
                        fixed_k=fixed_k, n_seeds=n_seeds, covariance_type=covariance_type,
                        random_state=random_state)
    tables = records.mixture_rows(run_id, fits, matrix, fitted_ids)
    progress.finish(f"spotify: k={fits.chosen_k}")
    genres = run_genres(warehouse, run_id).reindex(fitted_ids)
    labelled = genres.notna().to_numpy()
    agreement = None
    if genres.nunique() > 1:
        # Tracks without a genre are left out of the score, not given a genre of their own.
        genre_codes, _ = pd.factorize(genres[labelled])
        # Stored as the run's "truth": the same place the demo's generating groups go.
        measured = measure_agreement("spotify", fits.labels()[labelled], "truth", genre_codes,
                                     n_resamples=AGREEMENT_RESAMPLES, random_state=random_state)
        tables |= records.agreement_rows(run_id, measured)
        agreement = measured.uncertainty.to_frame()
    warehouse.write(tables)
    return fits.chosen_k, agreement
