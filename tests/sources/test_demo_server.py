"""The loopback demo service, driven through the same spotipy client a real run uses."""

from __future__ import annotations

import time

import pytest
import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

from songmix.sources.demo_catalog import generate_catalog
from songmix.sources.demo_server import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DemoService

pytestmark = pytest.mark.filterwarnings("ignore:You're using `audio_features:DeprecationWarning")

PREVIEW_BYTES = b"ID3\x04\x00 not really an mp3, the server does not look"


@pytest.fixture(scope="module")
def catalog():
    return generate_catalog(1000, seed=21)


@pytest.fixture(scope="module")
def audio_paths(catalog, tmp_path_factory):
    """Preview files for the first five tracks only; the others have none."""
    folder = tmp_path_factory.mktemp("previews")
    paths = {}
    for track in catalog.tracks[:5]:
        paths[track["id"]] = folder / f"{track['id']}.mp3"
        paths[track["id"]].write_bytes(PREVIEW_BYTES + track["id"].encode())
    return paths


@pytest.fixture(scope="module")
def service(catalog, audio_paths):
    with DemoService(catalog, audio_paths) as running:
        yield running


def _spotify(
    service, *, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET
) -> spotipy.Spotify:
    auth = SpotifyClientCredentials(
        client_id, client_secret, cache_handler=MemoryCacheHandler(),
        requests_session=requests.Session(), requests_timeout=5,
    )
    auth.OAUTH_TOKEN_URL = service.accounts_url + "/api/token"
    client = spotipy.Spotify(auth_manager=auth, requests_session=requests.Session(),
                             requests_timeout=5, retries=0, status_retries=0)
    client.prefix = service.api_url + "/"
    return client


def _all_pages(client: spotipy.Spotify, query: str) -> list[dict]:
    page = client.search(query, limit=10, offset=0, type="track")["tracks"]
    pages = [page]
    while page["next"]:
        page = client.next(page)["tracks"]
        pages.append(page)
    return pages


def test_spotipy_pages_through_a_thousand_tracks_following_next(service, catalog):
    pages = _all_pages(_spotify(service), "year:2020")
    assert len(pages) == 100 and all(len(p["items"]) == 10 for p in pages)
    assert [p["offset"] for p in pages] == list(range(0, 1000, 10))
    assert all(p["total"] == 1000 for p in pages) and pages[-1]["next"] is None
    assert pages[0]["previous"] is None and pages[1]["previous"].startswith(service.api_url)
    ids = [item["id"] for p in pages for item in p["items"]]
    assert ids == [t["id"] for t in catalog.tracks]


def test_search_items_point_at_the_service(service, catalog, audio_paths):
    items = _spotify(service).search("year:2020", limit=10, offset=0)["tracks"]["items"]
    for item in items:
        assert item["href"] == f"{service.api_url}/tracks/{item['id']}"
        expected_preview = (f"{service.base_url}/previews/{item['id']}.mp3"
                            if item["id"] in audio_paths else None)
        assert item["preview_url"] == expected_preview
    assert items[0]["external_ids"] == catalog.tracks[0]["external_ids"]


def test_search_filters_by_year_genre_and_words(service, catalog):
    client = _spotify(service)
    assert client.search("year:2019", limit=10)["tracks"]["total"] == 0
    assert client.search("year:2019-2021", limit=10)["tracks"]["total"] == 1000
    assert client.search("year:twenty", limit=10)["tracks"]["total"] == 0
    edm = client.search("year:2020 genre:edm", limit=10)["tracks"]
    assert edm["total"] == int((catalog.truth["group_name"] == "edm").sum())
    edm_ids = set(catalog.truth.loc[catalog.truth["group_name"] == "edm", "track_id"])
    assert {item["id"] for item in edm["items"]} <= edm_ids
    words = catalog.tracks[0]["name"].lower().split()
    named = client.search(f"year:2020 {' '.join(words)}", limit=10)["tracks"]
    assert catalog.tracks[0]["id"] in {item["id"] for item in named["items"]}
    assert 0 < named["total"] < 1000
    for item in named["items"]:
        names = [item["name"], item["album"]["name"]] + [a["name"] for a in item["artists"]]
        text = " ".join(names)
        assert all(word in text.lower() for word in words)


@pytest.mark.parametrize(
    "limit, offset",
    [(10, 1000), (10, 991), (11, 0), (0, 0), (10, -1)],
)
def test_search_beyond_development_mode_limits_is_400(service, limit, offset):
    with pytest.raises(spotipy.SpotifyException) as raised:
        _spotify(service).search("year:2020", limit=limit, offset=offset)
    assert raised.value.http_status == 400


