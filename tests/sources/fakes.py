"""Loopback fakes of Spotify (accounts + Web API), ReccoBeats and Deezer, with scripted faults.

Each fake registers its routes on a ``pytest_httpserver.HTTPServer`` (the ``loopback`` fixture
below, or one started by hand: ``HTTPServer(host="127.0.0.1", port=0, threaded=True)``, then
``.start()``; point ``SONGMIX_*_URL`` at the fakes' URLs for a CLI run) under its own path
prefix, so one server hosts all three and the base URLs exercise the "base URL is
configuration" path, prefixes included. The fakes speak the subset the clients use, with the
real services' limits (search pages of at most 10, ``offset + limit <= 1000``, 100 ids per
audio-features call, 40 per ReccoBeats call, Deezer errors inside HTTP 200).

Faults are queued per route and served before normal answers::

    spotify.inject("search", Fault.rate_limited(1), Fault.server_error(503))
    spotify.calls["search"]   # requests the route has seen, faults included

Test data comes from :func:`make_track` and :func:`make_features` (deterministic by index).
:func:`start_spotify_world` sets up all of them as a new Spotify app meets them today, with
real audio behind the previews, for end-to-end runs (tests and ``benchmarks/spotify_requests.py``).

Use the ``loopback`` fixture (import it together with ``loopback_server``) rather than
pytest-httpserver's ``httpserver``: that one answers one request at a time, so a request a
client abandoned on a timeout waits in the queue and is later answered by the *next* test's
handlers, eating its scripted faults. ``loopback`` is threaded: a slow answer delays no one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import soundfile
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

from songmix.sources.demo_audio import SAMPLE_RATE, render_preview
from songmix.sources.spotify import SpotifyEndpoints

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# ----------------------------------------------------------------------------- server


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[HTTPServer]:
    """A threaded loopback HTTP server shared by one test module."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def loopback(loopback_server: HTTPServer) -> HTTPServer:
    """The module's server with no routes, for one test."""
    loopback_server.clear()
    return loopback_server


# ----------------------------------------------------------------------------- test data


def make_track_id(index: int) -> str:
    """A deterministic 22-character base62 id."""
    number = int.from_bytes(hashlib.sha256(f"track-{index}".encode()).digest(), "big")
    digits = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(digits)


def make_isrc(index: int) -> str:
    """A syntactically valid ISRC (``QZ`` + ``FAK`` + year 20 + 5 digits)."""
    return f"QZFAK20{index:05d}"


