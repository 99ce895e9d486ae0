"""The pipeline's stages, each a flow: ask the warehouse what the run lacks, run tasks in
chunks for just that, hand the results to the warehouse.

Stages exchange keys, not data: each gets the run's id and the warehouse's path (and the
source, a few settings) and reads what it needs; what it returns is a one-line summary.
The flow's process is the warehouse's only writer; tasks only return data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from prefect import flow
from prefect.futures import PrefectFuture, as_completed

from songmix.audio.features import EXTRACTOR_VERSION, FEATURE_TABLE, unfit_for_clustering
from songmix.flows.executors import (
    api_for_workers,
    configured_executor,
    download_task_runner,
    extraction_task_runner,
)
from songmix.flows.progress import StageProgress, stage
from songmix.sources.base import Source, TrackBatch
from songmix.sources.http import InterruptibleThreadPoolTaskRunner
from songmix.tasks.audio import extract_aubio_features
from songmix.tasks.modeling import fit_mixtures
from songmix.tasks.options import ModelOptions
from songmix.tasks.previews import count_refused, download_previews_with_fallback
from songmix.tasks.spotify import fetch_audio_features_batch, fetch_playlist, fetch_search_pages
from songmix.warehouse import reads, records
from songmix.warehouse.store import Warehouse

PAGES_PER_TASK = 10
FEATURE_IDS_PER_REQUEST = 100
TRACKS_PER_DOWNLOAD_TASK = 50
TRACKS_PER_EXTRACTION_TASK = 50
#: A later run of the same source and query reuses pages fetched this recently: search
#: results drift from week to week, but within a day an interrupted run can resume.
PAGE_REUSE_WINDOW = timedelta(hours=24)
#: Playlists are listed as one page, the query ``playlist:<id>``.
PLAYLIST_QUERY_PREFIX = "playlist:"


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


def open_warehouse(db_path: Path) -> Warehouse:
    """The warehouse, with a documented ``aubio_features`` column per feature the extractor
    makes: its feature table is their one description, so a new feature's column appears
    here (NULL in older rows until they are re-extracted)."""
    warehouse = Warehouse(db_path)
    warehouse.add_columns("aubio_features", {spec.name: spec.documentation for spec in FEATURE_TABLE})
    return warehouse


class WarehouseListing:
    """What the tracks stage offers a source (:class:`songmix.sources.base.Listing`):
    stored pages reused, missing ones fetched in parallel tasks and stored as they arrive,
    and an earlier run's tracks."""

    def __init__(self, warehouse: Warehouse, run_id: str, source: Source | None = None) -> None:
        self._warehouse, self._run_id, self._source = warehouse, run_id, source
        self._since: datetime = records.utc_now() - PAGE_REUSE_WINDOW
        self.n_fetched = self.n_reused = 0

    def pages(self, query: str, offsets: list[int]) -> list[dict]:
        """Pages of ``query`` at ``offsets`` in offset order.

        Fresh stored pages are copied under this run; the rest are fetched in chunks and each
        chunk is stored as soon as it arrives. A chunk that failed for good fails the stage,
        after the others are stored.
        """
        api = self._source.api
        stored = reads.fresh_search_pages(self._warehouse, source_key=api.pages_key, query=query,
                                          offsets=offsets, since=self._since)
        self._store(list(stored.values()))
        chunks = _chunks([offset for offset in offsets if offset not in stored], PAGES_PER_TASK)
        futures = [
            fetch_playlist.submit(api.endpoints, api.credentials, query.removeprefix(PLAYLIST_QUERY_PREFIX))
            if query.startswith(PLAYLIST_QUERY_PREFIX)
            else fetch_search_pages.submit(api.endpoints, api.credentials, query, chunk,
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
            arrived = records.utc_now()
            result = [page | {"fetched_at": arrived} for page in result]
            self._store(result)
            fetched += result
        if failures:
            raise failures[0]
        self.n_fetched, self.n_reused = self.n_fetched + len(fetched), self.n_reused + len(stored)
        return sorted([*stored.values(), *fetched], key=lambda page: page["offset"])

    def run_tracks(self, run_id: str) -> pd.DataFrame:
        return reads.run_tracks(self._warehouse, run_id)

    def latest_completed_run(self) -> str | None:
        return reads.latest_completed_run(self._warehouse)

    def run_source(self, run_id: str) -> str:
        return reads.run_source(self._warehouse, run_id)

    def _store(self, pages: list[dict]) -> None:
        if pages:
            self._warehouse.write({"search_pages": records.search_page_rows(self._run_id, pages)
                                   .assign(source_key=self._source.api.pages_key)})


def batch_rows(run_id: str, batch: TrackBatch, *, first_position: int, recorded_at: datetime) -> dict[str, pd.DataFrame]:
    """A source's batch as warehouse rows of run ``run_id`` (positions continue from
    ``first_position``; files found in place are stamped ``recorded_at``)."""
    tables: dict[str, pd.DataFrame] = {}
    for table, rows in batch.items():
        if table == "tracks":
            tables |= records.track_rows(run_id, rows, first_position=first_position)
        elif table == "audio_files" and "downloaded_at" not in rows:
            tables[table] = rows.assign(run_id=run_id, downloaded_at=recorded_at)
        else:
            tables[table] = rows.assign(run_id=run_id)
    return tables


@flow(name="collect-tracks", flow_run_name="collect-tracks",
      task_runner=InterruptibleThreadPoolTaskRunner(max_workers=4))
def collect_tracks(run_id: str, db_path: Path, source: Source) -> str:
    """The source's tracks, stored batch by batch as they come, with what the source holds
    for them (raw search pages, features, genres, files, truth)."""
    warehouse = open_warehouse(db_path)
    listing = WarehouseListing(warehouse, run_id, source)
    progress = stage("tracks", source.expected_tracks() or 0)
    n_tracks = n_rejected = 0
    for batch in source.track_batches(listing):
        warehouse.write(batch_rows(run_id, batch, first_position=n_tracks, recorded_at=records.utc_now()))
        n_tracks += len(batch.get("tracks", ()))
        n_rejected += len(batch.get("rejected_rows", ()))
        progress.advance(len(batch.get("tracks", ())))
    parts = [f"{n_tracks} tracks from {source.name}"]
    if listing.n_fetched or listing.n_reused:
        parts.append(f"{listing.n_fetched} pages fetched, {listing.n_reused} reused")
    if n_rejected:
        parts.append(f"{n_rejected} rows rejected (see rejected_rows)")
    progress.finish("; ".join(parts))
    return progress.summary


@flow(name="collect-spotify-features", flow_run_name="collect-spotify-features",
      task_runner=InterruptibleThreadPoolTaskRunner(max_workers=4))
def collect_spotify_features(run_id: str, db_path: Path, source: Source) -> str:
    """Audio features of the run's tracks the warehouse lacks, in batches of 100."""
    warehouse = open_warehouse(db_path)
    wanted, n_stored = reads.tracks_lacking_features(warehouse, run_id)
    progress = stage("spotify features", len(wanted))
    batches = _chunks(wanted, FEATURE_IDS_PER_REQUEST)
    api = source.api
    futures = [
        fetch_audio_features_batch.submit(api.endpoints, api.credentials, api.cache_key,
                                          batch, chunk=f"{i + 1}/{len(batches)}")
        for i, batch in enumerate(batches)
    ]
    fetched_at = records.utc_now()
    fetched, missing = 0, {}
    tables: list[dict[str, pd.DataFrame]] = []
    for batch, result in zip(batches, _results(futures, progress, [len(b) for b in batches])):
        if isinstance(result, BaseException):
            missing |= {tid: f"fetch failed: {result}" for tid in batch}
            continue
        tables.append(records.spotify_feature_rows(run_id, result.provider, result.features, fetched_at))
        missing |= result.missing
        fetched += len(result.features)
    merged = {name: pd.concat([t[name] for t in tables], ignore_index=True) for name in
              ("spotify_features", "raw_audio_features")} if tables else {}
    merged["item_failures"] = records.failure_rows(run_id, "spotify_features", missing, fetched_at)
    warehouse.write(merged)
    progress.finish(f"{fetched} fetched, {n_stored} already stored, {len(missing)} missing")
    return progress.summary


@flow(name="collect-audio", flow_run_name="collect-audio")
def collect_audio(run_id: str, db_path: Path, source: Source, audio_dir: Path) -> str:
    """Download previews of the run's tracks without a stored, still-present audio file
    (threads, or the Dask cluster's workers: see :mod:`songmix.flows.executors`)."""
    warehouse = open_warehouse(db_path)
    wanted, n_present = reads.tracks_lacking_audio(warehouse, run_id)
    executor, _ = configured_executor()
    progress = stage("downloads", len(wanted))
    chunks = _chunks(list(wanted.itertuples(index=False)), TRACKS_PER_DOWNLOAD_TASK)
    results: list = []
    if chunks:
        with api_for_workers(), download_task_runner(executor) as runner:
            futures = [
                runner.submit(download_previews_with_fallback, {
                    "track_ids": [t.track_id for t in chunk], "urls": [t.preview_url for t in chunk],
                    "isrcs": [t.isrc for t in chunk], "cache_dir": audio_dir,
                    "providers": source.api.endpoints, "chunk": f"{i + 1}/{len(chunks)}"})
                for i, chunk in enumerate(chunks)
            ]
            results = _results(futures, progress, [len(c) for c in chunks])
    recorded_at = records.utc_now()
    rows: list[dict] = []
    for chunk, result in zip(chunks, results, strict=True):
        if isinstance(result, BaseException):
            rows += [{"track_id": t.track_id, "status": "failed", "error": f"download failed: {result}"}
                     for t in chunk]
        else:
            rows += result
    audio_rows = pd.DataFrame(rows, columns=["track_id", "status", "sha256", "path", "bytes",
                                             "error", "provider"]).assign(run_id=run_id, downloaded_at=recorded_at)
    failed = audio_rows[audio_rows["status"] != "ok"]
    warehouse.write({
        "audio_files": audio_rows,
        "item_failures": records.failure_rows(
            run_id, "download", dict(zip(failed["track_id"], failed["error"])), recorded_at),
    })
    ok = int((audio_rows["status"] == "ok").sum())
    progress.finish(f"{ok} downloaded, {n_present} already stored, {len(failed)} unavailable or failed, "
                    f"{count_refused(rows)} of them refused (not a public address)")
    return progress.summary


@flow(name="extract-aubio-features", flow_run_name="extract-aubio-features")
def extract_features(run_id: str, db_path: Path) -> str:
    """Aubio features of every stored audio file of the run not yet analysed by this extractor.

    Chunks run on the executor ``SONGMIX_EXECUTOR`` names (worker processes by default, see
    :mod:`songmix.flows.executors`); no worker starts when there is nothing to extract. A
    file that cannot be analysed, or a chunk that failed for good, is recorded per file in
    ``item_failures`` with the reason.
    """
    warehouse = open_warehouse(db_path)
    wanted, n_done = reads.audio_to_extract(warehouse, run_id, extractor_version=EXTRACTOR_VERSION)
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
    progress.finish(f"{len(extracted)} extracted ({executor}), {n_done} already stored, "
                    f"{len(failures)} failed")
    return progress.summary


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
            f"no usable tracks: of {n_listed} listed, {have}, and none with all of them; the reasons "
            f"are in failed_items (songmix sql \"select stage, reason from failed_items where run_id = "
            f"'{run_id}'\")")


def clustering_frames(
    warehouse: Warehouse, run_id: str, feature_sets: tuple[str, ...] | None,
    features: dict[str, list[str]],
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Each feature set the run clusters (its columns ``features[name]``), on the tracks that
    have every one of them, with the extractor version of each track's Aubio features; and
    the tracks left out of the fit with why.

    ``feature_sets`` are those the run's source promises (a CSV: Spotify's; a folder:
    Aubio's; the demo and Spotify: both); None takes whichever the run's tracks have. Aubio
    rows without a beat carry placeholder values the mixture must not fit.

    Raises
    ------
    NoUsableTracks
        No track has every feature set.
    """
    frames = {"spotify": reads.spotify_feature_frame(warehouse, run_id),
              "aubio": reads.aubio_feature_frame(warehouse, run_id)}
    unfit = unfit_for_clustering(frames["aubio"]["tempo"].to_dict()) if len(frames["aubio"]) else {}
    frames["aubio"] = frames["aubio"].drop(index=list(unfit))
    wanted = feature_sets or tuple(name for name, frame in frames.items() if len(frame)) or tuple(frames)
    common = frames[wanted[0]].index
    for name in wanted[1:]:
        common = common.intersection(frames[name].index, sort=False)
    require_usable_tracks(run_id, len(reads.run_tracks(warehouse, run_id)),
                          {name: len(frames[name]) for name in wanted}, len(common))
    return {name: frames[name].loc[common, features[name] + (["extractor_version"] if name == "aubio" else [])]
            for name in wanted}, unfit


@flow(name="fit-mixtures", flow_run_name="fit-mixtures")
def cluster(
    run_id: str, db_path: Path, *, feature_sets: tuple[str, ...] | None, options: ModelOptions
) -> str:
    """Model selection over covariance types and k, on each feature set the run clusters,
    for the same tracks (:func:`clustering_frames`)."""
    warehouse = open_warehouse(db_path)
    frames, failures = clustering_frames(warehouse, run_id, feature_sets, options.features)
    progress = stage("mixture fits", len(frames) * options.n_fits)
    chosen: list[str] = []
    for feature_set, frame in frames.items():
        columns = options.features[feature_set]
        matrix, track_ids = frame[columns].to_numpy(dtype=float), list(frame.index)
        future = fit_mixtures.submit(feature_set, matrix, records.data_sha256(matrix, track_ids),
                                     columns, options)
        result = _results([future], progress, [options.n_fits])[0]
        if isinstance(result, ValueError):
            failures[feature_set] = str(result)
            continue
        if isinstance(result, BaseException):
            raise result
        versions = frame["extractor_version"] if feature_set == "aubio" else ()
        warehouse.write(records.mixture_rows(run_id, result, result.probabilities(matrix), matrix,
                                             track_ids, versions))
        chosen.append(f"{feature_set}: {result.covariance_type} k={result.chosen_k}")
    warehouse.write({"item_failures": records.failure_rows(run_id, "fit", failures, records.utc_now())})
    progress.finish("; ".join([f"{len(next(iter(frames.values())))} tracks fitted", *chosen]
                              + [f"{name} failed: {failures[name]}" for name in frames if name in failures]))
    return progress.summary
