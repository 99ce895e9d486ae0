"""A loopback HTTP server speaking the part of the Spotify Web API the pipeline uses.

The demo run reaches it through the same spotipy client and downloader as a real run; only the
base URLs differ (``DemoService.api_url``, ``DemoService.accounts_url``). It serves a
:class:`~songmix.sources.demo_catalog.DemoCatalog` and its rendered previews:

- ``POST /accounts/api/token``: client-credentials grant with HTTP Basic auth; 401 for other
  credentials.
- ``GET /v1/search?q=&type=track&limit=&offset=``: Bearer token required; ``limit`` 1-10 and
  ``offset + limit`` at most 1000 (Development Mode limits), else 400. The query understands
  ``year:YYYY`` or ``year:YYYY-YYYY``, ``genre:NAME`` (a demo group name) and free words matched
  against track, artist and album names. ``next`` is an absolute URL while ``offset + limit``
  is below ``total``, as Spotify does, so a client following it past 1000 meets the 400.
- ``GET /v1/audio-features?ids=`` (at most 100 ids; unknown ids give ``null``) and
  ``GET /v1/audio-features/{id}``; the ``audio_features_status`` option answers them with another
  status, e.g. 403 as Spotify does for apps created after 2024-11-27.
- ``GET /v1/tracks/{id}``.
- ``GET /previews/{id}.mp3``: the rendered file; tracks without one get ``preview_url: null``.

Errors use Spotify's body ``{"error": {"status": ..., "message": ...}}`` (the token endpoint uses
OAuth's ``{"error": ..., "error_description": ...}``). The server logs nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import shutil
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from songmix.sources.demo_catalog import SPOTIFY_API_URL, DemoCatalog

DEMO_CLIENT_ID = "songmix-demo"
DEMO_CLIENT_SECRET = "songmix-demo-secret"
MAX_SEARCH_LIMIT = 10
MAX_SEARCH_WINDOW = 1000  # offset + limit
MAX_AUDIO_FEATURES_IDS = 100
TOKEN_LIFETIME_S = 3600
ENDPOINTS: tuple[str, ...] = ("token", "search", "audio_features", "tracks", "previews", "unknown")

_YEAR_FILTER = re.compile(r"^(\d{4})(?:-(\d{4}))?$")


class DemoService:
    """The demo Spotify API on a free loopback port, for the duration of a ``with`` block.

    Parameters
    ----------
    catalog : DemoCatalog
        Tracks and audio features to serve.
    audio_paths : Mapping of str to Path
        Track id to its rendered preview (from ``render_catalog_audio``); tracks missing here get
        ``preview_url: null``, as Spotify gives new apps.
    audio_features_status : int
        200 serves audio features; any other status answers the audio-features endpoints with
        that status and Spotify's error body (403 plays a post-2024 app).
    client_id, client_secret : str
        The only credentials the token endpoint accepts.
    token_lifetime_s : int
        ``expires_in`` of issued tokens; expired tokens get 401.

    Examples
    --------
    >>> with DemoService(catalog, paths) as service:  # doctest: +SKIP
    ...     spotify.prefix = service.api_url + "/"
    """

    def __init__(
        self,
        catalog: DemoCatalog,
        audio_paths: Mapping[str, Path],
        *,
        audio_features_status: int = 200,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        token_lifetime_s: int = TOKEN_LIFETIME_S,
    ) -> None:
        if not 100 <= audio_features_status <= 599:
            raise ValueError(
                "audio_features_status must be an HTTP status (100-599), got "
                f"{audio_features_status}."
            )
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret must be non-empty.")
        if token_lifetime_s < 1:
            raise ValueError(f"token_lifetime_s must be at least 1, got {token_lifetime_s}.")
        self._catalog = catalog
        self._audio_paths = {track_id: Path(path) for track_id, path in audio_paths.items()}
        self._options = _Options(
            audio_features_status=audio_features_status,
            client_id=client_id,
            client_secret=client_secret,
            token_lifetime_s=token_lifetime_s,
        )
        self._server: _DemoHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> DemoService:
        server = _DemoHTTPServer(("127.0.0.1", 0), _DemoRequestHandler)
        try:
            host, port = server.server_address[:2]
            server.state = _DemoState(
                self._catalog, self._audio_paths, self._options, base_url=f"http://{host}:{port}"
            )
        except BaseException:
            server.server_close()
            raise
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"songmix-demo-server-{port}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        thread.join()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, where previews live under ``/previews``."""
        return self._state().base_url

    @property
    def api_url(self) -> str:
        """Base of the Web API, in place of ``https://api.spotify.com/v1``."""
        return self._state().base_url + "/v1"

    @property
    def accounts_url(self) -> str:
        """Base of the accounts service, in place of ``https://accounts.spotify.com``."""
        return self._state().base_url + "/accounts"

    @property
    def request_counts(self) -> dict[str, int]:
        """Requests answered so far per endpoint (names in :data:`ENDPOINTS`), any status."""
        state = self._state()
        with state.lock:
            return {endpoint: state.counts[endpoint] for endpoint in ENDPOINTS}

    def _state(self) -> _DemoState:
        if self._server is None:
            raise RuntimeError(
                "The demo service is not running; use it inside `with DemoService(...)`."
            )
        return self._server.state


