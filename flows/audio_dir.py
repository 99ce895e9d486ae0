"""``songmix run --audio-dir DIR``: cluster a folder of your own audio by its Aubio features.

There is no Spotify side: the files are listed and hashed, their Aubio features extracted (the
same stage, cache and executor as the demo's), a Gaussian mixture fitted on them, and, when a
``truth.csv`` sits in the folder, the extractor's accuracy and the clustering's agreement with
its groups measured and stored. Without one the comparison is skipped and the summary says so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import flow
from prefect.runtime import flow_run

from songmix.audio.features import unfit_for_clustering
from songmix.audio.folder import TRACK_ID_PREFIX, FolderFile, list_audio_files, read_truth
from songmix.flows.parameters import validate_fit_parameters
from songmix.flows.progress import stage
from songmix.flows.reporting import AGREEMENT_RESAMPLES, RunSummary, fitted_summary, publish_run
from songmix.flows.settings import default_db_path, default_out_dir
from songmix.flows.stages import extract_features
from songmix.tasks.audio import measure_plain_aubio_tempo
from songmix.tasks.compare import measure_agreement, measure_extractor_accuracy
from songmix.tasks.modeling import MixtureFits, fit_mixtures
from songmix.tasks.options import AUTO_COVARIANCE, DEFAULT_KS, DEFAULT_PRIOR, DEFAULT_SEEDS, ModelOptions
from songmix.warehouse import records
from songmix.warehouse.store import Warehouse

SOURCE = "audio-dir"



@flow(name="songmix-audio-dir", log_prints=True)
def audio_dir_pipeline(
    audio_dir: Path,
    k: int | None = None,
    ks: list[int] = DEFAULT_KS,
    n_seeds: int = DEFAULT_SEEDS,
    covariance_type: str = AUTO_COVARIANCE,
    prior: bool = DEFAULT_PRIOR,
    aubio_features: list[str] | None = None,
    random_state: int = 0,
    db_path: Path | None = None,
    out_dir: Path | None = None,
) -> RunSummary:
    """Cluster the audio files under ``audio_dir``; returns the run's summary."""
    db_path, out_dir = db_path or default_db_path(), out_dir or default_out_dir()
    validate_fit_parameters(k=k, ks=ks, n_seeds=n_seeds)
    files = list_audio_files(audio_dir)
    truth = read_truth(audio_dir)
    options = ModelOptions(ks=ks, fixed_k=k, n_seeds=n_seeds, covariance_type=covariance_type,
                           prior=prior, random_state=random_state, features={"aubio": aubio_features})
    warehouse = Warehouse(db_path)
    run_id = str(flow_run.get_id() or "local")
    parameters = dict(audio_dir=str(Path(audio_dir).resolve()), k=k, ks=ks, n_seeds=n_seeds,
                      covariance_type=covariance_type, prior=prior,
                      features={"aubio": options.features["aubio"]}, random_state=random_state)
    with warehouse.recording_run(run_id, source=SOURCE, parameters=parameters,
                                 flow_run_id=flow_run.get_id()):
        track_ids = collect_files(warehouse, run_id, files)
        extract_features(warehouse, run_id, track_ids)
        fits = cluster_aubio(warehouse, run_id, track_ids, options)
        summary = compare_with_truth(warehouse, run_id, track_ids, fits, truth)
    return publish_run(warehouse, summary, None, out_dir=out_dir)


@flow(name="collect-audio-files")
def collect_files(warehouse: Warehouse, run_id: str, files: list[FolderFile]) -> list[str]:
    """Store each file as a track with its audio (in place: nothing is copied)."""
    progress = stage("audio files", len(files))
    recorded_at = records.utc_now()
    tracks = [{"track_id": f.track_id, "name": f.path.stem, "artists": "",
               "album": f.path.parent.name} for f in files]
    audio_rows = pd.DataFrame([
        {"track_id": f.track_id, "status": "ok", "sha256": f.sha256, "path": str(f.path),
         "bytes": f.n_bytes, "downloaded_at": recorded_at} for f in files
    ]).assign(run_id=run_id)
    warehouse.write({**records.track_rows(run_id, tracks), "audio_files": audio_rows})
    progress.advance(len(files))
    progress.finish(f"{len(files)} files")
    return [f.track_id for f in files]


