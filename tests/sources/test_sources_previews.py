"""The preview task: listed URL first, else Deezer by ISRC resolved and downloaded together
under the shared rate limit, else 'unavailable' with the reason; signed URLs never kept.
Failures are per track: retries repeat only the tracks that failed retryably, a preview
rate limited for days fails alone saying when to retry, and a redirect to a local service is
refused and counted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from fakes import DEEZER_QUOTA, Fault, FakeDeezer, loopback, loopback_server, make_isrc  # noqa: F401
from werkzeug import Response

from songmix.sources import http
from songmix.sources.http import RateLimiter
from songmix.sources.spotify import SpotifyEndpoints
from songmix.tasks import previews

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32)


@pytest.fixture
def deezer(loopback, monkeypatch):
    fake = FakeDeezer(loopback, tracks={make_isrc(1): {"id": 11}, make_isrc(2): {"id": 12, "preview": False},
                                        make_isrc(3): {"id": 13}}, preview_bytes=WAV)
    monkeypatch.setenv("SONGMIX_DEEZER_URL", fake.base_url)
    return fake


def _download(tmp_path, track_ids, urls, isrcs, *, providers=None):
    providers = providers or SpotifyEndpoints(api_url="https://api.spotify.com/v1")
    return previews.download_previews_with_fallback.fn(track_ids, urls, isrcs, tmp_path / "audio",
                                                       providers=providers, chunk="1/1")


def test_each_track_gets_its_listed_preview_else_deezer_else_a_reason(deezer, loopback, tmp_path):
    loopback.expect_request("/listed.wav").respond_with_data(WAV + b"listed", content_type="audio/wav")
    loopback.expect_request("/expired.wav").respond_with_data("gone", status=403)
    rows = _download(tmp_path, ["listed", "deezer", "no-preview", "unknown", "no-isrc", "expired"],
                     [loopback.url_for("/listed.wav"), None, None, None, None, loopback.url_for("/expired.wav")],
                     [make_isrc(9), make_isrc(1), make_isrc(2), make_isrc(7), None, make_isrc(3)])
    by_id = {row["track_id"]: row for row in rows}
    assert (by_id["listed"]["status"], by_id["listed"]["provider"]) == ("ok", "listed")
    assert (by_id["deezer"]["status"], by_id["deezer"]["provider"]) == ("ok", "deezer")
    assert by_id["deezer"]["sha256"] != by_id["listed"]["sha256"]
    assert by_id["no-preview"]["status"] == "unavailable" and "has no preview" in by_id["no-preview"]["error"]
    assert "Deezer has no track with ISRC" in by_id["unknown"]["error"]
    assert "no ISRC" in by_id["no-isrc"]["error"] and "no preview_url listed" in by_id["no-isrc"]["error"]
    # An expired listed URL (403) is not retried but falls back to Deezer.
    assert (by_id["expired"]["status"], by_id["expired"]["provider"]) == ("ok", "deezer")
    assert deezer.calls["track"] == 4 and deezer.calls["preview"] == 2
    assert not any("hdnea" in str(value) for row in rows for value in row.values())


def test_every_deezer_lookup_waits_its_turn_at_the_shared_limiter(deezer, monkeypatch, tmp_path):
    clock = [0.0]
    waits: list[float] = []
    limiter = RateLimiter(2, 5.0, clock=lambda: clock[0], sleep=waits.append)
    monkeypatch.setattr(previews, "DEEZER_RATE_LIMITER", limiter)
    _download(tmp_path, ["a", "b", "c"], [None] * 3, [make_isrc(1), make_isrc(7), make_isrc(2)])
    assert waits == [5.0]  # the third lookup in the same 5 s window waits it out


@pytest.fixture
def waits(monkeypatch):
    """The waits between retry rounds, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(http, "_wait_or_stop", waited.append)
    return waited


def test_deezer_quota_in_a_200_body_is_waited_out_for_that_track(deezer, waits, tmp_path):
    deezer.inject("track", DEEZER_QUOTA)
    rows = _download(tmp_path, ["a", "b"], [None, None], [make_isrc(1), make_isrc(3)])
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert waits == [5.0]  # Deezer's quota window, once
    assert deezer.calls["track"] == 3 and deezer.calls["preview"] == 2  # only "a" was asked again


def test_a_retryable_preview_failure_is_retried_alone_and_its_reason_has_no_signed_url(deezer, waits, tmp_path):
    deezer.inject("preview", *[Fault.server_error(503)] * 10)
    rows = _download(tmp_path, ["a"], [None], [make_isrc(1)])
    assert rows[0]["status"] == "failed" and "still failing after 5 attempts" in rows[0]["error"]
    assert "503" in rows[0]["error"] and "hdnea" not in rows[0]["error"]
    assert len(waits) == 4 and deezer.calls["preview"] == 5


