"""The Spotify Web API client, at today's limits, pointed at a configurable host.

Conventions
-----------
* Base URLs are configuration (:class:`SpotifyEndpoints`): ``SONGMIX_SPOTIFY_API_URL``
  (default ``https://api.spotify.com/v1``) and ``SONGMIX_SPOTIFY_ACCOUNTS_URL`` (default
  ``https://accounts.spotify.com``; the token is at ``/api/token`` under it), so the demo
  service, a proxy or a test fake stands in through the same spotipy client.
* No silent retries and a timeout on every request, token request included
  (:func:`make_spotify_client`): failures surface as exceptions for Prefect to retry under
  :func:`songmix.sources.http.retry_condition`.
* Development Mode limits: search pages hold at most :data:`SEARCH_PAGE_LIMIT` items and stop
  at ``offset + limit <= 1000`` (:data:`SEARCH_MAX_RESULTS`); beyond that the query is split
  by genre (:func:`partitioned_queries`). ``audio-features`` answers 403 to apps created after
  2024-11-27: :class:`AudioFeaturesForbidden` tells the caller to fall back to ReccoBeats.
* Track ids are 22-character base62 strings. Functions return Spotify's JSON as-is (for the
  raw tables) or flat rows from :func:`parse_track`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials

from songmix.sources.credentials import SpotifyCredentials
from songmix.sources.http import ProviderError, check_base_url, make_session

API_URL_ENV = "SONGMIX_SPOTIFY_API_URL"
ACCOUNTS_URL_ENV = "SONGMIX_SPOTIFY_ACCOUNTS_URL"
DEFAULT_API_URL = "https://api.spotify.com/v1"
DEFAULT_ACCOUNTS_URL = "https://accounts.spotify.com"

#: Most items a Development Mode app gets per search page.
SEARCH_PAGE_LIMIT = 10
#: Search refuses ``offset + limit`` beyond this, whatever the total.
SEARCH_MAX_RESULTS = 1000
#: Most ids per ``audio-features`` request.
AUDIO_FEATURES_BATCH = 100
#: Most items per playlist page.
PLAYLIST_PAGE_LIMIT = 50

#: Facets that split a query with more than 1000 wanted results, most populous first. Spotify's
#: ``genre:`` filter matches the artists' genres; these broad ones each hold far more than
#: 1000 tracks a year, and they overlap (a "dance pop" artist is in both), hence the dedupe.
SEARCH_GENRES: tuple[str, ...] = (
    "pop", "rock", "hip hop", "rap", "dance", "edm", "house", "r&b",
    "latin", "country", "indie", "alternative", "metal", "reggaeton", "soul", "jazz",
    "techno", "folk", "punk", "k-pop", "classical", "blues", "ambient", "soundtrack",
)  # fmt: skip

_BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_PLAYLIST_REF = re.compile(
    r"^(?:spotify:playlist:|(?:https?://)?open\.spotify\.com/(?:intl-[\w-]+/)?playlist/)?"
    r"(?P<id>[0-9A-Za-z]{22})(?:[?#].*)?$"
)
# Authorization header values as spotipy's debug logs print them.
_AUTHORIZATION_VALUE = re.compile(r"\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]+")


class AudioFeaturesForbidden(ProviderError):
    """Spotify refuses ``audio-features`` to this app (403): use the fallback provider."""


@dataclass(frozen=True)
class SpotifyEndpoints:
    """Where the Spotify Web API and its accounts service live.

    Attributes
    ----------
    api_url : str
        Web API base, up to and including the version: ``https://api.spotify.com/v1``.
    accounts_url : str
        Accounts service base; the token endpoint is ``accounts_url + "/api/token"``.
    """

    api_url: str = DEFAULT_API_URL
    accounts_url: str = DEFAULT_ACCOUNTS_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_url", check_base_url(self.api_url, name=API_URL_ENV))
        object.__setattr__(self, "accounts_url", check_base_url(self.accounts_url, name=ACCOUNTS_URL_ENV))

    @property
    def token_url(self) -> str:
        """The client-credentials token endpoint."""
        return f"{self.accounts_url}/api/token"

    @classmethod
    def from_env(cls) -> SpotifyEndpoints:
        """Read ``SONGMIX_SPOTIFY_API_URL`` / ``SONGMIX_SPOTIFY_ACCOUNTS_URL``, else the defaults."""
        return cls(
            api_url=os.environ.get(API_URL_ENV) or DEFAULT_API_URL,
            accounts_url=os.environ.get(ACCOUNTS_URL_ENV) or DEFAULT_ACCOUNTS_URL,
        )


def make_spotify_client(
    endpoints: SpotifyEndpoints, credentials: SpotifyCredentials, *, timeout: float = 10.0
) -> spotipy.Spotify:
    """A spotipy client with no hidden retries, no token file and a timeout everywhere.

    Parameters
    ----------
    endpoints : SpotifyEndpoints
        Hosts to talk to.
    credentials : SpotifyCredentials
        Client-credentials pair; the secret is sent only to ``endpoints.token_url``.
    timeout : float
        Seconds per connect and per read, for the token request and every API call.

    Returns
    -------
    spotipy.Spotify
        A 429 or 5xx raises ``SpotifyException`` (with the response headers) at once; the
        token is kept in memory (no ``.cache`` file); spotipy's debug logs of the
        ``Authorization`` header are redacted.
    """
    _install_spotipy_log_filters()
    session = make_session(timeout=timeout, trusted_urls=(endpoints.api_url, endpoints.accounts_url))
    auth = SpotifyClientCredentials(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret.reveal(),
        requests_session=session,
        requests_timeout=timeout,
        cache_handler=MemoryCacheHandler(),
    )
    # spotipy reads the token URL from the instance, so a fake or a proxy can stand in.
    auth.OAUTH_TOKEN_URL = endpoints.token_url
    client = spotipy.Spotify(
        auth_manager=auth,
        requests_session=session,
        requests_timeout=timeout,
        retries=0,
        status_retries=0,
    )
    client.prefix = endpoints.api_url + "/"
    return client


def fetch_search_page(
    client: spotipy.Spotify, query: str, *, offset: int, limit: int = SEARCH_PAGE_LIMIT
) -> dict[str, Any]:
    """One page of a track search, as Spotify sent it.

    Parameters
    ----------
    client : spotipy.Spotify
        From :func:`make_spotify_client`.
    query : str
        Search query, e.g. ``"year:2020"`` or ``'genre:"pop" year:2020'``.
    offset : int
        Index of the first result; ``offset + limit <= 1000``.
    limit : int
        Results per page, 1 to 10.

    Returns
    -------
    dict
        ``{"tracks": {"items": [...], "next": url or None, "total": int, ...}}``.
    """
    if not query or not query.strip():
        raise ValueError("the search query is empty; pass e.g. 'year:2020'")
    _check_page_size(limit)
    if offset < 0 or offset + limit > SEARCH_MAX_RESULTS:
        raise ValueError(
            f"search needs 0 <= offset and offset + limit <= {SEARCH_MAX_RESULTS}, got offset "
            f"{offset}, limit {limit}; split the query with partitioned_queries() to go further"
        )
    return _check_search_page(client.search(q=query, limit=limit, offset=offset, type="track"))


def partitioned_queries(base_query: str, n_tracks: int) -> list[str]:
    """Queries whose results together can hold ``n_tracks`` distinct tracks.

    Up to 1000 tracks, the query itself. Beyond, one query per genre of
    :data:`SEARCH_GENRES` (``'genre:"pop" year:2020'``, ...): each yields up to 1000, and
    ``ceil(n_tracks / 1000)`` of them could suffice, but partitions overlap and some run
    short, so all are returned in order. Walk them in order, keep each track once, and stop
    once ``n_tracks`` distinct tracks are in.

    Parameters
    ----------
    base_query : str
        The query to split, e.g. ``"year:2020"``; must not already filter by genre.
    n_tracks : int
        Distinct tracks wanted.

    Returns
    -------
    list of str
    """
    if n_tracks < 1:
        raise ValueError(f"n_tracks must be at least 1, got {n_tracks}")
    if n_tracks <= SEARCH_MAX_RESULTS:
        return [base_query]
    if "genre:" in base_query:
        raise ValueError(
            f"{base_query!r} already filters by genre, so it cannot be split by genre to reach "
            f"{n_tracks} tracks; ask for at most {SEARCH_MAX_RESULTS}"
        )
    if math.ceil(n_tracks / SEARCH_MAX_RESULTS) > len(SEARCH_GENRES):
        raise ValueError(
            f"at most {len(SEARCH_GENRES) * SEARCH_MAX_RESULTS} tracks can be searched for per query "
            f"({len(SEARCH_GENRES)} genres x {SEARCH_MAX_RESULTS}); asked for {n_tracks}"
        )
    return [f'genre:"{genre}" {base_query}' for genre in SEARCH_GENRES]


def fetch_audio_features(client: spotipy.Spotify, track_ids: list[str]) -> list[dict[str, Any] | None]:
    """Spotify's audio features of up to 100 tracks.

    Parameters
    ----------
    client : spotipy.Spotify
    track_ids : list of str
        1 to 100 track ids.

    Returns
    -------
    list of dict or None
        One entry per id, in order; ``None`` for ids Spotify has no features for.

    Raises
    ------
    AudioFeaturesForbidden
        On 403, which every app created after 2024-11-27 gets: fall back to ReccoBeats.
    """
    _check_track_ids(track_ids, batch=AUDIO_FEATURES_BATCH)
    try:
        # Not `client.audio_features()`: it warns on every call, requests "audio-features/"
        # (trailing slash) and fails with a TypeError when the body is not JSON.
        body = client._get("audio-features", ids=",".join(track_ids))
    except spotipy.SpotifyException as exc:
        if exc.http_status == 403:
            raise AudioFeaturesForbidden(
                "audio-features refused (apps created after 2024-11-27 get 403); use the fallback",
                provider="spotify",
                status=403,
            ) from exc
        raise
    features = body.get("audio_features") if isinstance(body, dict) else None
    if not isinstance(features, list) or len(features) != len(track_ids):
        raise ProviderError(
            f"audio-features answered no list of {len(track_ids)} entries (malformed body?)",
            provider="spotify",
            status=502,
        )
    return features


def playlist_id_from_ref(ref: str) -> str:
    """The playlist id in a share URL, a ``spotify:playlist:`` URI, or a bare id."""
    match = _PLAYLIST_REF.match(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        raise ValueError(
            f"{ref!r} is not a Spotify playlist: pass its id (22 letters and digits), its "
            "spotify:playlist:<id> URI or its https://open.spotify.com/playlist/<id> link"
        )
    return match["id"]


def fetch_playlist_tracks(
    client: spotipy.Spotify, playlist: str, *, page_size: int = PLAYLIST_PAGE_LIMIT
) -> list[dict[str, Any]]:
    """Every track object in a playlist, following ``next`` across pages.

    Parameters
    ----------
    client : spotipy.Spotify
    playlist : str
        Playlist id, URI or share URL.
    page_size : int
        Items per page, 1 to 50.

    Returns
    -------
    list of dict
        Spotify track objects in playlist order; episodes and local files (no id) are left out.
    """
    if not 1 <= page_size <= PLAYLIST_PAGE_LIMIT:
        raise ValueError(f"page_size must be 1 to {PLAYLIST_PAGE_LIMIT}, got {page_size}")
    page = client.playlist_items(playlist_id_from_ref(playlist), limit=page_size, additional_types=("track",))
    tracks: list[dict[str, Any]] = []
    while page is not None:
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise ProviderError("a playlist page came without an items list", provider="spotify", status=502)
        for entry in page["items"]:
            # Since February 2026 the entry's object is under "item"; before, under "track".
            track = (entry or {}).get("item") or (entry or {}).get("track")
            if track and track.get("type", "track") == "track" and track.get("id"):
                tracks.append(track)
        page = _follow_next(client, page) if page.get("next") else None
    return tracks


def parse_track(track: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a Spotify track object into one row.

    Parameters
    ----------
    track : dict
        A full or simplified track object.

    Returns
    -------
    dict
        ``track_id, name, artists`` (names joined by ``", "``), ``artist_ids`` (joined by
        ``","``), ``album, album_id, release_date`` (as given: ``YYYY``, ``YYYY-MM`` or
        ``YYYY-MM-DD``), ``year, duration_ms, isrc, preview_url, popularity``; fields
        Spotify left out (popularity, for Development Mode apps) are ``None``.
    """
    if not isinstance(track, Mapping) or not track.get("id"):
        raise ValueError("not a Spotify track object with an id (local files have none)")
    artists = track.get("artists") or []
    album = track.get("album") or {}
    release_date = album.get("release_date")
    year_text = (release_date or "")[:4]
    year = int(year_text) if year_text.isdigit() and int(year_text) > 0 else None
    return {
        "track_id": track["id"],
        "name": track.get("name"),
        "artists": ", ".join(artist["name"] for artist in artists),
        "artist_ids": ",".join(artist["id"] for artist in artists if artist.get("id")),
        "album": album.get("name"),
        "album_id": album.get("id"),
        "release_date": release_date,
        "year": year,
        "duration_ms": track.get("duration_ms"),
        "isrc": (track.get("external_ids") or {}).get("isrc"),
        "preview_url": track.get("preview_url"),
        "popularity": track.get("popularity"),
    }


