"""The pipeline's stages, each a flow: ask the warehouse what is missing, run tasks in
chunks for just that, hand the results to the warehouse in one transaction.

The flow's process is the warehouse's only writer; tasks only return data.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from prefect import flow
from prefect.futures import PrefectFuture, as_completed

from songmix.audio.features import EXTRACTOR_VERSION, unfit_for_clustering
from songmix.flows.executors import api_for_workers, configured_executor, extraction_task_runner
from songmix.flows.progress import StageProgress, stage
from songmix.sources.connect import SourceConnection
from songmix.sources.http import InterruptibleThreadPoolTaskRunner
from songmix.sources.spotify import (
    SEARCH_MAX_RESULTS,
    SEARCH_PAGE_LIMIT,
    dedupe_tracks,
    parse_track,
    partitioned_queries,
)
from songmix.tasks.audio import extract_aubio_features
from songmix.tasks.previews import count_refused, download_previews_with_fallback
from songmix.tasks.modeling import MixtureFits, fit_mixtures
from songmix.tasks.options import ModelOptions
from songmix.tasks.spotify import fetch_audio_features_batch, fetch_playlist, fetch_search_pages
from songmix.warehouse import records
from songmix.warehouse.source_reads import fresh_search_pages
from songmix.warehouse.store import Warehouse

PAGES_PER_TASK = 10
FEATURE_IDS_PER_REQUEST = 100
TRACKS_PER_DOWNLOAD_TASK = 50
TRACKS_PER_EXTRACTION_TASK = 50
#: A later run of the same source and query reuses pages fetched this recently: search
#: results drift from week to week, but within a day an interrupted run can resume.
PAGE_REUSE_WINDOW = timedelta(hours=24)



class NoUsableTracks(ValueError):
    """No track of a run has every feature set: there is nothing to cluster or compare."""


def require_usable_tracks(run_id: str, n_listed: int, n_with: dict[str, int], n_usable: int) -> None:
    """Stop the run (it then ends ``failed``, with this reason) when no track is usable.

    Parameters
    ----------
    run_id : str
    n_listed : int
        Tracks the run listed.
    n_with : dict
        Feature set name -> tracks that have it.
    n_usable : int
        Tracks that have every feature set.
    """
    if n_usable == 0:
        have = ", ".join(f"{n} with {name} features" for name, n in n_with.items())
        raise NoUsableTracks(
            f"no usable tracks: of {n_listed} listed, {have}, and none with both; the reasons are in "
            f"failed_items (songmix sql \"select stage, reason from failed_items where run_id = '{run_id}'\")")


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
    return [_result_or_exception(future) for future in futures]


def _result_or_exception(future: PrefectFuture):
    try:
        return future.result(raise_on_failure=False)
    except Exception as error:  # a worker process died, or its result could not be read back
        return error


@flow(name="collect-tracks", task_runner=InterruptibleThreadPoolTaskRunner(max_workers=4))
def collect_tracks(
    warehouse: Warehouse, run_id: str, source: SourceConnection, n_tracks: int
) -> list[dict]:
    """Search pages of 10 (or the playlist) → parsed, de-duplicated tracks, stored raw and staged.

    Beyond 1000 tracks the search is split by genre (:func:`partitioned_queries`): each
    query is read in blocks of just the pages still needed, until ``n_tracks`` distinct
    tracks are in, its results run out, or it reaches offset 1000; then the next query.
    Pages of the same source and query stored less than :data:`PAGE_REUSE_WINDOW` ago are
    reused, and fetched pages are stored chunk by chunk as they arrive, so rerunning an
    interrupted run fetches only the pages it lacks.
    """
    queries = ([f"playlist:{source.playlist}"] if source.playlist
               else partitioned_queries(source.search_query, n_tracks))
    progress = stage("search pages", 1 if source.playlist else math.ceil(n_tracks / SEARCH_PAGE_LIMIT))
    since = records.utc_now() - PAGE_REUSE_WINDOW
    tracks: list[dict] = []
    n_fetched = n_reused = 0
    for query in queries:
        next_offset, exhausted = 0, False
        while len(tracks) < n_tracks and not exhausted:
            offsets = [0] if source.playlist else _next_offsets(next_offset, n_tracks - len(tracks))
            pages, fetched = _search_pages(warehouse, run_id, source, query, offsets, since, progress)
            n_fetched, n_reused = n_fetched + fetched, n_reused + len(pages) - fetched
            tracks = dedupe_tracks(
                tracks + [parse_track(item) for page in pages for item in page["page"]["tracks"]["items"] if item])
            next_offset = offsets[-1] + SEARCH_PAGE_LIMIT
            exhausted = (source.playlist is not None or next_offset >= SEARCH_MAX_RESULTS
                         or not pages[-1]["page"]["tracks"].get("next"))
    tracks = tracks[:n_tracks]
    tables = records.track_rows(run_id, tracks)
    if source.truth is not None:
        tables["demo_truth"] = records.truth_rows(run_id, source.truth)
    warehouse.write(tables)
    progress.finish(f"{len(tracks)} tracks from {n_fetched} pages fetched, {n_reused} reused")
    return tracks


def _next_offsets(start: int, n_wanted: int) -> list[int]:
    """Offsets of the pages from ``start`` that could hold ``n_wanted`` more tracks (below 1000)."""
    n_pages = math.ceil(n_wanted / SEARCH_PAGE_LIMIT)
    return list(range(start, min(start + n_pages * SEARCH_PAGE_LIMIT, SEARCH_MAX_RESULTS), SEARCH_PAGE_LIMIT))


def _search_pages(
    warehouse: Warehouse, run_id: str, source: SourceConnection, query: str, offsets: list[int],
    since: datetime, progress: StageProgress,
) -> tuple[list[dict], int]:
    """Pages of ``query`` at ``offsets`` in offset order, and how many had to be fetched.

    Fresh stored pages are copied under this run; the rest are fetched in chunks and each
    chunk is stored as soon as it arrives. A chunk that failed for good fails the stage,
    after the others are stored.
    """
    stored = fresh_search_pages(warehouse, source_key=source.pages_key, query=query,
                                offsets=offsets, since=since)
    _store_pages(warehouse, run_id, source.pages_key, list(stored.values()))
    progress.advance(len(stored))
    chunks = _chunks([offset for offset in offsets if offset not in stored], PAGES_PER_TASK)
    futures = [
        fetch_playlist.submit(source.endpoints, source.name, source.playlist) if source.playlist
        else fetch_search_pages.submit(source.endpoints, source.name, query, chunk,
                                       chunk=f"{i + 1}/{len(chunks)}")
        for i, chunk in enumerate(chunks)
    ]
    fetched: list[dict] = []
    failures: list[BaseException] = []
    for future in as_completed(futures):
        result = future.result(raise_on_failure=False)
        if isinstance(result, BaseException):
            failures.append(result)
            continue
        _store_pages(warehouse, run_id, source.pages_key, result)
        fetched += result
        progress.advance(len(result))
    if failures:
        raise failures[0]
    return sorted([*stored.values(), *fetched], key=lambda page: page["offset"]), len(fetched)


def _store_pages(warehouse: Warehouse, run_id: str, source_key: str, pages: list[dict]) -> None:
    warehouse.write({"search_pages": records.search_page_rows(run_id, pages).assign(source_key=source_key)})


def _raise_if_failed(result):
    if isinstance(result, BaseException):
        raise result
    return result


@flow(name="collect-spotify-features", task_runner=InterruptibleThreadPoolTaskRunner(max_workers=4))
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
    fetched_at = records.utc_now()
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


@flow(name="collect-audio", task_runner=InterruptibleThreadPoolTaskRunner(max_workers=4))
def collect_audio(
    warehouse: Warehouse, run_id: str, source: SourceConnection, tracks: list[dict], audio_dir: Path
) -> int:
    """Download previews of tracks without a stored, still-present audio file."""
    stored = warehouse.stored_audio([t["track_id"] for t in tracks]).set_index("track_id")
    present = {tid for tid, row in stored.iterrows()
               if row["status"] == "ok" and Path(row["path"]).is_file()}
    wanted = [t for t in tracks if t["track_id"] not in present]
    progress = stage("downloads", len(wanted))
    chunks = _chunks(wanted, TRACKS_PER_DOWNLOAD_TASK)
    futures = [
        download_previews_with_fallback.submit(
            [t["track_id"] for t in chunk], [t["preview_url"] for t in chunk],
            [t.get("isrc") for t in chunk], audio_dir, providers=source.endpoints,
            chunk=f"{i + 1}/{len(chunks)}")
        for i, chunk in enumerate(chunks)
    ]
    recorded_at = records.utc_now()
    rows: list[dict] = []
    for chunk, result in zip(chunks, _results(futures, progress, [len(c) for c in chunks])):
        if isinstance(result, BaseException):
            rows += [{"track_id": t["track_id"], "status": "failed", "error": f"download failed: {result}",
                      "downloaded_at": recorded_at} for t in chunk]
        else:
            rows += result
    audio_rows = pd.DataFrame(rows, columns=["track_id", "status", "sha256", "path", "bytes",
                                             "error", "downloaded_at", "provider"]).assign(run_id=run_id)
    failed = audio_rows[audio_rows["status"] != "ok"]
    warehouse.write({
        "audio_files": audio_rows,
        "item_failures": records.failure_rows(
            run_id, "download", dict(zip(failed["track_id"], failed["error"])), recorded_at),
    })
    ok = int((audio_rows["status"] == "ok").sum())
    progress.finish(f"{ok} downloaded, {len(present)} already stored, {len(failed)} unavailable or failed, "
                    f"{count_refused(rows)} of them refused (not a public address)")
    return ok


@flow(name="extract-aubio-features")
def extract_features(warehouse: Warehouse, run_id: str, track_ids: list[str]) -> int:
    """Aubio features of every stored audio file not yet analysed by this extractor.

    Chunks run on the executor ``SONGMIX_EXECUTOR`` names (worker processes by default, see
    :mod:`songmix.flows.executors`); no worker starts when there is nothing to extract. A
    file that cannot be analysed, or a chunk that failed for good, is recorded per file in
    ``item_failures`` with the reason.
    """
    audio = warehouse.stored_audio(track_ids)
    audio = audio[audio["status"] == "ok"].drop_duplicates("sha256")
    done = warehouse.extracted_sha256s(list(audio["sha256"]), extractor_version=EXTRACTOR_VERSION)
    wanted = audio[~audio["sha256"].isin(done)]
    executor, workers = configured_executor()
    progress = stage("aubio extraction", len(wanted))
    chunks = _chunks(list(wanted.itertuples(index=False)), TRACKS_PER_EXTRACTION_TASK)
    results: list = []
    if chunks:
        with (api_for_workers(),
              extraction_task_runner(executor, max_workers=min(workers, len(chunks))) as runner):
            futures = [
                runner.submit(extract_aubio_features, {
                    "sha256s": [r.sha256 for r in chunk], "paths": [r.path for r in chunk],
                    "extractor_version": EXTRACTOR_VERSION, "chunk": f"{i + 1}/{len(chunks)}"})
                for i, chunk in enumerate(chunks)
            ]
            results = _results(futures, progress, [len(c) for c in chunks])
    recorded_at = records.utc_now()
    rows = []
    for chunk, result in zip(chunks, results, strict=True):
        rows += ([{"sha256": r.sha256, "error": f"extraction failed: {result}"} for r in chunk]
                 if isinstance(result, BaseException) else result)
    extracted = pd.DataFrame([r for r in rows if "error" not in r])
    failures = {r["sha256"]: r["error"] for r in rows if "error" in r}
    warehouse.write({
        "aubio_features": extracted.assign(run_id=run_id),
        "item_failures": records.failure_rows(run_id, "extraction", failures, recorded_at),
    })
    progress.finish(f"{len(extracted)} extracted ({executor}), {len(done)} already stored, "
                    f"{len(failures)} failed")
    return len(extracted)


@flow(name="fit-mixtures")
def cluster(
    warehouse: Warehouse, run_id: str, track_ids: list[str], options: ModelOptions
) -> dict[str, MixtureFits]:
    """Model selection over covariance types and k, on Spotify's features and on Aubio's,
    for the same tracks."""
    aubio = warehouse.aubio_feature_frame(track_ids)
    # Clips with no beat carry placeholder values the mixture must not fit.
    unfit = unfit_for_clustering(aubio["tempo"].to_dict())
    frames = {
        "spotify": warehouse.spotify_feature_frame(track_ids)[options.features["spotify"]],
        "aubio": aubio.drop(index=list(unfit))[options.features["aubio"]],
    }
    common = [t for t in track_ids if t in frames["spotify"].index and t in frames["aubio"].index]
    require_usable_tracks(run_id, len(track_ids), {name: len(frame) for name, frame in frames.items()}, len(common))
    progress = stage("mixture fits", 2 * options.n_fits)
    fits: dict[str, MixtureFits] = {}
    failures: dict[str, str] = {}
    for feature_set, frame in frames.items():
        matrix = frame.loc[common].to_numpy(dtype=float)
        future = fit_mixtures.submit(feature_set, matrix, list(frame.columns), options)
        result = _results([future], progress, [options.n_fits])[0]
        if isinstance(result, ValueError):
            failures[feature_set] = str(result)
            continue
        fits[feature_set] = _raise_if_failed(result)
        versions = aubio.loc[common, "extractor_version"] if feature_set == "aubio" else ()
        warehouse.write(records.mixture_rows(run_id, fits[feature_set], matrix, common, versions))
    warehouse.write({"item_failures": records.failure_rows(run_id, "fit", failures | unfit, records.utc_now())})
    progress.finish(", ".join(f"{name}: {f.covariance_type} k={f.chosen_k}" for name, f in fits.items())
                    + "".join(f"; {name} failed: {why}" for name, why in failures.items()))
    return fits
