"""Keyless fallbacks for what Spotify refuses: ReccoBeats audio features, Deezer previews.

ReccoBeats
    ``GET {SONGMIX_RECCOBEATS_URL}/audio-features?ids=<up to 40 Spotify ids, comma-separated>``
    (default base ``https://api.reccobeats.com/v1``) answers ``{"content": [...]}`` whose entries
    carry ReccoBeats' own ``id`` and the Spotify link in ``href``; that link is how rows map back.
    Ids it does not know are simply absent.
Deezer
    ``GET {SONGMIX_DEEZER_URL}/track/isrc:<ISRC>`` (default base ``https://api.deezer.com``)
    gives ``preview`` (a 30 s MP3 behind a signed URL that expires in about 15 minutes),
    ``bpm`` (0 when unknown) and ``duration`` (seconds). Errors come with HTTP 200 and a body
    ``{"error": {"code": ...}}``: 800 is "no such track", 4 is the quota (50 requests per 5 s,
    see :func:`make_deezer_rate_limiter`), 700 "busy". Resolve and download in the same task,
    and never store, cache or log the preview URL: by the next run it is dead anyway.

Both functions take a session from :func:`songmix.sources.http.make_session` (timeouts, no
silent retries) and raise :class:`~songmix.sources.http.ProviderError` with a status that
:func:`~songmix.sources.http.classify_http_error` understands.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import requests

from songmix.sources.http import ProviderError, RateLimiter, check_base_url, provider_error_from_response
from songmix.sources.schema import SPOTIFY_FEATURE_COLUMNS

RECCOBEATS_URL_ENV = "SONGMIX_RECCOBEATS_URL"
DEEZER_URL_ENV = "SONGMIX_DEEZER_URL"
DEFAULT_RECCOBEATS_URL = "https://api.reccobeats.com/v1"
DEFAULT_DEEZER_URL = "https://api.deezer.com"

#: Most Spotify ids per ReccoBeats request.
RECCOBEATS_BATCH = 40
#: Deezer's quota: this many requests ...
DEEZER_MAX_CALLS = 50
#: ... per this many seconds.
DEEZER_PERIOD_S = 5.0

_SPOTIFY_TRACK_LINK = re.compile(r"open\.spotify\.com/(?:intl-[\w-]+/)?track/([0-9A-Za-z]{22})")
_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
# Deezer's in-body error codes that mean the same as an HTTP status (for the retry policy).
_DEEZER_CODE_STATUS = {4: 429, 700: 503}
_DEEZER_NOT_FOUND = 800


@dataclass(frozen=True)
class FallbackEndpoints:
    """Base URLs of the fallback providers.

    Attributes
    ----------
    reccobeats_url : str
        ReccoBeats API base including its version, ``https://api.reccobeats.com/v1``.
    deezer_url : str
        Deezer API base, ``https://api.deezer.com``.
    """

    reccobeats_url: str = DEFAULT_RECCOBEATS_URL
    deezer_url: str = DEFAULT_DEEZER_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "reccobeats_url", check_base_url(self.reccobeats_url, name=RECCOBEATS_URL_ENV))
        object.__setattr__(self, "deezer_url", check_base_url(self.deezer_url, name=DEEZER_URL_ENV))

    @classmethod
    def from_env(cls) -> FallbackEndpoints:
        """Read ``SONGMIX_RECCOBEATS_URL`` / ``SONGMIX_DEEZER_URL``, else the defaults."""
        return cls(
            reccobeats_url=os.environ.get(RECCOBEATS_URL_ENV) or DEFAULT_RECCOBEATS_URL,
            deezer_url=os.environ.get(DEEZER_URL_ENV) or DEFAULT_DEEZER_URL,
        )


@dataclass(frozen=True)
class DeezerPreview:
    """A Deezer track found by ISRC, with its preview.

    Attributes
    ----------
    deezer_id : int
        Deezer's track id (stable; safe to store).
    preview_url : str
        Signed MP3 URL, valid for minutes: download now, never store it. Left out of ``repr``
        so it cannot slip into a log.
    bpm : float or None
        Deezer's tempo estimate; ``None`` where Deezer says 0 (unknown).
    duration_s : int or None
        Length of the full track in seconds.
    """

    deezer_id: int
    preview_url: str = field(repr=False)
    bpm: float | None
    duration_s: int | None


@dataclass(frozen=True)
class DeezerMiss:
    """No Deezer preview for an ISRC, and why (for the ``failed_items`` table).

    Attributes
    ----------
    isrc : str or None
        The ISRC asked about.
    reason : str
        One line: no ISRC, no such track on Deezer, or a track without a preview.
    """

    isrc: str | None
    reason: str


def make_deezer_rate_limiter() -> RateLimiter:
    """A limiter for Deezer's quota (50 requests per 5 s); share one per process."""
    return RateLimiter(DEEZER_MAX_CALLS, DEEZER_PERIOD_S)


