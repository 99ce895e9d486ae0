"""Tasks that download previews and extract Aubio features, a chunk of tracks at a time.

Per-track work is batched (a task run costs ~25 ms of Prefect bookkeeping): one task handles
a chunk, and a failure of one track is recorded in its row instead of failing the chunk.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.context import TaskRunContext

from songmix.warehouse.records import utc_now
from songmix.audio.accuracy import plain_aubio_tempo
from songmix.audio.decode import AudioDecodeError
from songmix.audio.download import DownloadError, describe_failure, download_audio
from songmix.audio.features import EXTRACTOR_VERSION, extract_file
from songmix.sources.http import make_session
from songmix.tasks.spotify import NETWORK_RETRIES



@task(
    name="download-previews",
    task_run_name="download-previews[chunk {chunk}]",
    # Keyed on the tracks, not the URLs: preview URLs can be signed and expire, and the
    # demo's change port every run. Files land in a content-addressed cache.
    cache_policy=(INPUTS - "urls" - "chunk") + TASK_SOURCE,
    **NETWORK_RETRIES,
)
def download_previews(
    track_ids: list[str], urls: list[str | None], cache_dir: Path, chunk: str
) -> list[dict]:
    """Download each track's preview into ``cache_dir``; one ``audio_files`` row per track.

    A retryable failure (429, 5xx, timeout) of any track fails the task so Prefect retries
    the chunk, until the last attempt: then it is recorded like any other failure, so the
    chunk's other tracks keep their files. Failures are recorded in the track's row as
    ``"reason: detail"`` (the URL reduced to its host: preview URLs can carry tokens).
    """
    session = make_session(timeout=30)
    give_up_on_retryable = _last_attempt()
    rows = []
    for track_id, url in zip(track_ids, urls, strict=True):
        row = {"track_id": track_id, "downloaded_at": utc_now()}
        if not url:
            rows.append(row | {"status": "unavailable", "error": "no preview URL"})
            continue
        try:
            audio = download_audio(session, url, cache_dir)
        except DownloadError as error:
            if error.retryable and not give_up_on_retryable:
                raise
            gave_up = " (still failing after every retry)" if error.retryable else ""
            rows.append(row | {"status": "failed", "error": describe_failure(error, url) + gave_up})
            continue
        rows.append(row | {"status": "ok", "sha256": audio.sha256, "path": str(audio.path),
                           "bytes": audio.n_bytes})
    return rows


def _last_attempt() -> bool:
    """True when Prefect will not run this task run again (always, outside a task run)."""
    context = TaskRunContext.get()
    return context is None or context.task_run.run_count > context.task.retries


@task(
    name="extract-aubio-features",
    task_run_name="extract-aubio-features[chunk {chunk}]",
    cache_policy=(INPUTS - "paths" - "chunk") + TASK_SOURCE,
)
def extract_aubio_features(
    sha256s: list[str], paths: list[str], extractor_version: str, chunk: str
) -> list[dict]:
    """Aubio features of each file; a file that cannot be analysed gets an ``error`` row.

    The error reads ``"reason: detail"`` (:class:`~songmix.audio.decode.AudioDecodeError`'s
    reasons: empty_file, not_audio, truncated, ...), so one bad file never fails its chunk.
    """
    rows = []
    for sha256, path in zip(sha256s, paths, strict=True):
        base = {"sha256": sha256, "extractor_version": extractor_version}
        try:
            extracted = extract_file(Path(path))
        except (ValueError, OSError) as error:  # AudioDecodeError is a ValueError
            rows.append(base | {"error": _failure_text(error)})
            continue
        rows.append(base | dict(extracted.values) | {"flags": ",".join(extracted.flags)})
    return rows


@task(name="measure-plain-aubio-tempo", cache_policy=INPUTS + TASK_SOURCE)
def measure_plain_aubio_tempo(paths: dict[str, str]) -> dict[str, float]:
    """Plain aubio's tempo of each file with a true tempo, the reference beside songmix's.

    ``paths`` maps track ids to files; a file that cannot be decoded gets 0 (no estimate).
    """
    tempi = {}
    for track_id, path in paths.items():
        try:
            tempi[track_id] = plain_aubio_tempo(path)
        except AudioDecodeError:
            tempi[track_id] = 0.0
    return tempi


def _failure_text(error: Exception) -> str:
    """``"reason: detail"`` for decode errors, ``"ExceptionType: message"`` for the rest."""
    return str(error) if hasattr(error, "reason") else f"{type(error).__name__}: {error}"


__all__ = ["EXTRACTOR_VERSION", "download_previews", "extract_aubio_features",
           "measure_plain_aubio_tempo"]
