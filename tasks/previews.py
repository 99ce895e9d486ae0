"""The task that gets each track's 30 s preview: the listed URL, else Deezer by ISRC.

Spotify lists no ``preview_url`` for apps created after 2024-11-27, so most real tracks go to
Deezer: its track-by-ISRC answer carries a signed preview URL that expires in minutes, so it
is resolved and downloaded in the same task, right away, and never stored, cached, logged or
put in an exception. Deezer's quota (50 requests per 5 s) is kept by one limiter per process.

Failures are per track. The chunk retries, under the one retry policy, only the tracks that
failed retryably (:func:`~songmix.sources.http.retry_each`); a track whose server asks for more
than two minutes' patience is recorded with when to retry, and every other track keeps its
download. Downloads may reach only public addresses and the configured providers; a track whose
preview points or redirects elsewhere is recorded as refused.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from songmix.audio.download import DownloadError, describe_failure, download_audio, remove_stale_downloads
from songmix.sources.fallbacks import DeezerMiss, FallbackEndpoints, make_deezer_rate_limiter, resolve_deezer_preview
from songmix.sources.http import (
    GaveUp,
    GuardedSession,
    ProviderError,
    RateLimiter,
    make_download_session,
    retry_each,
)
from songmix.sources.spotify import SpotifyEndpoints

#: Every Deezer call of this process waits its turn here (tasks run in threads).
DEEZER_RATE_LIMITER: RateLimiter = make_deezer_rate_limiter()
#: Download reasons that mean "the address policy refused it".
REFUSED_REASONS = ("address_refused", "redirect_refused")
# In the error of every refused track's row (counted by the download stage).
_REFUSED = "preview refused"


@task(
    name="download-previews",
    task_run_name="download-previews[chunk {chunk}]",
    # Never cached: a Deezer URL is dead by the next run, and "unavailable" today may be
    # found tomorrow. The flow asks only for tracks without a stored file. No Prefect retries:
    # a chunk retries its failed tracks itself, keeping the downloads that succeeded.
    cache_policy=NO_CACHE,
)
def download_previews_with_fallback(
    track_ids: list[str], urls: list[str | None], isrcs: list[str | None], cache_dir: Path,
    providers: SpotifyEndpoints, chunk: str,
) -> list[dict]:
    """Download each track's preview into ``cache_dir``; one ``audio_files`` row per track.

    Parameters
    ----------
    track_ids, urls, isrcs : list
        One entry per track: Spotify id, listed preview URL (or None), ISRC (or None).
    cache_dir : Path
        Content-addressed audio cache; temporary files a killed run left there are removed.
    providers : SpotifyEndpoints
        Where the tracks were listed; its origins, and the fallbacks', may be local addresses.
    chunk : str
        Label of the chunk in the task run's name.

    Returns
    -------
    list of dict
        ``track_id, status ('ok' | 'failed' | 'unavailable'), sha256, path, bytes, error,
        provider ('listed' | 'deezer' | None)``.

    Raises
    ------
    NetworkInterrupted
        When the run stops mid-chunk.
    """
    remove_stale_downloads(cache_dir)
    fallbacks = FallbackEndpoints.from_env()
    session = make_download_session(timeout=15, trusted_urls=(
        providers.api_url, providers.accounts_url, fallbacks.deezer_url, fallbacks.reccobeats_url))
    listed_problems: dict[str, str] = {}

    def attempt(track: tuple[str, str | None, str | None]) -> dict:
        track_id, url, isrc = track
        if url and track_id not in listed_problems:
            try:
                return _stored(download_audio(session, url, cache_dir), provider="listed")
            except DownloadError as error:
                _raise_if_retryable(error, provider="listed")
                if error.reason in REFUSED_REASONS:
                    return _refused(error, url, provider="listed")
                listed_problems[track_id] = f"listed preview failed ({error.reason})"
        return _from_deezer(session, fallbacks.deezer_url, isrc, cache_dir,
                            listed_problems.get(track_id, "no preview_url listed"))

    tracks = list(zip(track_ids, urls, isrcs, strict=True))
    with session:
        outcomes = retry_each(tracks, attempt)
    return [{"track_id": track_id}
            | ({"status": "failed", "error": outcome.reason, "provider": None}
               if isinstance(outcome, GaveUp) else outcome)
            for (track_id, _, _), outcome in zip(tracks, outcomes, strict=True)]


def count_refused(rows: list[dict]) -> int:
    """How many of the task's rows are downloads the address policy refused."""
    return sum(1 for row in rows if row["status"] == "failed" and _REFUSED in (row.get("error") or ""))


def _from_deezer(
    session: GuardedSession, deezer_url: str, isrc: str | None, cache_dir: Path, listed_problem: str
) -> dict:
    """The row fields for a track's Deezer preview, or for why there is none."""
    found = resolve_deezer_preview(session, deezer_url, isrc, rate_limiter=DEEZER_RATE_LIMITER)
    if isinstance(found, DeezerMiss):
        return {"status": "unavailable", "error": f"{listed_problem}; {found.reason}", "provider": None}
    try:
        return _stored(download_audio(session, found.preview_url, cache_dir), provider="deezer")
    except DownloadError as error:
        _raise_if_retryable(error, provider="deezer")
        if error.reason in REFUSED_REASONS:
            return _refused(error, found.preview_url, provider="deezer")
        return {"status": "failed", "provider": "deezer",
                "error": f"{listed_problem}; Deezer preview of track {found.deezer_id} failed ({error.reason})"}


def _stored(audio, *, provider: str) -> dict:
    return {"status": "ok", "sha256": audio.sha256, "path": str(audio.path), "bytes": audio.n_bytes,
            "provider": provider}


def _refused(error: DownloadError, url: str, *, provider: str) -> dict:
    return {"status": "failed", "provider": provider,
            "error": f"{provider} {_REFUSED}: {describe_failure(error, url)}"}


def _raise_if_retryable(error: DownloadError, *, provider: str) -> None:
    """Re-raise a retryable download failure as a :class:`ProviderError` the retry policy
    understands (with the server's status and ``Retry-After``), without the URL (Deezer's is
    signed) and without chaining the original."""
    if not error.retryable:
        return
    raise ProviderError(f"preview download failed ({error.reason})", provider=provider,
                        status=error.status or 503, retry_after_s=error.retry_after_s) from None