@dataclass(frozen=True)
class _Options:
    audio_features_status: int
    client_id: str
    client_secret: str
    token_lifetime_s: int


@dataclass(frozen=True)
class _SearchQuery:
    first_year: int | None
    last_year: int | None
    genre: str | None
    words: tuple[str, ...]
    valid: bool


class _DemoState:
    """What the handlers share: the catalog as served (URLs made absolute), tokens and counts."""

    def __init__(
        self,
        catalog: DemoCatalog,
        audio_paths: Mapping[str, Path],
        options: _Options,
        *,
        base_url: str,
    ) -> None:
        self.base_url = base_url
        self.options = options
        self.audio_paths = audio_paths
        api_url = base_url + "/v1"
        self.tracks = [
            _served_object(track, api_url=api_url, preview_url=self._preview_url(track["id"]))
            for track in catalog.tracks
        ]
        self.track_by_id = {track["id"]: track for track in self.tracks}
        self.features_by_id = {
            features["id"]: _served_object(features, api_url=api_url)
            for features in catalog.audio_features
        }
        genre_by_id = dict(zip(catalog.truth["track_id"], catalog.truth["group_name"]))
        self.search_keys = [
            (
                int(track["album"]["release_date"][:4]),
                genre_by_id[track["id"]],
                " ".join([track["name"], track["album"]["name"]]
                         + [artist["name"] for artist in track["artists"]]).lower(),
            )
            for track in self.tracks
        ]
        self.lock = threading.Lock()
        self.token_expiry: dict[str, float] = {}
        self.counts: Counter[str] = Counter()

    def _preview_url(self, track_id: str) -> str | None:
        if track_id not in self.audio_paths:
            return None
        return f"{self.base_url}/previews/{track_id}.mp3"

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.token_expiry[token] = time.monotonic() + self.options.token_lifetime_s
        return token

    def token_is_valid(self, token: str) -> bool:
        with self.lock:
            expiry = self.token_expiry.get(token)
        return expiry is not None and time.monotonic() < expiry

    def count(self, endpoint: str) -> None:
        with self.lock:
            self.counts[endpoint] += 1

    def search(self, query: _SearchQuery) -> list[dict]:
        if not query.valid:
            return []
        return [
            track
            for track, (year, genre, text) in zip(self.tracks, self.search_keys)
            if (query.first_year is None or query.first_year <= year <= query.last_year)
            and (query.genre is None or query.genre == genre)
            and all(word in text for word in query.words)
        ]


