"""The pipeline's stages, each a flow: ask the warehouse what is missing, run tasks in
chunks for just that, hand the results to the warehouse in one transaction.

The flow's process is the warehouse's only writer; tasks only return data.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from prefect import flow
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from songmix.audio.features import AUBIO_CLUSTER_FEATURES, EXTRACTOR_VERSION
from songmix.flows.progress import StageProgress, stage
from songmix.sources.connect import SourceConnection
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES
from songmix.sources.spotify import dedupe_tracks, parse_track, search_offsets
from songmix.tasks.audio import download_previews, extract_aubio_features
from songmix.tasks.modeling import MixtureFits, fit_mixtures
from songmix.tasks.spotify import fetch_audio_features_batch, fetch_search_pages
from songmix.warehouse import records
from songmix.warehouse.store import Warehouse

PAGES_PER_TASK = 10
FEATURE_IDS_PER_REQUEST = 100
TRACKS_PER_DOWNLOAD_TASK = 50
TRACKS_PER_EXTRACTION_TASK = 50


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _chunks(items: list, size: int) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _results(futures: list[PrefectFuture], progress: StageProgress, sizes: list[int]) -> list:
    """Results of ``futures`` in submission order, advancing ``progress`` as each completes.

    A task that failed for good yields its exception instead of a result, so one bad chunk
    is recorded rather than losing the whole stage.
    """
    size_of = {id(future): size for future, size in zip(futures, sizes, strict=True)}
    for future in as_completed(futures):
        progress.advance(size_of[id(future)])
    return [future.result(raise_on_failure=False) for future in futures]


@flow(name="collect-tracks", task_runner=ThreadPoolTaskRunner(max_workers=4))
def collect_tracks(
    warehouse: Warehouse, run_id: str, source: SourceConnection, n_tracks: int
) -> list[dict]:
    """Search pages of 10 → parsed, de-duplicated tracks, stored raw and staged."""
    offsets = search_offsets(n_tracks)
    progress = stage("search pages", len(offsets))
    chunks = _chunks(offsets, PAGES_PER_TASK)
    futures = [
        fetch_search_pages.submit(source.endpoints, source.name, source.search_query, chunk,
                                  chunk=f"{i + 1}/{len(chunks)}")
        for i, chunk in enumerate(chunks)
    ]
    pages = [page for chunk in _results(futures, progress, [len(c) for c in chunks])
             for page in _raise_if_failed(chunk)]
    tracks = dedupe_tracks(
        [parse_track(item) for page in pages for item in page["page"]["tracks"]["items"]]
    )[:n_tracks]
    tables = {"search_pages": records.search_page_rows(run_id, pages),
              **records.track_rows(run_id, tracks)}
    if source.truth is not None:
        tables["demo_truth"] = records.truth_rows(run_id, source.truth)
    warehouse.write(tables)
    progress.finish(f"{len(tracks)} tracks from {len(pages)} pages")
    return tracks


def _raise_if_failed(result):
    if isinstance(result, BaseException):
        raise result
    return result


@flow(name="collect-spotify-features", task_runner=ThreadPoolTaskRunner(max_workers=4))
def collect_spotify_features(
    warehouse: Warehouse, run_id: str, source: SourceConnection, track_ids: list[str]
) -> int:
    """Audio features for tracks the warehouse lacks, in batches of 100."""
    stored = warehouse.tracks_with_features(track_ids)
    wanted = [t for t in track_ids if t not in stored]
    progress = stage("spotify features", len(wanted))
    batches = _chunks(wanted, FEATURE_IDS_PER_REQUEST)
    futures = [
        fetch_audio_features_batch.submit(source.endpoints, source.name, source.cache_key,
                                          batch, chunk=f"{i + 1}/{len(batches)}")
        for i, batch in enumerate(batches)
    ]
    fetched_at = _utc_now()
    stored, missing = 0, {}
    tables: list[dict[str, pd.DataFrame]] = []
    for batch, result in zip(batches, _results(futures, progress, [len(b) for b in batches])):
        if isinstance(result, BaseException):
            missing |= {tid: f"fetch failed: {result}" for tid in batch}
            continue
        tables.append(records.spotify_feature_rows(run_id, result.provider, result.features, fetched_at))
        missing |= result.missing
        stored += len(result.features)
    merged = {name: pd.concat([t[name] for t in tables], ignore_index=True) for name in
              ("spotify_features", "raw_audio_features")} if tables else {}
    merged["item_failures"] = records.failure_rows(run_id, "spotify_features", missing, fetched_at)
    warehouse.write(merged)
    progress.finish(f"{stored} fetched, {len(track_ids) - len(wanted)} already stored, "
                    f"{len(missing)} missing")
    return stored


@flow(name="collect-audio", task_runner=ThreadPoolTaskRunner(max_workers=4))
def collect_audio(
    warehouse: Warehouse, run_id: str, tracks: list[dict], audio_dir: Path
) -> int:
    """Download previews of tracks without a stored, still-present audio file."""
    stored = warehouse.stored_audio([t["track_id"] for t in tracks]).set_index("track_id")
    present = {tid for tid, row in stored.iterrows()
               if row["status"] == "ok" and Path(row["path"]).is_file()}
    wanted = [t for t in tracks if t["track_id"] not in present]
    progress = stage("downloads", len(wanted))
    chunks = _chunks(wanted, TRACKS_PER_DOWNLOAD_TASK)
    futures = [
        download_previews.submit([t["track_id"] for t in chunk], [t["preview_url"] for t in chunk],
                                 audio_dir, chunk=f"{i + 1}/{len(chunks)}")
        for i, chunk in enumerate(chunks)
    ]
    recorded_at = _utc_now()
    rows: list[dict] = []
    for chunk, result in zip(chunks, _results(futures, progress, [len(c) for c in chunks])):
        if isinstance(result, BaseException):
            rows += [{"track_id": t["track_id"], "status": "failed", "error": f"download failed: {result}",
                      "downloaded_at": recorded_at} for t in chunk]
        else:
            rows += result
    audio_rows = pd.DataFrame(rows, columns=["track_id", "status", "sha256", "path", "bytes",
                                             "error", "downloaded_at"]).assign(run_id=run_id)
    failed = audio_rows[audio_rows["status"] != "ok"]
    warehouse.write({
        "audio_files": audio_rows,
        "item_failures": records.failure_rows(
            run_id, "download", dict(zip(failed["track_id"], failed["error"])), recorded_at),
    })
    ok = int((audio_rows["status"] == "ok").sum())
    progress.finish(f"{ok} downloaded, {len(present)} already stored, {len(failed)} unavailable or failed")
    return ok


@flow(name="extract-aubio-features")
def extract_features(warehouse: Warehouse, run_id: str, track_ids: list[str]) -> int:
    """Aubio features of every stored audio file not yet analysed by this extractor."""
    audio = warehouse.stored_audio(track_ids)
    audio = audio[audio["status"] == "ok"].drop_duplicates("sha256")
    done = warehouse.extracted_sha256s(list(audio["sha256"]), extractor_version=EXTRACTOR_VERSION)
    wanted = audio[~audio["sha256"].isin(done)]
    progress = stage("aubio extraction", len(wanted))
    chunks = _chunks(list(wanted.itertuples(index=False)), TRACKS_PER_EXTRACTION_TASK)
    futures = [
        extract_aubio_features.submit([r.sha256 for r in chunk], [r.path for r in chunk],
                                      EXTRACTOR_VERSION, chunk=f"{i + 1}/{len(chunks)}")
        for i, chunk in enumerate(chunks)
    ]
    recorded_at = _utc_now()
    rows = [row for result in _results(futures, progress, [len(c) for c in chunks])
            for row in _raise_if_failed(result)]
    extracted = pd.DataFrame([r for r in rows if "error" not in r])
    failures = {r["sha256"]: r["error"] for r in rows if "error" in r}
    warehouse.write({
        "aubio_features": extracted.assign(run_id=run_id),
        "item_failures": records.failure_rows(run_id, "extraction", failures, recorded_at),
    })
    progress.finish(f"{len(extracted)} extracted, {len(done)} already stored, {len(failures)} failed")
    return len(extracted)


@flow(name="fit-mixtures")
def cluster(
    warehouse: Warehouse,
    run_id: str,
    track_ids: list[str],
    *,
    ks: list[int],
    fixed_k: int | None,
    n_seeds: int,
    covariance_type: str,
    random_state: int,
) -> dict[str, MixtureFits]:
    """EM over every k and seed, on Spotify's features and on Aubio's, for the same tracks."""
    frames = {
        "spotify": warehouse.spotify_feature_frame(track_ids)[list(SPOTIFY_CLUSTER_FEATURES)],
        "aubio": warehouse.aubio_feature_frame(track_ids)[list(AUBIO_CLUSTER_FEATURES)],
    }
    common = [t for t in track_ids if t in frames["spotify"].index and t in frames["aubio"].index]
    progress = stage("mixture fits", 2 * len(ks) * n_seeds)
    fits: dict[str, MixtureFits] = {}
    failures: dict[str, str] = {}
    for feature_set, frame in frames.items():
        matrix = frame.loc[common].to_numpy(dtype=float)
        usable_ks = [k for k in ks if k <= len(common)]
        future = fit_mixtures.submit(
            feature_set, matrix, list(frame.columns), usable_ks, fixed_k=fixed_k, n_seeds=n_seeds,
            covariance_type=covariance_type, random_state=random_state)
        result = _results([future], progress, [len(ks) * n_seeds])[0]
        if isinstance(result, ValueError):
            failures[feature_set] = str(result)
            continue
        fits[feature_set] = _raise_if_failed(result)
        warehouse.write(records.mixture_rows(run_id, fits[feature_set], matrix, common))
    warehouse.write({"item_failures": records.failure_rows(run_id, "fit", failures, _utc_now())})
    progress.finish(", ".join(f"{name}: k={f.chosen_k}" for name, f in fits.items())
                    + "".join(f"; {name} failed: {why}" for name, why in failures.items()))
    return fits
