"""The songmix pipeline: does clustering what songs sound like reproduce Spotify's view?

Read top to bottom, this is the whole journey of the notebook it continues, for any source
of tracks (:mod:`songmix.sources.choose`): list the tracks, get Spotify's audio features and
the audio where the source can give them, extract Aubio features from whatever audio is
stored, fit Gaussian mixtures on each feature set over many seeds and k, and compare the
clusterings with each other and with any truth. Every stage stores its tables in the
DuckDB warehouse before the next begins, and hands the next one nothing but the run's id.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from songmix.flows.drift import drift
from songmix.flows.progress import reporter, run_logger
from songmix.flows.reporting import RunSummary, compare, publish_run
from songmix.flows.settings import DEFAULT_KS, default_data_dir, default_db_path, default_out_dir
from songmix.flows.stages import (
    WarehouseListing,
    cluster,
    collect_audio,
    collect_spotify_features,
    collect_tracks,
    extract_features,
)
from songmix.sources.base import Source
from songmix.sources.choose import parse_source
from songmix.warehouse.store import Warehouse

#: Largest number of clusters a run may try.
MAX_K = 100
#: Most EM seeds per k.
MAX_SEEDS = 1000


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
    n_seeds: int = 10,
    covariance_type: str = "full",
    random_state: int = 0,
    demo_groups: int = 6,
    demo_audio_mismatch: bool = False,
    db_path: Path | None = None,
    data_dir: Path | None = None,
    out_dir: Path | None = None,
) -> RunSummary:
    """Run the pipeline once on ``source`` (``demo``, ``spotify``, ``csv:FILE``, ``dir:PATH``,
    ``run:ID`` or ``run:latest``); returns the run's summary (also stored and published).

    ``n_tracks``, ``year`` and ``playlist`` choose an API source's tracks, ``dataset`` names a
    CSV data set; ``fit=False`` stops after the data is stored. Parameters are stored in
    plain text by Prefect and in ``runs.parameters``: credentials never pass through here
    (they come from the environment or Prefect Secret blocks).
    """
    chosen = source_of(dict(source=source, n_tracks=n_tracks, year=year, playlist=playlist,
                            dataset=dataset, demo_groups=demo_groups,
                            demo_audio_mismatch=demo_audio_mismatch))
    validate_parameters(chosen, k=k, ks=ks, n_seeds=n_seeds)
    db_path, data_dir, out_dir = (Path(db_path or default_db_path()), Path(data_dir or default_data_dir()),
                                  Path(out_dir or default_out_dir()))
    warehouse = Warehouse(db_path)
    run_id = str(flow_run.get_id() or "local")
    chosen = chosen.resolved(WarehouseListing(warehouse, run_id))
    parameters = chosen.parameters() | dict(fit=fit, k=k, ks=ks, n_seeds=n_seeds,
                                            covariance_type=covariance_type, random_state=random_state)
    logger = run_logger()
    with warehouse.recording_run(run_id, source=chosen.name, parameters=parameters,
                                 flow_run_id=flow_run.get_id(), logger=logger):
        with chosen.opened(data_dir, progress=reporter("demo previews")) as opened:
            logger.info("tracks: %s", collect_tracks(run_id, db_path, opened))
            if opened.fetches_features:
                logger.info("spotify features: %s", collect_spotify_features(run_id, db_path, opened))
            if opened.fetches_audio:
                logger.info("downloads: %s", collect_audio(run_id, db_path, opened, data_dir / "audio"))
        logger.info("aubio extraction: %s", extract_features(run_id, db_path))
        if not fit:
            summary, drifts = RunSummary(run_id=run_id, n_tracks=0, chosen_k={},
                                         notes=("stored only: not clustered (fit=False)",)), []
        else:
            logger.info("mixture fits: %s", cluster(
                run_id, db_path, feature_sets=chosen.feature_sets, ks=ks_to_fit(ks, k), fixed_k=k,
                n_seeds=n_seeds, covariance_type=covariance_type, random_state=random_state))
            summary = compare(run_id, db_path, out_dir=out_dir)
            logger.info("comparison: %s", summary.headline())
            drifts = drift(run_id, db_path, source=chosen.name)
            logger.info("drift: %s", "; ".join(drifts) or "no earlier completed run to compare with")
    publish_run(summary, drifts)
    return summary


def source_of(parameters: dict) -> Source:
    """The source a run's parameters name (:func:`songmix.sources.choose.parse_source`)."""
    return parse_source(parameters["source"], n_tracks=parameters.get("n_tracks", 1000),
                        year=parameters.get("year", 2020), playlist=parameters.get("playlist"),
                        dataset=parameters.get("dataset"), demo_groups=parameters.get("demo_groups", 6),
                        demo_audio_mismatch=parameters.get("demo_audio_mismatch", False))


def ks_to_fit(ks: list[int], k: int | None) -> list[int]:
    """The k to fit: every k of ``ks``, and a k the user fixed, in increasing order."""
    return sorted(set(ks) | ({k} if k else set()))


def validate_parameters(source: Source, *, k: int | None, ks: list[int], n_seeds: int) -> None:
    """Refuse parameters no run can honour, before anything is written.

    Raises
    ------
    ValueError, FileNotFoundError
    """
    source.check()
    if k is not None and not 1 <= k <= MAX_K:
        raise ValueError(f"--k must be between 1 and {MAX_K} (got {k})")
    limit = source.expected_tracks()
    if k is not None and limit is not None and k > limit:
        raise ValueError(f"--k must be at most the number of tracks, {limit} (got {k})")
    if not ks or min(ks) < 1 or max(ks) > MAX_K or len(ks) > MAX_K:
        raise ValueError(f"every k to try must be between 1 and {MAX_K} (got {ks})")
    if not 1 <= n_seeds <= MAX_SEEDS:
        raise ValueError(f"--seeds must be between 1 and {MAX_SEEDS} (got {n_seeds})")