class _DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    state: _DemoState

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track_connection(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_open_connections(self) -> None:
        """End kept-alive connections so that no handler thread answers after the server stops."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client closed it first

    def handle_error(self, request, client_address) -> None:
        """Stay quiet when a client goes away mid-request; report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _DemoRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests.Session expects
    timeout = 30  # close idle kept-alive connections
    server: _DemoHTTPServer
    error_content_type = "application/json"
    error_message_format = '{"error": {"status": %(code)d, "message": "%(message)s"}}'

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without TCP_NODELAY, Nagle's algorithm and
        # delayed ACKs hold every kept-alive response back ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track_connection(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track_connection(self.connection, open_=False)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Log nothing: the demo server runs inside the pipeline's own output."""

    def do_POST(self) -> None:
        length = _int_or_none(self.headers.get("Content-Length", "0")) or 0
        body = self.rfile.read(max(0, length))
        if urlsplit(self.path).path == "/accounts/api/token":
            self._answer("token", lambda: self._token(body))
        else:
            self._answer("unknown", lambda: _api_error(404, "Service not found"))

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parameters = {name: values[-1] for name, values in parse_qs(url.query).items()}
        path = url.path.rstrip("/")
        if path == "/v1/search":
            self._answer("search", lambda: self._authorized(lambda: self._search(parameters)))
        elif path == "/v1/audio-features":
            self._answer("audio_features", lambda: self._authorized(
                lambda: self._audio_features(parameters.get("ids", ""))))
        elif path.startswith("/v1/audio-features/"):
            self._answer("audio_features", lambda: self._authorized(
                lambda: self._one_audio_features(path.rsplit("/", 1)[1])))
        elif path.startswith("/v1/tracks/"):
            self._answer("tracks", lambda: self._authorized(
                lambda: self._track(path.rsplit("/", 1)[1])))
        elif path.startswith("/previews/") and path.endswith(".mp3"):
            self.server.state.count("previews")
            self._send_preview(path[len("/previews/"):-len(".mp3")])
        else:
            self._answer("unknown", lambda: _api_error(404, "Service not found"))

    # -- endpoints: each returns (status, JSON body, extra headers) ---------------------------

    def _token(self, body: bytes) -> tuple[int, dict, dict]:
        form = {name: values[-1] for name, values in parse_qs(body.decode("latin-1")).items()}
        options = self.server.state.options
        client_id, client_secret = _basic_credentials(self.headers.get("Authorization", ""))
        if not (secrets.compare_digest(client_id, options.client_id)
                and secrets.compare_digest(client_secret, options.client_secret)):
            return 401, {"error": "invalid_client", "error_description": "Invalid client"}, {
                "WWW-Authenticate": 'Basic realm="songmix-demo"'}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "grant_type must be client_credentials"}, {}
        return 200, {
            "access_token": self.server.state.issue_token(),
            "token_type": "Bearer",
            "expires_in": options.token_lifetime_s,
        }, {}

    def _authorized(self, answer) -> tuple[int, dict, dict]:
        authorization = self.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            return _api_error(401, "No token provided", bearer_challenge=True)
        if not self.server.state.token_is_valid(authorization[len("Bearer "):]):
            return _api_error(401, "Invalid access token", bearer_challenge=True)
        return answer()

    def _search(self, parameters: Mapping[str, str]) -> tuple[int, dict, dict]:
        if not parameters.get("q", "").strip():
            return _api_error(400, "No search query")
        if parameters.get("type") != "track":
            return _api_error(400, "The demo service searches type=track only")
        limit = _int_or_none(parameters.get("limit", str(MAX_SEARCH_LIMIT)))
        offset = _int_or_none(parameters.get("offset", "0"))
        if limit is None or not 1 <= limit <= MAX_SEARCH_LIMIT:
            return _api_error(400, "Invalid limit")
        if offset is None or offset < 0 or offset + limit > MAX_SEARCH_WINDOW:
            return _api_error(400, "Invalid offset")
        matches = self.server.state.search(_parse_query(parameters["q"]))
        page_url = self.server.state.base_url + "/v1/search?"

        def link(page_offset: int) -> str:
            return page_url + urlencode({**parameters, "offset": page_offset, "limit": limit})

        return 200, {"tracks": {
            "href": link(offset),
            "items": matches[offset:offset + limit],
            "limit": limit,
            "next": link(offset + limit) if offset + limit < len(matches) else None,
            "offset": offset,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "total": len(matches),
        }}, {}

    def _audio_features(self, ids_parameter: str) -> tuple[int, dict, dict]:
        if self.server.state.options.audio_features_status != 200:
            return self._audio_features_refused()
        ids = [track_id for track_id in ids_parameter.split(",") if track_id]
        if not ids:
            return _api_error(400, "invalid request: no ids")
        if len(ids) > MAX_AUDIO_FEATURES_IDS:
            return _api_error(400, f"Too many ids requested (at most {MAX_AUDIO_FEATURES_IDS})")
        features = self.server.state.features_by_id
        return 200, {"audio_features": [features.get(track_id) for track_id in ids]}, {}

    def _one_audio_features(self, track_id: str) -> tuple[int, dict, dict]:
        if self.server.state.options.audio_features_status != 200:
            return self._audio_features_refused()
        features = self.server.state.features_by_id.get(track_id)
        if features is None:
            return _api_error(404, "analysis not found")
        return 200, features, {}

    def _audio_features_refused(self) -> tuple[int, dict, dict]:
        return _api_error(self.server.state.options.audio_features_status,
                          "The demo service was started with audio features refused")

    def _track(self, track_id: str) -> tuple[int, dict, dict]:
        track = self.server.state.track_by_id.get(track_id)
        return (200, track, {}) if track is not None else _api_error(404, "Non existing id")

    # -- responses ----------------------------------------------------------------------------

    def _answer(self, endpoint: str, answer) -> None:
        self.server.state.count(endpoint)
        try:
            status, body, headers = answer()
        except Exception as error:  # a bug here must reach the client as a 500, not a hang
            status, body, headers = _api_error(500, f"{type(error).__name__}: {error}")
        self._write_json(status, body, headers)

    def _write_json(self, status: int, body: dict, headers: Mapping[str, str]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_preview(self, track_id: str) -> None:
        path = self.server.state.audio_paths.get(track_id)
        if path is None or not path.is_file():
            self._write_json(*_api_error(404, "Preview not found"))
            return
        with path.open("rb") as stream:
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            shutil.copyfileobj(stream, self.wfile)


def _served_object(obj: dict, *, api_url: str, **overrides: object) -> dict:
    """A copy of ``obj`` with Spotify API URLs pointing at ``api_url`` and ``overrides`` set."""
    served = json.loads(json.dumps(obj).replace(SPOTIFY_API_URL, api_url))
    served.update(overrides)
    return served


def _parse_query(q: str) -> _SearchQuery:
    """Split a search query into ``year:``, ``genre:`` filters and free words (lowercase)."""
    first_year = last_year = genre = None
    words = []
    valid = True
    for term in q.lower().replace('"', " ").split():
        field, _, value = term.partition(":")
        if field == "year" and value:
            match = _YEAR_FILTER.match(value)
            if match is None:
                valid = False
                continue
            first_year = int(match.group(1))
            last_year = int(match.group(2) or match.group(1))
        elif field == "genre" and value:
            genre = value
        else:
            words.append(term)
    return _SearchQuery(first_year, last_year, genre, tuple(words), valid)


def _basic_credentials(authorization: str) -> tuple[str, str]:
    """(client id, secret) from an HTTP Basic ``Authorization`` header; empty strings if absent."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    client_id, _, client_secret = decoded.partition(":")
    return client_id, client_secret


def _api_error(
    status: int, message: str, *, bearer_challenge: bool = False
) -> tuple[int, dict, dict]:
    headers = {"WWW-Authenticate": 'Bearer realm="songmix-demo"'} if bearer_challenge else {}
    return status, {"error": {"status": status, "message": message}}, headers


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
