"""Re-cluster from what the warehouse holds: no search, no download, no extraction.

Fits the mixtures again on the stored Spotify and Aubio features of an earlier run's tracks
(other seeds, other k, another covariance type), compares the clusterings, and measures the
drift from the previous run on the same source. Recorded as a run of its own, with
``reclustered_from`` among its parameters.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from songmix.flows.drift import drift
from songmix.flows.parameters import validate_fit_parameters
from songmix.flows.reporting import RunSummary, compare, publish_run
from songmix.flows.settings import default_db_path, default_out_dir
from songmix.flows.stages import cluster
from songmix.tasks.options import AUTO_COVARIANCE, DEFAULT_KS, DEFAULT_PRIOR, DEFAULT_SEEDS, ModelOptions
from songmix.warehouse.connection import validate_path
from songmix.warehouse.drift_reads import latest_completed_run, run_source, run_track_ids
from songmix.warehouse.run_lock import one_run_at_a_time
from songmix.warehouse.store import Warehouse


@flow(name="songmix-recluster", log_prints=True)
@one_run_at_a_time(default_db_path)
def recluster(
    from_run_id: str | None = None,
    k: int | None = None,
    ks: list[int] = DEFAULT_KS,
    n_seeds: int = DEFAULT_SEEDS,
    covariance_type: str = AUTO_COVARIANCE,
    prior: bool = DEFAULT_PRIOR,
    spotify_features: list[str] | None = None,
    aubio_features: list[str] | None = None,
    random_state: int = 0,
    db_path: Path | None = None,
    out_dir: Path | None = None,
) -> RunSummary:
    """Cluster the tracks of run ``from_run_id`` (default: the latest completed run) again.

    Raises
    ------
    WarehouseError
        There is no warehouse at ``db_path``.
    ValueError
        The warehouse holds no completed run, or no run ``from_run_id``.
    """
    db_path, out_dir = db_path or default_db_path(), out_dir or default_out_dir()
    validate_path(db_path, for_writing=False)
    warehouse = Warehouse(db_path)
    from_run_id = from_run_id or latest_completed_run(warehouse)
    if from_run_id is None:
        raise ValueError(f"{db_path} holds no completed run to re-cluster; run `songmix run` first")
    source, track_ids = run_source(warehouse, from_run_id), run_track_ids(warehouse, from_run_id)
    validate_fit_parameters(k=k, ks=ks, n_seeds=n_seeds, n_samples=len(track_ids))
    options = ModelOptions(ks=ks, fixed_k=k, n_seeds=n_seeds, covariance_type=covariance_type,
                           prior=prior, random_state=random_state,
                           features={"spotify": spotify_features, "aubio": aubio_features})
    run_id = str(flow_run.get_id() or "local")
    parameters = dict(reclustered_from=from_run_id, k=k, ks=ks, n_seeds=n_seeds,
                      covariance_type=covariance_type, prior=prior, features=options.features,
                      random_state=random_state)
    with warehouse.recording_run(run_id, source=source, parameters=parameters,
                                 flow_run_id=flow_run.get_id()):
        fits = cluster(warehouse, run_id, track_ids, options)
        summary = compare(warehouse, run_id, track_ids, fits)
        drifts = drift(warehouse, run_id, source=source)
    return publish_run(warehouse, summary, drifts, out_dir=out_dir)