def _follow_next(client: spotipy.Spotify, paging: Mapping[str, Any]) -> Any:
    """The page behind a paging object's ``next`` link, which must stay on the API: spotipy
    sends the access token along to wherever it points."""
    if not str(paging["next"]).startswith(client.prefix):
        raise ProviderError(
            f"a page's next link leaves the API ({urlsplit(str(paging['next'])).netloc or 'no host'}); "
            "not followed", provider="spotify", status=502)
    return client.next(paging)


def _check_page_size(limit: int) -> None:
    if not 1 <= limit <= SEARCH_PAGE_LIMIT:
        raise ValueError(f"search pages hold 1 to {SEARCH_PAGE_LIMIT} items for Development Mode apps, got {limit}")


def _check_track_ids(track_ids: list[str], *, batch: int) -> None:
    if isinstance(track_ids, str) or not 1 <= len(track_ids) <= batch:
        raise ValueError(f"pass a list of 1 to {batch} track ids per request")
    bad = [track_id for track_id in track_ids if not isinstance(track_id, str) or not _BASE62_ID.match(track_id)]
    if bad:
        raise ValueError(f"not Spotify track ids (22 letters and digits, no URI prefix): {bad[:3]}")


def _check_search_page(page: Any) -> dict[str, Any]:
    # spotipy returns None for a 200 whose body is not JSON.
    if not isinstance(page, dict) or not isinstance((page.get("tracks") or {}).get("items"), list):
        raise ProviderError(
            "a search page came back without tracks.items (malformed body?)", provider="spotify", status=502
        )
    return page


