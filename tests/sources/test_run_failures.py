"""Whole runs meeting failing providers (issue 17): each network failure ends in one line that
names the host and says what to do; a run left with no usable track ends ``failed``; a demo
run never reuses a dead demo server's pages; SIGTERM and Ctrl-C stop a run mid-download within
seconds."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from fakes import (  # noqa: F401  (loopback, loopback_server: fixtures)
    FakeSpotify,
    Fault,
    loopback,
    loopback_server,
    make_track,
    render_base_clips,
    start_spotify_world,
)
from pytest_httpserver import HTTPServer
from werkzeug import Response

from songmix.cli.main import main
from songmix.sources import http
from songmix.sources.http import RateLimiter
from songmix.tasks import previews, spotify

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

CLIENT_ID, CLIENT_SECRET = "run-failures-id", "run-failures-secret"


@pytest.fixture(autouse=True)
def _fresh_clients_and_quick_backoff(monkeypatch):
    """No client (and token) of another test; retries back off in milliseconds, as many times."""
    monkeypatch.setattr(http, "BACKOFF_BASE_S", 0.01)
    level = logging.getLogger("spotipy").level
    spotify._authorized_client.cache_clear()
    yield
    spotify._authorized_client.cache_clear()
    logging.getLogger("spotipy").setLevel(level)


@pytest.fixture
def fake_spotify(loopback, monkeypatch) -> FakeSpotify:
    fake = FakeSpotify(loopback, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                       search_results={"year:2020": [make_track(i) for i in range(30)]})
    for name, value in {"SONGMIX_SPOTIFY_API_URL": fake.api_url, "SONGMIX_SPOTIFY_ACCOUNTS_URL": fake.accounts_url,
                        "SONGMIX_RECCOBEATS_URL": loopback.url_for("/reccobeats/v1"),
                        "SONGMIX_DEEZER_URL": loopback.url_for("/deezer"),
                        "SPOTIPY_CLIENT_ID": CLIENT_ID, "SPOTIPY_CLIENT_SECRET": CLIENT_SECRET}.items():
        monkeypatch.setenv(name, value)
    return fake


def _run(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--source", "spotify", "--tracks", "20", "--ks", "2,3", "--seeds", "2", "--quiet",
            "--db", str(tmp_path / "w.duckdb"), "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            *extra]


def _one_line(capsys, status: int) -> str:
    assert status == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("songmix: error: ") and "Traceback" not in err, err
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("fault", "says"), [
    ("token 500", ["answered HTTP 500", "run again later", "SONGMIX_SPOTIFY_ACCOUNTS_URL"]),
    ("token 503 html", ["answered HTTP 503", "run again later"]),
    ("token refused", ["could not be reached (connection refused)", "SONGMIX_SPOTIFY_ACCOUNTS_URL"]),
    ("token timeout", ["did not answer in time", "check the network"]),
    ("wrong secret", ["refused the Spotify credentials", "SPOTIPY_CLIENT_SECRET"]),
    ("search cut-off json", ["(spotify): a search page came back", "run again later", "SONGMIX_SPOTIFY_API_URL"]),
    ("search json without tracks", ["search page", "run again later"]),
    ("search 429 for days", ["rate limiting", "999999 s", "run again after"]),
    ("search 429 http-date", ["rate limiting", "run again after 2099-10-21 07:28 UTC"]),
    ("search 429 always", ["kept answering HTTP 429", "run again in a few minutes"]),
    ("search 404", ["refused the request (answered HTTP 404 (gone))", "not retried"]),
    ("search refused", ["could not be reached (connection refused)", "SONGMIX_SPOTIFY_API_URL"]),
])
def test_a_provider_failing_ends_the_run_in_one_line_naming_the_host(
        fake_spotify, loopback, monkeypatch, tmp_path, capsys, fault, says):
    host = f"127.0.0.1:{loopback.port}"
    endless = 60
    if fault == "token 500":
        fake_spotify.inject("token", *[Fault.server_error(500)] * endless)
    elif fault == "token 503 html":
        fake_spotify.inject("token", *[Fault(503, "<html>busy</html>")] * endless)
    elif fault in ("token refused", "search refused"):
        host = f"127.0.0.1:{_closed_port()}"
        setting = "SONGMIX_SPOTIFY_ACCOUNTS_URL" if fault == "token refused" else "SONGMIX_SPOTIFY_API_URL"
        monkeypatch.setenv(setting, f"http://{host}/somewhere")
        if fault == "search refused":  # a token first, from the fake, then no API at all
            spotify._authorized_client.cache_clear()
    elif fault == "token timeout":
        monkeypatch.setattr("songmix.sources.spotify.make_spotify_client.__kwdefaults__", {"timeout": 0.2})
        fake_spotify.inject("token", *[Fault.slow(0.5)] * endless)
    elif fault == "wrong secret":
        monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", "not-the-secret")
    elif fault == "search cut-off json":
        fake_spotify.inject("search", *[Fault.malformed()] * endless)
    elif fault == "search json without tracks":
        fake_spotify.inject("search", *[Fault.json({"albums": {}})] * endless)
    elif fault == "search 429 for days":
        fake_spotify.inject("search", *[Fault.rate_limited(999_999)] * endless)
    elif fault == "search 429 http-date":
        fake_spotify.inject("search", *[Fault(429, "{}", {"Retry-After": "Thu, 21 Oct 2099 07:28:00 GMT"})] * endless)
    elif fault == "search 429 always":
        fake_spotify.inject("search", *[Fault.rate_limited(0.01)] * endless)
    elif fault == "search 404":
        fake_spotify.inject("search", Fault.json({"error": {"status": 404, "message": "gone"}}, status=404))
    line = _one_line(capsys, main(_run(tmp_path)))
    assert host in line and all(part in line for part in says), line
    assert CLIENT_SECRET not in line


@pytest.fixture
def other_service() -> Iterator[HTTPServer]:
    """Another service on this machine, which no answer of a provider may send songmix to."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/secret").respond_with_json({"tracks": {"items": [], "next": None}})
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("endpoint", ["token", "search"])
def test_an_api_redirect_to_another_local_service_is_refused_in_one_line(
        fake_spotify, other_service, tmp_path, capsys, endpoint):
    fake_spotify.inject(endpoint, *[Fault(302, "", {"Location": other_service.url_for("/secret")})] * 60)
    line = _one_line(capsys, main(_run(tmp_path)))
    assert f"127.0.0.1:{other_service.port}" in line and "loopback" in line, line
    assert "redirected" in line and CLIENT_SECRET not in line
    assert other_service.log == []


