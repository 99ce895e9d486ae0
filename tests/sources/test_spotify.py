"""The Spotify client against a loopback fake: limits, paging, faults, timeouts, secrecy."""

from __future__ import annotations

import base64
import logging
import re
import time
import traceback

import pytest
import requests
import spotipy
from fakes import (  # noqa: F401  (loopback, loopback_server: fixtures)
    Fault,
    FakeSpotify,
    loopback,
    loopback_server,
    make_features,
    make_track,
    make_track_id,
)
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyOauthError

from songmix.sources.credentials import SpotifyCredentials
from songmix.sources.http import ProviderError, classify_http_error
from songmix.sources.spotify import (
    SEARCH_GENRES,
    AudioFeaturesForbidden,
    SpotifyEndpoints,
    fetch_audio_features,
    fetch_playlist_tracks,
    fetch_search_page,
    make_spotify_client,
    parse_track,
    partitioned_queries,
    playlist_id_from_ref,
)

CLIENT_ID = "test-client-id"
SECRET = "s3cr3t-NEVER-SHOW-ME"
TIMEOUT_S = 0.3
N_TRACKS = 35
PLAYLIST_ID = make_track_id(99_999)


@pytest.fixture
def tracks():
    return [make_track(i) for i in range(N_TRACKS)]


@pytest.fixture
def fake(loopback, tracks):
    features = {track["id"]: make_features(i) for i, track in enumerate(tracks[:30])}
    return FakeSpotify(
        loopback,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        search_results={"year:2020": tracks},
        audio_features=features,
        playlists={PLAYLIST_ID: [make_track(1000 + i) for i in range(120)]},
    )