def fetch_reccobeats_features(
    session: requests.Session, base_url: str, spotify_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """ReccoBeats' audio features for up to 40 Spotify tracks.

    Parameters
    ----------
    session : requests.Session
        From :func:`songmix.sources.http.make_session`.
    base_url : str
        ReccoBeats base, e.g. :attr:`FallbackEndpoints.reccobeats_url`.
    spotify_ids : list of str
        1 to 40 Spotify track ids.

    Returns
    -------
    dict
        ``{spotify_id: {feature: value}}`` with the keys of
        :data:`~songmix.sources.schema.SPOTIFY_FEATURE_COLUMNS` (``None`` where ReccoBeats
        left one out). Ids ReccoBeats does not know are absent.

    Raises
    ------
    ProviderError
        On a non-2xx answer (429 carries ``Retry-After``) or a malformed body.
    """
    if isinstance(spotify_ids, str) or not 1 <= len(spotify_ids) <= RECCOBEATS_BATCH:
        raise ValueError(f"pass a list of 1 to {RECCOBEATS_BATCH} Spotify track ids per ReccoBeats request")
    bad = [spotify_id for spotify_id in spotify_ids if not _SPOTIFY_ID.match(str(spotify_id))]
    if bad:
        raise ValueError(f"not Spotify track ids (22 letters and digits): {bad[:3]}")
    url = f"{check_base_url(base_url, name=RECCOBEATS_URL_ENV)}/audio-features"
    body = _get_json(session, url, provider="reccobeats", params={"ids": ",".join(spotify_ids)})
    entries = body.get("content") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise ProviderError("audio-features answer has no content list", provider="reccobeats", status=502)
    wanted = set(spotify_ids)
    features: dict[str, dict[str, Any]] = {}
    for entry in entries:
        link = _SPOTIFY_TRACK_LINK.search(str((entry or {}).get("href", "")))
        if link is not None and link.group(1) in wanted:
            features[link.group(1)] = {column: entry.get(column) for column in SPOTIFY_FEATURE_COLUMNS}
    return features


def resolve_deezer_preview(
    session: requests.Session, base_url: str, isrc: str | None, *, rate_limiter: RateLimiter
) -> DeezerPreview | DeezerMiss:
    """Find a track's 30 s preview on Deezer by ISRC.

    Parameters
    ----------
    session : requests.Session
        From :func:`songmix.sources.http.make_session`.
    base_url : str
        Deezer base, e.g. :attr:`FallbackEndpoints.deezer_url`.
    isrc : str or None
        The track's ISRC (Spotify's ``external_ids.isrc``); hyphens and case are ignored.
    rate_limiter : RateLimiter
        Shared by every Deezer call of the process (:func:`make_deezer_rate_limiter`).

    Returns
    -------
    DeezerPreview or DeezerMiss
        A miss (no ISRC, unknown ISRC, no preview) is an answer, not an error.

    Raises
    ------
    ProviderError
        Quota exceeded (status 429, retry after 5 s), Deezer busy (503), other in-body errors
        (400), a non-2xx answer or a malformed body.
    """
    normalized = (isrc or "").replace("-", "").strip().upper()
    if not normalized:
        return DeezerMiss(isrc, "the track has no ISRC to look up on Deezer")
    if not _ISRC.match(normalized):
        return DeezerMiss(isrc, f"{isrc!r} is not a valid ISRC")
    url = f"{check_base_url(base_url, name=DEEZER_URL_ENV)}/track/isrc:{normalized}"
    rate_limiter.acquire()
    body = _get_json(session, url, provider="deezer")
    if not isinstance(body, dict):
        raise ProviderError("track answer is not a JSON object", provider="deezer", status=502)
    if "error" in body:
        return _deezer_error(normalized, body["error"])
    if not body.get("id"):
        raise ProviderError("track answer has neither an id nor an error", provider="deezer", status=502)
    if not body.get("preview"):
        return DeezerMiss(normalized, f"Deezer track {body.get('id')} has no preview")
    return DeezerPreview(
        deezer_id=int(body["id"]),
        preview_url=body["preview"],
        bpm=float(body["bpm"]) if body.get("bpm") else None,
        duration_s=int(body["duration"]) if body.get("duration") else None,
    )


def _deezer_error(isrc: str, error: Any) -> DeezerMiss:
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    if code == _DEEZER_NOT_FOUND:
        return DeezerMiss(isrc, f"Deezer has no track with ISRC {isrc}")
    described = f"{error.get('type', 'error')} {code}: {error.get('message', 'no message')}"
    status = _DEEZER_CODE_STATUS.get(code, 400)
    raise ProviderError(
        f"track lookup failed: {described}",
        provider="deezer",
        status=status,
        # Deezer's quota window is 5 s and it sends no Retry-After: wait out one window.
        retry_after_s=DEEZER_PERIOD_S if status == 429 else None,
    )


def _get_json(session: requests.Session, url: str, *, provider: str, params: dict[str, str] | None = None) -> Any:
    response = session.get(url, params=params)
    if not response.ok:
        raise provider_error_from_response(response, provider=provider)
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError("answer is not valid JSON", provider=provider, status=502) from exc