def make_track(index: int, *, year: int = 2020, preview_url: str | None = None) -> dict[str, Any]:
    """A Spotify full track object as a Development Mode app sees it (no popularity)."""
    return {
        "id": make_track_id(index),
        "type": "track",
        "name": f"Song {index}",
        "artists": [
            {"id": make_track_id(10_000 + index % 7), "name": f"Artist {index % 7}"},
            {"id": make_track_id(20_000 + index % 3), "name": f"Guest, {index % 3}"},
        ],
        "album": {
            "id": make_track_id(30_000 + index // 5),
            "name": f"Album {index // 5}",
            "release_date": f"{year}-03-{1 + index % 28:02d}",
        },
        "duration_ms": 180_000 + 1000 * (index % 60),
        "external_ids": {"isrc": make_isrc(index)},
        "preview_url": preview_url,
        "uri": f"spotify:track:{make_track_id(index)}",
    }


def make_features(index: int) -> dict[str, Any]:
    """Plausible Spotify audio features for track ``index`` (seeded by the index)."""
    rng = random.Random(index)
    return {
        "danceability": round(rng.random(), 3),
        "energy": round(rng.random(), 3),
        "key": rng.randrange(12),
        "loudness": round(rng.uniform(-20, -3), 2),
        "mode": rng.randrange(2),
        "speechiness": round(rng.random() * 0.3, 3),
        "acousticness": round(rng.random(), 3),
        "instrumentalness": round(rng.random(), 3),
        "liveness": round(rng.random() * 0.5, 3),
        "valence": round(rng.random(), 3),
        "tempo": round(rng.uniform(70, 180), 2),
    }


# ----------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One scripted answer served instead of (or, with ``status=None``, before) the normal one.

    Attributes
    ----------
    status : int or None
        HTTP status to answer; ``None`` answers normally after ``delay_s``.
    body : str
        Response body.
    headers : dict
        Response headers.
    delay_s : float
        Seconds to wait before answering (longer than the client's timeout = a timeout).
    """

    status: int | None = None
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after_s: float | None) -> Fault:
        """429, with ``Retry-After`` unless ``None``."""
        headers = {} if retry_after_s is None else {"Retry-After": f"{retry_after_s:g}"}
        return cls(429, _error_body(429, "API rate limit exceeded"), headers)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """A 5xx with a JSON error body."""
        return cls(status, _error_body(status, "Server error"))

    @classmethod
    def forbidden(cls) -> Fault:
        """403, as Spotify answers audio-features for new apps."""
        return cls(403, _error_body(403, "Forbidden"))

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """The normal answer, ``delay_s`` late."""
        return cls(None, delay_s=delay_s)

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200 whose body is cut-off JSON."""
        return cls(200, '{"tracks": {"items": [')

    @classmethod
    def json(cls, payload: Any, *, status: int = 200) -> Fault:
        """Any JSON body, e.g. Deezer's error-in-200 (see :data:`DEEZER_QUOTA`)."""
        return cls(status, json.dumps(payload))


def _error_body(status: int, message: str) -> str:
    return json.dumps({"error": {"status": status, "message": message}})


#: Deezer's quota error: HTTP 200, error code 4.
DEEZER_QUOTA = Fault.json({"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}})


class _FakeService:
    """Routes on a shared server, with per-route fault queues and request counts."""

    def __init__(self, server: HTTPServer, prefix: str) -> None:
        self.server = server
        self.prefix = prefix.rstrip("/")
        self.calls: Counter[str] = Counter()
        self._faults: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()

    def url(self, suffix: str = "") -> str:
        """Absolute URL of ``prefix + suffix`` on the server."""
        return self.server.url_for(self.prefix + suffix)

    def inject(self, route: str, *faults: Fault) -> None:
        """Queue faults for the next requests to ``route``, in order."""
        with self._lock:
            self._faults[route].extend(faults)

    def _serve(self, route: str, uri: str, method: str, answer: Callable[[Request], Response]) -> None:
        pattern = re.compile("^" + re.escape(self.prefix) + uri + "$")

        def handle(request: Request) -> Response:
            with self._lock:
                self.calls[route] += 1
                fault = self._faults[route].popleft() if self._faults[route] else None
            if fault is not None:
                time.sleep(fault.delay_s)
                if fault.status is not None:
                    return Response(fault.body, fault.status, dict(fault.headers), content_type="application/json")
            return answer(request)

        self.server.expect_request(pattern, method=method).respond_with_handler(handle)


def _error_response(status: int, message: str) -> Response:
    return Response(_error_body(status, message), status, content_type="application/json")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status, content_type="application/json")


def _paging(items: list[Any], *, total: int, offset: int, limit: int, next_url: str | None, href: str) -> dict:
    return {
        "href": href, "items": items, "limit": limit, "next": next_url,
        "offset": offset, "previous": None, "total": total,
    }  # fmt: skip


# ----------------------------------------------------------------------------- Spotify


class FakeSpotify(_FakeService):
    """Spotify accounts (client credentials) and the Web API subset songmix uses.

    Routes: ``token`` (POST ``/accounts/api/token``), ``search``, ``audio-features``,
    ``playlist-items`` (GET ``/api/v1/playlists/<id>/items``, entries under ``"item"`` as
    since February 2026).

    Parameters
    ----------
    server : HTTPServer
    client_id, client_secret : str
        The only pair the token endpoint accepts (else 400 ``invalid_client``).
    search_results : mapping
        Query -> track objects it finds; other queries find nothing.
    audio_features : mapping or None
        Track id -> features; ``None`` answers 403 like for apps created after 2024-11-27.
    playlists : mapping
        Playlist id -> track objects.
    prefix : str
        Path prefix of this fake on the server.
    """

    def __init__(
        self,
        server: HTTPServer,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        search_results: Mapping[str, Sequence[dict[str, Any]]] | None = None,
        audio_features: Mapping[str, dict[str, Any]] | None = None,
        playlists: Mapping[str, Sequence[dict[str, Any]]] | None = None,
        prefix: str = "/spotify",
    ) -> None:
        super().__init__(server, prefix)
        self._basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self.search_results = dict(search_results or {})
        self.audio_features = audio_features
        self.playlists = dict(playlists or {})
        self.issued_tokens: list[str] = []
        self._serve("token", "/accounts/api/token", "POST", self._token)
        self._serve("search", "/api/v1/search", "GET", self._authorized(self._search))
        self._serve("audio-features", "/api/v1/audio-features/?", "GET", self._authorized(self._audio_features))
        self._serve("playlist-items", "/api/v1/playlists/[^/]+/items", "GET", self._authorized(self._playlist_items))

    @property
    def api_url(self) -> str:
        return self.url("/api/v1")

    @property
    def accounts_url(self) -> str:
        return self.url("/accounts")

    @property
    def endpoints(self) -> SpotifyEndpoints:
        return SpotifyEndpoints(api_url=self.api_url, accounts_url=self.accounts_url)

    def _token(self, request: Request) -> Response:
        authorized = request.headers.get("Authorization") == self._basic
        if not authorized or request.form.get("grant_type") != "client_credentials":
            return _json({"error": "invalid_client", "error_description": "Invalid client secret"}, 400)
        token = f"fake-token-{len(self.issued_tokens)}"
        self.issued_tokens.append(token)
        return _json({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def _authorized(self, answer: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def check(request: Request) -> Response:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or token not in self.issued_tokens:
                return _error_response(401, "Invalid access token")
            return answer(request)

        return check

    def _search(self, request: Request) -> Response:
        query = request.args.get("q") or request.args.get("query") or ""
        limit, offset = int(request.args.get("limit", 10)), int(request.args.get("offset", 0))
        if request.args.get("type") != "track" or not query:
            return _error_response(400, "Bad search request")
        if not 1 <= limit <= 10 or offset + limit > 1000:
            return _error_response(400, "Invalid limit or offset")
        found = list(self.search_results.get(query, []))
        reachable = min(len(found), 1000)
        # Spotify's own next links name the query "query", not "q".
        next_url = (
            f"{self.api_url}/search?offset={offset + limit}&limit={limit}&query={quote(query)}&type=track"
            if offset + limit < reachable
            else None
        )
        page = _paging(
            found[offset : offset + limit], total=len(found), offset=offset, limit=limit, next_url=next_url, href=request.url
        )
        return _json({"tracks": page})

    def _audio_features(self, request: Request) -> Response:
        ids = [i for i in request.args.get("ids", "").split(",") if i]
        if not 1 <= len(ids) <= 100:
            return _error_response(400, "Too many ids requested")
        if self.audio_features is None:
            return _error_response(403, "Forbidden")
        known = self.audio_features
        rows = [{**known[i], "id": i, "type": "audio_features"} if i in known else None for i in ids]
        return _json({"audio_features": rows})

    def _playlist_items(self, request: Request) -> Response:
        playlist_id = request.path.rstrip("/").split("/")[-2]
        if playlist_id not in self.playlists:
            return _error_response(404, "Resource not found")
        tracks = list(self.playlists[playlist_id])
        limit, offset = int(request.args.get("limit", 50)), int(request.args.get("offset", 0))
        if not 1 <= limit <= 50:
            return _error_response(400, "Invalid limit")
        base = f"{self.api_url}/playlists/{playlist_id}/items"
        next_url = f"{base}?offset={offset + limit}&limit={limit}" if offset + limit < len(tracks) else None
        items = [
            {"added_at": "2020-12-31T00:00:00Z", "is_local": False, "item": track}
            for track in tracks[offset : offset + limit]
        ]
        return _json(_paging(items, total=len(tracks), offset=offset, limit=limit, next_url=next_url, href=request.url))


# ----------------------------------------------------------------------------- ReccoBeats


class FakeReccoBeats(_FakeService):
    """ReccoBeats ``GET /v1/audio-features?ids=`` (route ``audio-features``).

    Answers known ids only, in reverse order, under ReccoBeats' own uuids, so a client must
    map rows back through ``href``.

    Parameters
    ----------
    server : HTTPServer
    features : mapping
        Spotify track id -> features.
    prefix : str
    """

    def __init__(
        self, server: HTTPServer, *, features: Mapping[str, dict[str, Any]], prefix: str = "/reccobeats"
    ) -> None:
        super().__init__(server, prefix)
        self.features = dict(features)
        self._serve("audio-features", "/v1/audio-features", "GET", self._audio_features)

    @property
    def base_url(self) -> str:
        return self.url("/v1")

    def _audio_features(self, request: Request) -> Response:
        ids = [i for i in request.args.get("ids", "").split(",") if i]
        if not 1 <= len(ids) <= 40:
            return _error_response(400, "ids must hold 1 to 40 ids")
        content = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, i)),
                "href": f"https://open.spotify.com/track/{i}",
                **self.features[i],
            }
            for i in reversed(ids)
            if i in self.features
        ]
        return _json({"content": content})


# ----------------------------------------------------------------------------- Deezer


class FakeDeezer(_FakeService):
    """Deezer ``GET /track/isrc:<ISRC>`` (route ``track``) and signed previews (route ``preview``).

    Unknown ISRCs get HTTP 200 ``{"error": {"code": 800}}``. Preview URLs carry an expiry and an
    HMAC like Deezer's; past ``preview_ttl_s`` they answer 403.

    Parameters
    ----------
    server : HTTPServer
    tracks : mapping
        ISRC -> ``{"id": int, "bpm": float, "duration": int}``; ``"preview": False`` for a
        track without a preview.
    preview_bytes : bytes
        What every preview URL serves.
    preview_ttl_s : float
        Lifetime of a signed preview URL.
    prefix : str
    """

    def __init__(
        self,
        server: HTTPServer,
        *,
        tracks: Mapping[str, Mapping[str, Any]],
        preview_bytes: bytes = b"ID3\x04\x00fake-mp3",
        preview_ttl_s: float = 900.0,
        prefix: str = "/deezer",
    ) -> None:
        super().__init__(server, prefix)
        self.tracks = dict(tracks)
        self.preview_bytes = preview_bytes
        self.preview_ttl_s = preview_ttl_s
        self._serve("track", "/track/isrc:[^/]+", "GET", self._track)
        self._serve("preview", "/preview/[0-9]+\\.mp3", "GET", self._preview)

    @property
    def base_url(self) -> str:
        return self.url()

    def _track(self, request: Request) -> Response:
        isrc = request.path.rsplit("isrc:", 1)[-1]
        track = self.tracks.get(isrc)
        if track is None:
            return _json({"error": {"type": "DataException", "message": "no data", "code": 800}})
        expires = int(time.time() + self.preview_ttl_s)
        track_id = track["id"]
        preview = f"{self.url(f'/preview/{track_id}.mp3')}?hdnea=exp={expires}~hmac={self._sign(track_id, expires)}"
        return _json(
            {
                "id": track_id,
                "isrc": isrc,
                "title": f"Deezer {track_id}",
                "duration": track.get("duration", 0),
                "bpm": track.get("bpm", 0),
                "preview": preview if track.get("preview", True) else "",
            }
        )

    def _preview(self, request: Request) -> Response:
        track_id = int(request.path.rsplit("/", 1)[-1].removesuffix(".mp3"))
        match = re.fullmatch(r"exp=(\d+)~hmac=([0-9a-f]+)", request.args.get("hdnea", ""))
        if match is None or match[2] != self._sign(track_id, int(match[1])) or int(match[1]) < time.time():
            return Response("expired or invalid signature", 403)
        return Response(self.preview_bytes, 200, content_type="audio/mpeg")

    @staticmethod
    def _sign(track_id: int, expires: int) -> str:
        return hashlib.sha256(f"{track_id}:{expires}".encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- a whole world


def render_base_clips(n_clips: int, *, duration_s: float = 3.0) -> list[np.ndarray]:
    """A few short demo clips for :func:`preview_wav` to vary per track (rendering is the slow part).

    Returns
    -------
    list of ndarray of float32, each of shape (round(duration_s * SAMPLE_RATE),)
    """
    return [render_preview(make_features(i), seed=i, duration_s=duration_s) for i in range(n_clips)]


def preview_wav(index: int, clips: Sequence[np.ndarray]) -> bytes:
    """Track ``index``'s preview as WAV bytes: a base clip at a gain of its own, so every
    track has distinct bytes (its own cache entry) and distinct Aubio features."""
    samples = clips[index % len(clips)] * (0.3 + 0.6 * ((index * 7919) % 101) / 100)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class AudioDeezer(FakeDeezer):
    """The Deezer fake, serving Deezer track id ``index + 1`` the WAV of track ``index``."""

    def __init__(self, server: HTTPServer, *, tracks: Mapping[str, Mapping[str, Any]],
                 clips: Sequence[np.ndarray], prefix: str = "/deezer") -> None:
        self._clips = clips
        super().__init__(server, tracks=tracks, prefix=prefix)

    def _preview(self, request: Request) -> Response:
        answer = super()._preview(request)
        if answer.status_code != 200:
            return answer
        deezer_id = int(request.path.rsplit("/", 1)[-1].removesuffix(".mp3"))
        return Response(preview_wav(deezer_id - 1, self._clips), 200, content_type="audio/wav")


class FakeListedPreviews(_FakeService):
    """Spotify's preview CDN for the few tracks that still list a ``preview_url`` (route
    ``preview``, ``GET /listed/<index>.wav``)."""

    def __init__(self, server: HTTPServer, *, clips: Sequence[np.ndarray], prefix: str = "/listed") -> None:
        super().__init__(server, prefix)
        self._clips = clips
        self._serve("preview", "/[0-9]+\\.wav", "GET", self._preview)

    def preview_url(self, index: int) -> str:
        return self.url(f"/{index}.wav")

    def _preview(self, request: Request) -> Response:
        index = int(request.path.rsplit("/", 1)[-1].removesuffix(".wav"))
        return Response(preview_wav(index, self._clips), 200, content_type="audio/wav")


@dataclass(frozen=True)
class SpotifyWorld:
    """What a new Spotify app meets today, on one loopback server: search works, audio-features
    answer 403, almost no track lists a preview; ReccoBeats and Deezer fill in, with gaps.

    Attributes
    ----------
    spotify, reccobeats, deezer, listed : the fakes (each counts its requests in ``calls``)
    client_id, client_secret : str
        The credentials the Spotify fake accepts.
    """

    spotify: FakeSpotify
    reccobeats: FakeReccoBeats
    deezer: AudioDeezer
    listed: FakeListedPreviews
    client_id: str
    client_secret: str

    @property
    def environment(self) -> dict[str, str]:
        """The variables that point songmix at this world (base URLs and credentials)."""
        return {
            "SONGMIX_SPOTIFY_API_URL": self.spotify.api_url,
            "SONGMIX_SPOTIFY_ACCOUNTS_URL": self.spotify.accounts_url,
            "SONGMIX_RECCOBEATS_URL": self.reccobeats.base_url,
            "SONGMIX_DEEZER_URL": self.deezer.base_url,
            "SPOTIPY_CLIENT_ID": self.client_id,
            "SPOTIPY_CLIENT_SECRET": self.client_secret,
        }

    def requests(self) -> Counter[tuple[str, str]]:
        """Requests seen so far, by the real host each fake stands in for and by endpoint."""
        seen: Counter[tuple[str, str]] = Counter()
        for fake, host_of in ((self.spotify, lambda route: "accounts.spotify.com" if route == "token"
                               else "api.spotify.com"),
                              (self.reccobeats, lambda route: "api.reccobeats.com"),
                              (self.deezer, lambda route: "cdnt-preview.dzcdn.net" if route == "preview"
                               else "api.deezer.com"),
                              (self.listed, lambda route: "p.scdn.co")):
            for route, n in fake.calls.items():
                seen[host_of(route), route] += n
        return seen


def start_spotify_world(
    server: HTTPServer,
    *,
    catalog_size: int,
    clips: Sequence[np.ndarray],
    not_in_reccobeats: Collection[int] = (),
    not_on_deezer: Collection[int] = (),
    listed_preview: Collection[int] = (),
    query: str = "year:2020",
    client_id: str = "fake-client-id",
    client_secret: str = "fake-client-secret",
) -> SpotifyWorld:
    """Register a :class:`SpotifyWorld` on ``server`` whose search for ``query`` finds tracks
    ``0 .. catalog_size - 1`` (see :func:`make_track`).

    Parameters
    ----------
    server : HTTPServer
    catalog_size : int
        Tracks the search finds (Spotify serves at most 1000 per query).
    clips : sequence of ndarray
        Base clips of every preview (:func:`render_base_clips`).
    not_in_reccobeats, not_on_deezer : collection of int
        Indexes of tracks ReccoBeats has no features for / Deezer does not know by ISRC.
    listed_preview : collection of int
        Indexes of tracks whose search result lists a ``preview_url``.
    query : str
        The search query the catalog answers.
    client_id, client_secret : str
        The only credentials the accounts fake accepts.
    """
    listed = FakeListedPreviews(server, clips=clips)
    tracks = [make_track(i, preview_url=listed.preview_url(i) if i in listed_preview else None)
              for i in range(catalog_size)]
    spotify = FakeSpotify(server, client_id=client_id, client_secret=client_secret,
                          search_results={query: tracks}, audio_features=None,
                          playlists={make_track_id(9999): tracks[:25]})
    reccobeats = FakeReccoBeats(server, features={make_track_id(i): make_features(i) for i in range(catalog_size)
                                                  if i not in not_in_reccobeats})
    deezer = AudioDeezer(server, tracks={make_isrc(i): {"id": i + 1, "bpm": 120, "duration": 200}
                                         for i in range(catalog_size) if i not in not_on_deezer}, clips=clips)
    return SpotifyWorld(spotify, reccobeats, deezer, listed, client_id, client_secret)