@pytest.fixture
def client(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so a stray .cache token file would show up here
    return make_spotify_client(fake.endpoints, SpotifyCredentials(CLIENT_ID, SECRET), timeout=TIMEOUT_S)


# ----------------------------------------------------------------------------- configuration


def test_endpoints_default_to_spotify_and_read_the_environment(monkeypatch):
    monkeypatch.delenv("SONGMIX_SPOTIFY_API_URL", raising=False)
    monkeypatch.delenv("SONGMIX_SPOTIFY_ACCOUNTS_URL", raising=False)
    assert SpotifyEndpoints.from_env() == SpotifyEndpoints("https://api.spotify.com/v1", "https://accounts.spotify.com")
    monkeypatch.setenv("SONGMIX_SPOTIFY_API_URL", "http://127.0.0.1:9/proxy/v1/")
    monkeypatch.setenv("SONGMIX_SPOTIFY_ACCOUNTS_URL", "http://127.0.0.1:9/accounts")
    endpoints = SpotifyEndpoints.from_env()
    assert endpoints.api_url == "http://127.0.0.1:9/proxy/v1"
    assert endpoints.token_url == "http://127.0.0.1:9/accounts/api/token"
    with pytest.raises(ValueError, match="SONGMIX_SPOTIFY_API_URL"):
        SpotifyEndpoints(api_url="api.spotify.com/v1")


def test_client_is_configured_for_no_retries_memory_tokens_and_timeouts(client, fake):
    auth = client.auth_manager
    assert client.prefix == fake.api_url + "/"
    assert auth.OAUTH_TOKEN_URL == fake.accounts_url + "/api/token"
    assert client.requests_timeout == TIMEOUT_S and auth.requests_timeout == TIMEOUT_S
    assert isinstance(auth.cache_handler, MemoryCacheHandler)
    for session in (client._session, auth._session):
        assert all(adapter.max_retries.total == 0 for adapter in session.adapters.values())


# ----------------------------------------------------------------------------- search


def test_search_pages_by_offset_reuse_one_token(client, fake, tracks, tmp_path):
    seen = []
    for offset in range(0, N_TRACKS, 10):
        page = fetch_search_page(client, "year:2020", offset=offset)
        seen.extend(item["id"] for item in page["tracks"]["items"])
    assert seen == [track["id"] for track in tracks]
    assert fake.calls["search"] == 4 and fake.calls["token"] == 1
    assert list(tmp_path.iterdir()) == []  # no .cache token file


def test_a_next_link_that_leaves_the_api_is_not_followed_with_the_token(client, fake):
    from pytest_httpserver import HTTPServer

    with HTTPServer(host="127.0.0.1", port=0) as elsewhere:
        leaving = {"items": [], "next": elsewhere.url_for("/v1/playlists/x/tracks?offset=50")}
        client.playlist_items = lambda *args, **kwargs: leaving
        with pytest.raises(ProviderError, match="leaves the API"):
            fetch_playlist_tracks(client, PLAYLIST_ID)
        assert elsewhere.log == []


@pytest.mark.parametrize(
    ("offset", "limit", "message"),
    [(0, 11, "1 to 10"), (0, 0, "1 to 10"), (995, 10, "offset \\+ limit"), (-10, 10, "offset")],
)
def test_search_limits_are_checked_before_any_request(client, fake, offset, limit, message):
    with pytest.raises(ValueError, match=message):
        fetch_search_page(client, "year:2020", offset=offset, limit=limit)
    with pytest.raises(ValueError, match="empty"):
        fetch_search_page(client, "  ", offset=0)
    assert fake.calls["search"] == 0


def test_partitioned_queries():
    assert partitioned_queries("year:2020", 1000) == ["year:2020"]
    queries = partitioned_queries("year:2020", 5000)
    assert len(queries) == len(SEARCH_GENRES) >= 5
    assert len(set(queries)) == len(queries)
    assert all(re.fullmatch(r'genre:"[^"]+" year:2020', query) for query in queries)
    with pytest.raises(ValueError, match="already filters by genre"):
        partitioned_queries('genre:"pop" year:2020', 2000)
    with pytest.raises(ValueError, match="at most"):
        partitioned_queries("year:2020", 1000 * len(SEARCH_GENRES) + 1)


def test_partitions_walked_in_order_and_deduped_reach_the_target(client, fake):
    queries = partitioned_queries("year:2020", 1500)
    # Overlapping partitions: tracks 0-24 are "pop", 15-39 "rock" (15-24 in both).
    fake.search_results = {
        queries[0]: [make_track(i) for i in range(25)],
        queries[1]: [make_track(i) for i in range(15, 40)],
    }
    rows = []
    for query in queries[:2]:
        for offset in (0, 10, 20):
            page = fetch_search_page(client, query, offset=offset)
            rows.extend(parse_track(item) for item in page["tracks"]["items"])
    assert len(rows) == 50
    assert list(dict.fromkeys(row["track_id"] for row in rows)) == [make_track_id(i) for i in range(40)]


def test_malformed_search_body_is_a_retryable_provider_error(client, fake):
    fake.inject("search", Fault.malformed())
    with pytest.raises(ProviderError) as caught:
        fetch_search_page(client, "year:2020", offset=0)
    assert caught.value.status == 502 and classify_http_error(caught.value).retryable


# ----------------------------------------------------------------------------- faults: no silent retries


@pytest.mark.parametrize("fault", [Fault.server_error(500), Fault.server_error(503), Fault.rate_limited(1)])
def test_a_failing_call_makes_exactly_one_request(client, fake, fault):
    fake.inject("search", fault)
    with pytest.raises(spotipy.SpotifyException) as caught:
        fetch_search_page(client, "year:2020", offset=0)
    assert caught.value.http_status == fault.status
    assert fake.calls["search"] == 1
    assert classify_http_error(caught.value).retryable
    # and the next call goes through
    assert len(fetch_search_page(client, "year:2020", offset=0)["tracks"]["items"]) == 10


def test_spotipy_default_client_would_retry_silently(fake):
    # The contrast that makes the test above meaningful: spotipy's own session retries 5xx.
    auth = spotipy.SpotifyClientCredentials(CLIENT_ID, SECRET, cache_handler=MemoryCacheHandler())
    auth.OAUTH_TOKEN_URL = fake.accounts_url + "/api/token"
    default = spotipy.Spotify(auth_manager=auth, backoff_factor=0)
    default.prefix = fake.api_url + "/"
    fake.inject("search", *[Fault.server_error(500)] * 4)
    with pytest.raises(spotipy.SpotifyException):
        default.search("year:2020", limit=10)
    assert fake.calls["search"] == 4


def test_429_carries_retry_after_to_the_policy(client, fake):
    fake.inject("search", Fault.rate_limited(7))
    with pytest.raises(spotipy.SpotifyException) as caught:
        fetch_search_page(client, "year:2020", offset=0)
    decision = classify_http_error(caught.value)
    assert decision.retryable and decision.wait_s == 7


def test_400_beyond_the_search_window_is_not_retried(client, fake):
    with pytest.raises(spotipy.SpotifyException) as caught:
        client.search("year:2020", limit=10, offset=995)  # bypassing our own check
    assert caught.value.http_status == 400 and not classify_http_error(caught.value).retryable


# ----------------------------------------------------------------------------- timeouts


def test_api_calls_time_out(client, fake):
    fetch_search_page(client, "year:2020", offset=0)  # token first, so only the API call is slow
    fake.inject("search", Fault.slow(TIMEOUT_S + 0.4))
    started = time.monotonic()
    with pytest.raises(requests.Timeout) as caught:
        fetch_search_page(client, "year:2020", offset=10)
    assert time.monotonic() - started < TIMEOUT_S + 0.3
    assert classify_http_error(caught.value).retryable


def test_token_request_times_out(client, fake):
    fake.inject("token", Fault.slow(TIMEOUT_S + 0.4))
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        fetch_search_page(client, "year:2020", offset=0)
    assert time.monotonic() - started < TIMEOUT_S + 0.3
    assert fake.calls["search"] == 0


def test_token_429_is_retryable_after_its_retry_after(client, fake):
    fake.inject("token", Fault.rate_limited(2))
    with pytest.raises(SpotifyOauthError) as caught:
        fetch_search_page(client, "year:2020", offset=0)
    decision = classify_http_error(caught.value)
    assert decision.retryable and decision.wait_s == 2
    assert fake.calls["token"] == 1


# ----------------------------------------------------------------------------- secrecy


def _leaks(text: str) -> bool:
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    shown = re.findall(r"Basic ([A-Za-z0-9+/=]{8,})", text)
    decoded = [base64.b64decode(value + "==", validate=False) for value in shown]
    return SECRET in text or basic in text or any(SECRET.encode() in value for value in decoded)


@pytest.mark.parametrize(
    "fault",
    [None, Fault.server_error(500), Fault.rate_limited(3), Fault.slow(TIMEOUT_S + 0.4)],
    ids=["wrong-secret", "500", "429", "timeout"],
)
def test_secret_stays_out_of_logs_and_errors_when_auth_fails(fake, caplog, tmp_path, monkeypatch, fault):
    monkeypatch.chdir(tmp_path)
    if fault is None:
        fake._basic = "Basic " + base64.b64encode(b"someone:else").decode()  # the secret is now wrong
    else:
        fake.inject("token", fault)
    credentials = SpotifyCredentials(CLIENT_ID, SECRET)
    with caplog.at_level(logging.DEBUG):
        client = make_spotify_client(fake.endpoints, credentials, timeout=TIMEOUT_S)
        with pytest.raises(Exception) as caught:
            fetch_search_page(client, "year:2020", offset=0)
    error_text = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    decision = classify_http_error(caught.value)
    assert not _leaks(error_text)
    assert not _leaks(decision.reason)
    assert not _leaks(caplog.text)
    assert not any(_leaks(record.getMessage()) for record in caplog.records)
    assert not _leaks(repr(credentials))
    # spotipy did log the Authorization header at DEBUG; the filter blanked it.
    assert any("Basic ***" in record.getMessage() for record in caplog.records)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- audio features


def test_audio_features_in_order_with_none_for_unknown(client, tracks):
    ids = [track["id"] for track in tracks[25:]]  # 25-29 known, 30-34 not
    features = fetch_audio_features(client, ids)
    assert [row["id"] if row else None for row in features] == ids[:5] + [None] * 5
    assert features[0]["tempo"] == make_features(25)["tempo"]


def test_audio_features_403_means_fall_back(client, fake, tracks):
    fake.audio_features = None  # an app created after 2024-11-27
    with pytest.raises(AudioFeaturesForbidden) as caught:
        fetch_audio_features(client, [track["id"] for track in tracks[:3]])
    assert caught.value.status == 403
    assert not classify_http_error(caught.value).retryable
    assert fake.calls["audio-features"] == 1


def test_expected_refusals_and_retried_errors_are_not_logged_as_errors(client, fake, tracks, caplog):
    fake.audio_features = None
    fake.inject("search", Fault.server_error(503))
    with caplog.at_level(logging.DEBUG, logger="spotipy"):
        with pytest.raises(AudioFeaturesForbidden):
            fetch_audio_features(client, [tracks[0]["id"]])
        with pytest.raises(spotipy.SpotifyException):
            fetch_search_page(client, "year:2020", offset=0)
    http_errors = {record.getMessage().split(" returned ")[1][:3]: record.levelname
                   for record in caplog.records if record.getMessage().startswith("HTTP Error for ")}
    assert http_errors == {"403": "INFO", "503": "WARNING"}


def test_audio_features_5xx_is_not_mistaken_for_forbidden(client, fake, tracks):
    fake.inject("audio-features", Fault.server_error(503))
    with pytest.raises(spotipy.SpotifyException) as caught:
        fetch_audio_features(client, [tracks[0]["id"]])
    assert not isinstance(caught.value, AudioFeaturesForbidden)
    assert classify_http_error(caught.value).retryable


def test_audio_features_malformed_body(client, fake, tracks):
    fake.inject("audio-features", Fault.malformed())
    with pytest.raises(ProviderError, match="malformed"):
        fetch_audio_features(client, [tracks[0]["id"]])


def test_audio_features_validates_ids(client, fake):
    with pytest.raises(ValueError, match="1 to 100"):
        fetch_audio_features(client, [make_track_id(i) for i in range(101)])
    with pytest.raises(ValueError, match="1 to 100"):
        fetch_audio_features(client, [])
    with pytest.raises(ValueError, match="no URI prefix"):
        fetch_audio_features(client, [f"spotify:track:{make_track_id(1)}"])
    assert fake.calls["audio-features"] == 0


# ----------------------------------------------------------------------------- playlists


@pytest.mark.parametrize(
    "ref",
    [
        PLAYLIST_ID,
        f"spotify:playlist:{PLAYLIST_ID}",
        f"https://open.spotify.com/playlist/{PLAYLIST_ID}?si=abc123",
        f"https://open.spotify.com/intl-de/playlist/{PLAYLIST_ID}",
    ],
)
def test_playlist_tracks_across_pages(client, fake, ref):
    found = fetch_playlist_tracks(client, ref)
    assert [track["id"] for track in found] == [make_track_id(1000 + i) for i in range(120)]
    assert fake.calls["playlist-items"] == 3


def test_unknown_playlist_is_a_non_retryable_404(client):
    with pytest.raises(spotipy.SpotifyException) as caught:
        fetch_playlist_tracks(client, make_track_id(4))
    assert caught.value.http_status == 404 and not classify_http_error(caught.value).retryable


@pytest.mark.parametrize(
    "ref", ["", "not a playlist", f"spotify:track:{PLAYLIST_ID}", f"https://open.spotify.com/album/{PLAYLIST_ID}"]
)
def test_playlist_refs_are_validated(ref):
    with pytest.raises(ValueError, match="not a Spotify playlist"):
        playlist_id_from_ref(ref)


class _PagedClient:
    """Two pages in the pre-2026 shape ("track"), with an episode and a local file."""

    prefix = "https://api.spotify.com/v1/"

    def __init__(self) -> None:
        self.pages = [
            {
                "items": [{"track": make_track(1)}, {"track": {"type": "episode", "id": make_track_id(2)}}],
                "next": "https://api.spotify.com/v1/playlists/x/items?offset=2",
            },
            {
                "items": [{"track": {**make_track(3), "id": None}}, {"track": None}, {"track": make_track(4)}],
                "next": None,
            },
        ]

    def playlist_items(self, playlist_id, *, limit, additional_types):
        return self.pages[0]

    def next(self, page):
        return self.pages[1]


def test_playlist_old_shape_episodes_and_local_files():
    found = fetch_playlist_tracks(_PagedClient(), PLAYLIST_ID)
    assert [track["id"] for track in found] == [make_track_id(1), make_track_id(4)]


# ----------------------------------------------------------------------------- rows


def test_parse_track_flattens_one_row():
    row = parse_track(make_track(10, preview_url="https://p.example/10.mp3"))
    assert row == {
        "track_id": make_track_id(10),
        "name": "Song 10",
        "artists": "Artist 3, Guest, 1",
        "artist_ids": f"{make_track_id(10_003)},{make_track_id(20_001)}",
        "album": "Album 2",
        "album_id": make_track_id(30_002),
        "release_date": "2020-03-11",
        "year": 2020,
        "duration_ms": 190_000,
        "isrc": "QZFAK2000010",
        "preview_url": "https://p.example/10.mp3",
        "popularity": None,
    }


def test_parse_track_tolerates_sparse_objects_and_rejects_local_files():
    row = parse_track({"id": make_track_id(1), "name": "x", "album": {"release_date": "0000"}})
    assert row["year"] is None and row["album"] is None and row["isrc"] is None and row["artists"] == ""
    assert parse_track({"id": make_track_id(1), "album": {"release_date": "1999"}})["year"] == 1999
    with pytest.raises(ValueError, match="local files"):
        parse_track({"id": None, "name": "local.mp3"})