def test_a_run_without_a_single_usable_track_ends_failed_in_one_line(loopback, monkeypatch, tmp_path, capsys):
    """Features for every track, audio for none (no listed preview, Deezer knows none of them)."""
    world = start_spotify_world(loopback, catalog_size=40, clips=render_base_clips(1, duration_s=0.5),
                                not_on_deezer=range(40), client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    for name, value in world.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(previews, "DEEZER_RATE_LIMITER", RateLimiter(10_000, 5.0))
    line = _one_line(capsys, main(_run(tmp_path)))
    assert "no usable tracks" in line and "0 with aubio features" in line
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as connection:
        [(status, error)] = connection.execute("select status, error from runs").fetchall()
        assert connection.execute("select count(*) from failed_items where stage = 'download'").fetchone() == (20,)
    assert status == "failed" and "no usable tracks" in error


def test_a_rerun_never_reuses_the_pages_of_a_dead_demo_server(tmp_path):
    """A demo run killed mid-download left pages whose preview URLs point at its server's port."""
    from songmix.flows.stages import collect_tracks
    from songmix.sources.base import SpotifyApi
    from songmix.sources.catalogs import DemoSource
    from songmix.sources.demo_catalog import generate_catalog
    from songmix.sources.demo_server import DemoService
    from songmix.sources.spotify import SpotifyEndpoints
    from songmix.warehouse import reads
    from songmix.warehouse.store import Warehouse

    catalog = generate_catalog(30, n_groups=3, year=2020, seed=1)
    audio = {track["id"]: tmp_path / f"{track['id']}.mp3" for track in catalog.tracks}
    warehouse = Warehouse(tmp_path / "w.duckdb")

    def run(run_id: str) -> tuple[list[dict], str]:
        with DemoService(catalog, audio) as service:
            source = DemoSource(n_tracks=20, groups=3, seed=1, api=SpotifyApi(SpotifyEndpoints(
                api_url=service.api_url, accounts_url=service.accounts_url), "demo", f"demo:{catalog.fingerprint}"))
            collect_tracks(run_id, warehouse.path, source)
            return reads.run_tracks(warehouse, run_id).to_dict("records"), service.base_url

    first, first_server = run("killed")
    second, second_server = run("rerun")
    assert first_server != second_server
    assert {t["track_id"] for t in first} == {t["track_id"] for t in second}
    assert all(t["preview_url"].startswith(second_server + "/") for t in second)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_run_stuck_in_a_trickling_download_within_seconds(loopback, tmp_path, stop):
    """One listed preview sends a byte every second (a read timeout never fires, the deadline is
    two minutes away); the signal arrives while it downloads."""
    from prefect.settings import PREFECT_API_URL

    downloading = threading.Event()

    def trickle():
        downloading.set()
        yield b"RIFF\x24\x00\x00\x00WAVE"
        for _ in range(600):
            time.sleep(1.0)
            yield b"\x00"

    # Registered before the world's previews, so it answers first.
    loopback.expect_request("/listed/0.wav").respond_with_response(Response(trickle(), content_type="audio/wav"))
    world = start_spotify_world(loopback, catalog_size=20, clips=render_base_clips(1, duration_s=0.5),
                                listed_preview={0}, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    environment = {**os.environ, **world.environment, "PREFECT_API_URL": PREFECT_API_URL.value(),
                   "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "songmix.cli.main", *_run(tmp_path)], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert downloading.wait(120), f"the run never reached the downloads: {process.kill() or process.communicate()}"
        time.sleep(1.0)
        sent = time.monotonic()
        process.send_signal(stop)
        process.wait(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        process.kill()
        process.wait()
    print(f"\n{stop.name} during a trickling download: the run ended {stopped_after:.1f} s later")
    assert stopped_after < 10, f"stopped {stopped_after:.1f} s after the signal"
    assert process.returncode != 0, process.communicate()
