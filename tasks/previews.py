"""The task that gets each track's 30 s preview: the listed URL, else Deezer by ISRC.

Spotify lists no ``preview_url`` for apps created after 2024-11-27, so most real tracks go to
Deezer: its track-by-ISRC answer carries a signed preview URL that expires in minutes, so it
is resolved and downloaded in the same task, right away, and never stored, cached, logged or
put in an exception. Deezer's quota (50 requests per 5 s) is kept by one limiter per process.
"""

from __future__ import annotations

from pathlib import Path

import requests
from prefect import task
from prefect.cache_policies import NO_CACHE

from songmix.warehouse.records import utc_now
from songmix.audio.download import DownloadError, download_audio
from songmix.sources.fallbacks import DeezerMiss, FallbackEndpoints, make_deezer_rate_limiter, resolve_deezer_preview
from songmix.sources.http import ProviderError, RateLimiter, make_session
from songmix.tasks.spotify import NETWORK_RETRIES

#: Every Deezer call of this process waits its turn here (tasks run in threads).
DEEZER_RATE_LIMITER: RateLimiter = make_deezer_rate_limiter()



@task(
    name="download-previews",
    task_run_name="download-previews[chunk {chunk}]",
    # Never cached: a Deezer URL is dead by the next run, and "unavailable" today may be
    # found tomorrow. The flow asks only for tracks without a stored file.
    cache_policy=NO_CACHE,
    **NETWORK_RETRIES,
)
def download_previews_with_fallback(
    track_ids: list[str], urls: list[str | None], isrcs: list[str | None], cache_dir: Path, chunk: str
) -> list[dict]:
    """Download each track's preview into ``cache_dir``; one ``audio_files`` row per track.

    Parameters
    ----------
    track_ids, urls, isrcs : list
        One entry per track: Spotify id, listed preview URL (or None), ISRC (or None).
    cache_dir : Path
        Content-addressed audio cache.
    chunk : str
        Label of the chunk in the task run's name.

    Returns
    -------
    list of dict
        ``track_id, status ('ok' | 'failed' | 'unavailable'), sha256, path, bytes, error,
        downloaded_at, provider ('listed' | 'deezer' | None)``.

    Raises
    ------
    ProviderError
        A retryable failure (429, 5xx, timeout) of any track, so Prefect retries the chunk;
        other failures are recorded in the track's row.
    """
    session = make_session(timeout=15)
    deezer_url = FallbackEndpoints.from_env().deezer_url
    rows = []
    for track_id, url, isrc in zip(track_ids, urls, isrcs, strict=True):
        row = {"track_id": track_id, "downloaded_at": utc_now()}
        listed_problem = "no preview_url listed"
        if url:
            try:
                rows.append(row | _stored(download_audio(session, url, cache_dir), provider="listed"))
                continue
            except DownloadError as error:
                _raise_if_retryable(error, provider="listed")
                listed_problem = f"listed preview failed ({error.reason})"
        rows.append(row | _from_deezer(session, deezer_url, isrc, cache_dir, listed_problem))
    return rows


def _from_deezer(
    session: requests.Session, deezer_url: str, isrc: str | None, cache_dir: Path, listed_problem: str
) -> dict:
    """The row fields for a track's Deezer preview, or for why there is none."""
    found = resolve_deezer_preview(session, deezer_url, isrc, rate_limiter=DEEZER_RATE_LIMITER)
    if isinstance(found, DeezerMiss):
        return {"status": "unavailable", "error": f"{listed_problem}; {found.reason}", "provider": None}
    try:
        return _stored(download_audio(session, found.preview_url, cache_dir), provider="deezer")
    except DownloadError as error:
        _raise_if_retryable(error, provider="deezer")
        return {"status": "failed", "provider": "deezer",
                "error": f"{listed_problem}; Deezer preview of track {found.deezer_id} failed ({error.reason})"}


def _stored(audio, *, provider: str) -> dict:
    return {"status": "ok", "sha256": audio.sha256, "path": str(audio.path), "bytes": audio.n_bytes,
            "provider": provider}


def _raise_if_retryable(error: DownloadError, *, provider: str) -> None:
    """Re-raise a retryable download failure as a :class:`ProviderError` the retry policy
    understands, without the URL (Deezer's is signed) and without chaining the original."""
    if not error.retryable:
        return
    status = int(error.reason.removeprefix("http_")) if error.reason.startswith("http_") else 503
    raise ProviderError(f"preview download failed ({error.reason})", provider=provider, status=status) from None