class _RedactAuthorization(logging.Filter):
    """Blanks ``Basic``/``Bearer`` values in spotipy's debug logs (the Basic one is the secret)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _AUTHORIZATION_VALUE.sub(r"\1 ***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class _HandledHttpErrors(logging.Filter):
    """Demotes spotipy's ERROR record of every HTTP error it raises: songmix handles each (a
    fallback, a retry, or a failure it reports itself), so the worker's log and the Prefect UI
    show no error for work that then succeeds. The audio-features 403, which every app created
    after 2024-11-27 gets, becomes INFO; other statuses WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno == logging.ERROR and message.startswith("HTTP Error for "):
            expected = "/audio-features" in message and " returned 403 " in message
            record.levelno = logging.INFO if expected else logging.WARNING
            record.levelname = logging.getLevelName(record.levelno)
        return True


def _install_spotipy_log_filters() -> None:
    """Redact credentials in spotipy's logs and demote the HTTP errors songmix handles (once)."""
    for name in ("spotipy.oauth2", "spotipy.client"):
        spotipy_logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactAuthorization) for f in spotipy_logger.filters):
            spotipy_logger.addFilter(_RedactAuthorization())
    client_logger = logging.getLogger("spotipy.client")
    if not any(isinstance(f, _HandledHttpErrors) for f in client_logger.filters):
        client_logger.addFilter(_HandledHttpErrors())