@flow(name="fit-aubio-mixtures")
def cluster_aubio(
    warehouse: Warehouse, run_id: str, track_ids: list[str], options: ModelOptions
) -> MixtureFits | None:
    """Model selection over covariance types and k on the Aubio features of the files that
    have a tempo.

    Files without one (``no_beat``, silence) are left out with the reason in
    ``item_failures`` (stage ``fit``); a mixture that cannot be fitted is recorded there too
    (item ``aubio``) and the run goes on without a clustering.
    """
    frame = warehouse.aubio_feature_frame(track_ids)
    failures = unfit_for_clustering(frame["tempo"].to_dict())
    kept = frame.drop(index=list(failures))[options.features["aubio"]]
    progress = stage("mixture fits", options.n_fits)
    matrix = kept.to_numpy(dtype=float)
    fits = None
    try:
        fits = fit_mixtures("aubio", matrix, list(kept.columns), options)
    except ValueError as error:
        failures["aubio"] = str(error)
    else:
        warehouse.write(records.mixture_rows(run_id, fits, matrix, list(kept.index),
                                             frame.loc[kept.index, "extractor_version"]))
    warehouse.write({"item_failures": records.failure_rows(run_id, "fit", failures, records.utc_now())})
    progress.advance(options.n_fits)
    progress.finish(f"aubio: {fits.covariance_type} k={fits.chosen_k} on {len(kept)} files" if fits else
                    f"aubio failed: {failures['aubio']}")
    return fits


@flow(name="compare-with-truth")
def compare_with_truth(
    warehouse: Warehouse,
    run_id: str,
    track_ids: list[str],
    fits: MixtureFits | None,
    truth: pd.DataFrame | None,
) -> RunSummary:
    """Extractor accuracy and agreement of the clustering with the truth's groups, stored
    (the report draws them)."""
    progress = stage("comparison", 2)
    features = warehouse.aubio_feature_frame(track_ids)
    fitted_ids = warehouse.fitted_track_ids(run_id)
    notes = ["audio-dir run: no Spotify side, the Aubio clustering is compared with truth.csv"
             if truth is not None else "audio-dir run without truth.csv: comparison skipped"]
    tables: dict[str, pd.DataFrame] = {}
    accuracy = _accuracy(features, truth)
    if accuracy:
        tables["extractor_accuracy"] = records.accuracy_rows(run_id, accuracy)
    progress.advance()
    agreement = None
    grouped = ([] if truth is None or fits is None else
               [t for t in fitted_ids if t in truth.index and pd.notna(truth.loc[t, "group"])])
    if len(grouped) >= 2:
        labels = pd.Series(fits.labels(), index=fitted_ids).loc[grouped].to_numpy()
        groups = pd.factorize(truth.loc[grouped, "group"])[0]
        agreement = measure_agreement("aubio", labels, "truth", groups,
                                      n_resamples=AGREEMENT_RESAMPLES, random_state=0)
        for name, rows in records.agreement_rows(run_id, agreement).items():
            tables[name] = rows
    progress.advance()
    warehouse.write(tables)
    summary = fitted_summary(
        warehouse, run_id, {"aubio": fits} if fits else {}, len(fitted_ids),
        agreement=({f"aubio vs truth ({len(grouped)} files)": agreement.uncertainty.to_frame()}
                   if agreement else {}),
        extractor_accuracy={m: v for m, v in accuracy.items() if m != "n_tracks"},
        notes=tuple(notes) + (agreement.uncertainty.notes if agreement else ()),
    )
    progress.finish(", ".join(f"{m} {v:.2f}" for m, v in summary.extractor_accuracy.items())
                    or notes[0])
    return summary


def _accuracy(features: pd.DataFrame, truth: pd.DataFrame | None) -> dict[str, float]:
    """Tempo Acc1/Acc2 and key score over the files whose truth has tempo, key and mode."""
    if truth is None:
        return {}
    complete = truth[truth["tempo"].notna() & (truth["key"] >= 0) & (truth["mode"] >= 0)]
    measured = complete.index.intersection(features.index)
    if measured.empty:
        return {}
    plain_aubio = measure_plain_aubio_tempo(
        {track_id: track_id.removeprefix(TRACK_ID_PREFIX) for track_id in measured})
    return measure_extractor_accuracy(features, complete[["tempo", "key", "mode"]],
                                      pd.Series(plain_aubio, dtype=float))
