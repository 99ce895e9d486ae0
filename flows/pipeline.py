"""The songmix pipeline: does clustering what songs sound like reproduce Spotify's view?

Read top to bottom, this is the whole journey of the notebook it continues, for any source
of tracks (:mod:`songmix.sources.choose`): list the tracks, get Spotify's audio features and
the audio where the source can give them, extract Aubio features from whatever audio is
stored, choose and fit Gaussian mixtures on each feature set over covariance types, k and
seeds, compare the clusterings with each other and with any truth, and write the report.
Every stage stores its tables in the DuckDB warehouse before the next begins, and hands the
next one nothing but the run's id.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from songmix.audio.download import AUDIO_CACHE
from songmix.flows.drift import drift
from songmix.flows.parameters import validate_parameters
from songmix.flows.progress import reporter, run_logger
from songmix.flows.reporting import RunSummary, compare, publish_run
from songmix.flows.settings import default_data_dir, default_db_path, default_out_dir, validate_out_dir
from songmix.flows.stages import (
    WarehouseListing,
    cluster,
    collect_audio,
    collect_spotify_features,
    collect_tracks,
    extract_features,
    open_warehouse,
)
from songmix.sources.base import Source
from songmix.sources.choose import parse_source
from songmix.tasks.options import AUTO_COVARIANCE, DEFAULT_KS, DEFAULT_PRIOR, DEFAULT_SEEDS, ModelOptions


def run_name() -> str:
    """The flow run's name in Prefect's UI: the source and its size (``demo-1000``)."""
    parameters = dict(flow_run.parameters)
    try:
        return source_of(parameters).run_name()
    except (ValueError, TypeError):
        return str(parameters.get("source", "songmix"))


@flow(name="songmix-pipeline", flow_run_name=run_name, log_prints=True)
def pipeline(
    source: str = "demo",
    n_tracks: int = 1000,
    year: int = 2020,
    playlist: str | None = None,
    dataset: str | None = None,
    fit: bool = True,
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
    """Run the pipeline once on ``source`` (``demo``, ``spotify``, ``csv:FILE``, ``dir:PATH``,
    ``run:ID`` or ``run:latest``); returns the run's summary (also stored, written as the
    run's report and published).

    ``n_tracks``, ``year`` and ``playlist`` choose an API source's tracks, ``dataset`` names a
    CSV data set; ``fit=False`` stops after the data is stored. ``covariance_type``, ``prior``
    and the feature lists: see :class:`~songmix.tasks.options.ModelOptions`. Parameters are
    stored in plain text by Prefect and in ``runs.parameters``: credentials never pass
    through here (they come from the environment or Prefect Secret blocks).
    """
    chosen = source_of(dict(source=source, n_tracks=n_tracks, year=year, playlist=playlist,
                            dataset=dataset, demo_groups=demo_groups,
                            demo_audio_mismatch=demo_audio_mismatch))
    db_path, data_dir, out_dir = (Path(db_path or default_db_path()), Path(data_dir or default_data_dir()),
                                  Path(out_dir or default_out_dir()))
    validate_run(chosen, k=k, ks=ks, n_seeds=n_seeds, demo_groups=demo_groups, year=year, out_dir=out_dir)
    options = ModelOptions(ks=ks, fixed_k=k, n_seeds=n_seeds, covariance_type=covariance_type,
                           prior=prior, random_state=random_state,
                           features={"spotify": spotify_features, "aubio": aubio_features})
    warehouse = open_warehouse(db_path)
    run_id = str(flow_run.get_id() or "local")
    chosen = chosen.resolved(WarehouseListing(warehouse, run_id))
    clustered = chosen.feature_sets or tuple(options.features)
    parameters = chosen.parameters() | dict(
        fit=fit, k=k, ks=ks, n_seeds=n_seeds, covariance_type=covariance_type, prior=prior,
        features={name: options.features[name] for name in clustered}, random_state=random_state)
    logger = run_logger()
    with warehouse.recording_run(run_id, source=chosen.name, parameters=parameters,
                                 flow_run_id=flow_run.get_id(), logger=logger):
        with chosen.opened(data_dir, progress=reporter("demo previews")) as opened:
            logger.info("tracks: %s", collect_tracks(run_id, db_path, opened))
            if opened.fetches_features:
                logger.info("spotify features: %s", collect_spotify_features(run_id, db_path, opened))
            if opened.fetches_audio:
                logger.info("downloads: %s", collect_audio(run_id, db_path, opened, data_dir / AUDIO_CACHE))
        logger.info("aubio extraction: %s", extract_features(run_id, db_path))
        if not fit:
            return RunSummary(run_id=run_id, source=chosen.name, n_tracks=0, chosen_k={},
                              notes=("stored only: not clustered (fit=False)",))
        logger.info("mixture fits: %s", cluster(run_id, db_path, feature_sets=chosen.feature_sets,
                                                options=options))
        summary = compare(run_id, db_path)
        drifts = drift(run_id, db_path, source=chosen.name)
    return publish_run(warehouse, summary, drifts, out_dir=out_dir)


def source_of(parameters: dict) -> Source:
    """The source a run's parameters name (:func:`songmix.sources.choose.parse_source`)."""
    return parse_source(parameters["source"], n_tracks=parameters.get("n_tracks", 1000),
                        year=parameters.get("year", 2020), playlist=parameters.get("playlist"),
                        dataset=parameters.get("dataset"), demo_groups=parameters.get("demo_groups", 6),
                        demo_audio_mismatch=parameters.get("demo_audio_mismatch", False))


def validate_run(
    source: Source, *, k: int | None, ks: list[int], n_seeds: int, demo_groups: int, year: int,
    out_dir: Path,
) -> None:
    """Refuse what no run can honour, before anything is written: the source's own settings
    (a file, a folder, a playlist), the bounds of :mod:`songmix.flows.parameters`, and an
    ``out_dir`` that cannot be written.

    Raises
    ------
    ValueError, FileNotFoundError
    """
    source.check()
    validate_parameters(n_tracks=source.expected_tracks(), k=k, ks=ks, n_seeds=n_seeds,
                        demo_groups=demo_groups, year=year)
    validate_out_dir(out_dir)
