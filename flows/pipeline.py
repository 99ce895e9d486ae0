"""The songmix pipeline: does clustering what songs sound like reproduce Spotify's view?

Read top to bottom, this is the whole journey of the notebook it continues: list the
tracks, get Spotify's audio features, download the previews, extract Aubio features, fit
Gaussian mixtures on both feature sets over many seeds and k, and compare the clusterings.
Every stage stores its tables in the DuckDB warehouse before the next begins.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from songmix.flows.drift import drift
from songmix.flows.parameters import validate_parameters
from songmix.flows.reporting import RunSummary, compare, publish_run
from songmix.flows.progress import reporter
from songmix.flows.settings import (
    default_data_dir,
    default_db_path,
    default_out_dir,
    validate_out_dir,
)
from songmix.flows.stages import (
    cluster,
    collect_audio,
    collect_spotify_features,
    collect_tracks,
    extract_features,
)
from songmix.sources.connect import open_source
from songmix.tasks.options import AUTO_COVARIANCE, DEFAULT_KS, DEFAULT_PRIOR, DEFAULT_SEEDS, ModelOptions
from songmix.warehouse.run_lock import one_run_at_a_time
from songmix.warehouse.store import Warehouse


@flow(name="songmix-pipeline", log_prints=True)
@one_run_at_a_time(default_db_path)  # concurrent runs on one warehouse queue on <db>.lock
def pipeline(
    source: str = "demo",
    year: int = 2020,
    n_tracks: int = 1000,
    playlist: str | None = None,
    k: int | None = None,
    ks: list[int] = DEFAULT_KS,
    n_seeds: int = DEFAULT_SEEDS,
    covariance_type: str = AUTO_COVARIANCE,
    prior: bool = DEFAULT_PRIOR,
    spotify_features: list[str] | None = None,
    aubio_features: list[str] | None = None,
    random_state: int = 0,
    demo_groups: int = 6,
    demo_audio_mismatch: bool = False,
    db_path: Path | None = None,
    data_dir: Path | None = None,
    out_dir: Path | None = None,
) -> RunSummary:
    """Run the whole pipeline once; returns the run's summary (also stored and published).

    Parameters are stored in plain text by Prefect and in ``runs.parameters``: credentials
    never pass through here (they come from the environment or Prefect Secret blocks).
    ``covariance_type``, ``prior`` and the feature lists: see
    :class:`~songmix.tasks.modeling.ModelOptions`.
    """
    db_path, data_dir, out_dir = (db_path or default_db_path(), data_dir or default_data_dir(),
                                  out_dir or default_out_dir())
    validate_parameters(n_tracks=n_tracks, k=k, ks=ks, n_seeds=n_seeds, demo_groups=demo_groups,
                        year=year)
    validate_out_dir(out_dir)
    options = ModelOptions(ks=ks, fixed_k=k, n_seeds=n_seeds, covariance_type=covariance_type,
                           prior=prior, random_state=random_state,
                           features={"spotify": spotify_features, "aubio": aubio_features})
    warehouse = Warehouse(db_path)
    run_id = str(flow_run.get_id() or "local")
    parameters = dict(source=source, year=year, n_tracks=n_tracks, playlist=playlist, k=k, ks=ks,
                      n_seeds=n_seeds, covariance_type=covariance_type, prior=prior,
                      features=options.features, random_state=random_state,
                      demo_groups=demo_groups, demo_audio_mismatch=demo_audio_mismatch)
    with warehouse.recording_run(run_id, source=source, parameters=parameters,
                                 flow_run_id=flow_run.get_id()):
        with open_source(source, year=year, n_tracks=n_tracks, data_dir=data_dir,
                         playlist=playlist, demo_groups=demo_groups,
                         demo_audio_mismatch=demo_audio_mismatch,
                         render_progress=reporter("demo previews")) as tracks_source:
            tracks = collect_tracks(warehouse, run_id, tracks_source, n_tracks)
            track_ids = [t["track_id"] for t in tracks]
            collect_spotify_features(warehouse, run_id, tracks_source, track_ids)
            collect_audio(warehouse, run_id, tracks_source, tracks, data_dir / "audio")
        extract_features(warehouse, run_id, track_ids)
        fits = cluster(warehouse, run_id, track_ids, options)
        summary = compare(warehouse, run_id, track_ids, fits)
        drifts = drift(warehouse, run_id, source=source)
    return publish_run(warehouse, summary, drifts, out_dir=out_dir)