# -- one slow preview among good ones (issue 17, item 3) ------------------------------------

N_CHUNK = 20


@pytest.fixture
def listed(loopback):
    """``/listed/<i>.wav`` serves track i's preview; ``answers[i]`` queues other answers first."""
    answers: dict[int, list[Response]] = {}
    served: dict[int, int] = {}

    def handle(request):
        index = int(request.path.rsplit("/", 1)[1].removesuffix(".wav"))
        served[index] = served.get(index, 0) + 1
        queued = answers.get(index)
        return queued.pop(0) if queued else Response(WAV + bytes([index]), 200, content_type="audio/wav")

    loopback.expect_request(re.compile(r"^/listed/\d+\.wav$")).respond_with_handler(handle)
    return SimpleNamespace(url=lambda i: loopback.url_for(f"/listed/{i}.wav"), answers=answers, served=served,
                           providers=SpotifyEndpoints(api_url=loopback.url_for("/spotify/api/v1")))


def _chunk(tmp_path, listed):
    return _download(tmp_path, [f"t{i}" for i in range(N_CHUNK)], [listed.url(i) for i in range(N_CHUNK)],
                     [None] * N_CHUNK, providers=listed.providers)


@pytest.mark.parametrize("retry_after", ["999999", "Wed, 21 Oct 2099 07:28:00 GMT"], ids=["seconds", "http-date"])
def test_a_preview_rate_limited_for_days_fails_alone_saying_when_to_retry(listed, waits, tmp_path, retry_after):
    listed.answers[7] = [Response("slow down", 429, {"Retry-After": retry_after})] * 10
    started = time.monotonic()
    rows = _chunk(tmp_path, listed)
    assert time.monotonic() - started < 10
    assert [row["track_id"] for row in rows if row["status"] == "ok"] == [f"t{i}" for i in range(N_CHUNK) if i != 7]
    assert rows[7]["status"] == "failed" and "run again after" in rows[7]["error"] and "429" in rows[7]["error"]
    assert waits == [] and listed.served == {i: 1 for i in range(N_CHUNK)}  # not retried, nobody asked twice


def test_retryable_failures_retry_only_their_tracks_and_keep_the_others(listed, waits, tmp_path):
    listed.answers[3] = [Response("busy", 503)]
    listed.answers[11] = [Response("slow down", 429, {"Retry-After": "2"}), Response("busy", 502)]
    listed.answers[15] = [Response("busy", 503)] * 10  # never recovers
    rows = _chunk(tmp_path, listed)
    assert [row["status"] for row in rows].count("ok") == N_CHUNK - 1
    assert rows[15]["status"] == "failed" and "still failing after 5 attempts" in rows[15]["error"]
    assert waits[0] >= 2.0 and len(waits) == 4  # round 1 waits at least the Retry-After; then backoffs
    assert listed.served == {i: {3: 2, 11: 3, 15: 5}.get(i, 1) for i in range(N_CHUNK)}


def test_a_preview_that_redirects_to_another_local_service_is_refused_and_counted(listed, waits, tmp_path):
    from pytest_httpserver import HTTPServer

    with HTTPServer(host="127.0.0.1", port=0) as other:  # e.g. a database's HTTP port
        other.expect_request("/secret").respond_with_data(WAV + b"not yours", content_type="audio/wav")
        listed.answers[4] = [Response("", 302, {"Location": other.url_for("/secret")})]
        rows = _chunk(tmp_path, listed)
        assert other.log == []
    assert rows[4]["status"] == "failed" and rows[4]["error"].startswith("listed preview refused: redirect_refused")
    assert "loopback" in rows[4]["error"] and previews.count_refused(rows) == 1
    assert [row["status"] for row in rows].count("ok") == N_CHUNK - 1 and waits == []


def test_temporary_files_a_killed_run_left_are_swept_at_the_start(listed, tmp_path):
    cache = tmp_path / "audio"
    cache.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    left_by_dead = cache / f".download-{dead}-abc.tmp"
    old_unnamed = cache / ".download-xyz.tmp"
    mine = cache / f".download-{os.getpid()}-live.tmp"
    for path in (left_by_dead, old_unnamed, mine):
        path.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    os.utime(old_unnamed, (an_hour_ago, an_hour_ago))
    _download(tmp_path, ["t0"], [listed.url(0)], [None], providers=listed.providers)
    assert sorted(p.name for p in cache.glob(".download-*")) == [mine.name]