def test_search_needs_type_track(service):
    with pytest.raises(spotipy.SpotifyException) as raised:
        _spotify(service).search("year:2020", limit=10, type="artist")
    assert raised.value.http_status == 400


def test_audio_features_in_batches_of_a_hundred(service, catalog):
    client = _spotify(service)
    ids = [t["id"] for t in catalog.tracks]
    features = [
        f for start in range(0, 1000, 100) for f in client.audio_features(ids[start:start + 100])
    ]
    assert [f["id"] for f in features] == ids
    for served, original in zip(features, catalog.audio_features):
        assert {k: v for k, v in served.items() if not k.endswith(("href", "_url"))} == {
            k: v for k, v in original.items() if not k.endswith(("href", "_url"))}
        assert served["track_href"] == f"{service.api_url}/tracks/{served['id']}"


def test_audio_features_unknown_id_is_null_and_over_a_hundred_is_400(service, catalog):
    client = _spotify(service)
    known = catalog.tracks[0]["id"]
    assert client.audio_features([known, "0" * 22])[1] is None
    with pytest.raises(spotipy.SpotifyException) as raised:
        client.audio_features([t["id"] for t in catalog.tracks[:101]])
    assert raised.value.http_status == 400


def test_audio_features_can_be_refused_like_a_new_app(catalog, audio_paths):
    with DemoService(catalog, audio_paths, audio_features_status=403) as refusing:
        client = _spotify(refusing)
        with pytest.raises(spotipy.SpotifyException) as raised:
            client.audio_features([catalog.tracks[0]["id"]])
        assert raised.value.http_status == 403
        assert client.search("year:2020", limit=10)["tracks"]["total"] == 1000


def test_track_by_id(service, catalog):
    client = _spotify(service)
    assert client.track(catalog.tracks[3]["id"])["name"] == catalog.tracks[3]["name"]
    with pytest.raises(spotipy.SpotifyException) as raised:
        client.track("0" * 22)
    assert raised.value.http_status == 404


def test_preview_download(service, audio_paths):
    track_id = next(iter(audio_paths))
    response = requests.get(f"{service.base_url}/previews/{track_id}.mp3", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.content == audio_paths[track_id].read_bytes()
    assert requests.get(f"{service.base_url}/previews/{'0' * 22}.mp3", timeout=5).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
def test_api_without_a_valid_token_is_401(service, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(f"{service.api_url}/search", params={"q": "year:2020", "type": "track"},
                            headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == 401


def test_token_needs_the_demo_credentials(service):
    with pytest.raises(SpotifyOauthError):
        _spotify(service, client_secret="wrong").search("year:2020", limit=10)
    response = requests.post(f"{service.accounts_url}/api/token",
                             data={"grant_type": "client_credentials"}, timeout=5)
    assert response.status_code == 401


def test_expired_token_is_401(catalog, audio_paths):
    with DemoService(catalog, audio_paths, token_lifetime_s=1) as short_lived:
        token = requests.post(f"{short_lived.accounts_url}/api/token",
                              data={"grant_type": "client_credentials"},
                              auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), timeout=5).json()
        assert token["token_type"] == "Bearer" and token["expires_in"] == 1
        search = f"{short_lived.api_url}/search?q=year:2020&type=track"
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert requests.get(search, headers=headers, timeout=5).status_code == 200
        time.sleep(1.1)
        assert requests.get(search, headers=headers, timeout=5).status_code == 401


def test_request_counts_follow_the_traffic(catalog, audio_paths):
    with DemoService(catalog, audio_paths) as counted:
        client = _spotify(counted)
        client.search("year:2020", limit=10)
        client.search("year:2020", limit=10, offset=10)
        client.audio_features([catalog.tracks[0]["id"]])
        requests.get(f"{counted.base_url}/previews/{next(iter(audio_paths))}.mp3", timeout=5)
        requests.get(f"{counted.base_url}/nowhere", timeout=5)
        assert counted.request_counts == {"token": 1, "search": 2, "audio_features": 1,
                                          "tracks": 0, "previews": 1, "unknown": 1}


def test_service_stops_on_exit_even_for_kept_alive_connections(catalog, audio_paths):
    session = requests.Session()
    with pytest.raises(KeyError):
        with DemoService(catalog, audio_paths) as stopping:
            base_url = stopping.base_url
            assert session.get(f"{base_url}/previews/{next(iter(audio_paths))}.mp3",
                               timeout=5).status_code == 200
            raise KeyError("the block fails; the server must stop all the same")
    with pytest.raises(requests.ConnectionError):
        session.get(f"{base_url}/previews/{next(iter(audio_paths))}.mp3", timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/v1/search", timeout=5)
    with pytest.raises(RuntimeError, match="not running"):
        stopping.api_url
