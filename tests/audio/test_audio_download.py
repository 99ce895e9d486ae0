from __future__ import annotations

import hashlib
import socket
import time

import pytest
import requests
from werkzeug import Response

from songmix.audio.download import (
    DownloadError,
    audio_extension,
    cached_path,
    download_audio,
    is_retryable,
)

MP3_BODY = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40
WAV_BODY = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)


@pytest.fixture
def session():
    with requests.Session() as http:
        yield http


def _cache_files(cache_dir):
    return sorted(path.relative_to(cache_dir) for path in cache_dir.rglob("*") if path.is_file())


def test_audio_is_stored_under_its_digest(httpserver, session, tmp_path):
    httpserver.expect_request("/a.mp3").respond_with_data(MP3_BODY, content_type="audio/mpeg")

    downloaded = download_audio(session, httpserver.url_for("/a.mp3"), tmp_path)

    digest = hashlib.sha256(MP3_BODY).hexdigest()
    assert downloaded.sha256 == digest
    assert downloaded.path == tmp_path / digest[:2] / f"{digest}.mp3"
    assert downloaded.path.read_bytes() == MP3_BODY
    assert (downloaded.n_bytes, downloaded.content_type) == (len(MP3_BODY), "audio/mpeg")
    assert _cache_files(tmp_path) == [downloaded.path.relative_to(tmp_path)]


def test_downloading_the_same_audio_again_keeps_one_file(httpserver, session, tmp_path):
    httpserver.expect_request("/a.mp3").respond_with_data(MP3_BODY)
    httpserver.expect_request("/copy.mp3").respond_with_data(MP3_BODY)
    first = download_audio(session, httpserver.url_for("/a.mp3"), tmp_path)
    modified = first.path.stat().st_mtime_ns

    second = download_audio(session, httpserver.url_for("/copy.mp3"), tmp_path)

    assert second.path == first.path and second.path.stat().st_mtime_ns == modified
    assert len(_cache_files(tmp_path)) == 1
    assert cached_path(tmp_path, first.sha256) == first.path


def test_wav_gets_its_extension(httpserver, session, tmp_path):
    httpserver.expect_request("/a").respond_with_data(WAV_BODY,
                                                 content_type="application/octet-stream")

    assert download_audio(session, httpserver.url_for("/a"), tmp_path).path.suffix == ".wav"


@pytest.mark.parametrize(
    ("status", "retryable"), [(404, False), (403, False), (429, True), (500, True), (503, True)]
)
def test_http_errors_have_a_reason_and_a_retry_verdict(httpserver, session, tmp_path, status,
                                                       retryable):
    httpserver.expect_request("/a.mp3").respond_with_data("no", status=status)

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/a.mp3"), tmp_path)

    assert raised.value.reason == f"http_{status}"
    assert raised.value.retryable is retryable and is_retryable(raised.value) is retryable
    assert _cache_files(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"<html><body>Preview expired</body></html>", "not_audio"), (b"", "empty"),
     (b"\xff\xf1\x50\x80" + bytes(100), "not_audio")],  # AAC (ADTS), which we cannot decode
    ids=["html", "empty", "aac"],
)
def test_bodies_that_are_not_audio_are_refused(httpserver, session, tmp_path, body, reason):
    httpserver.expect_request("/a.mp3").respond_with_data(body, content_type="audio/mpeg")

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/a.mp3"), tmp_path)

    assert raised.value.reason == reason and not raised.value.retryable
    assert _cache_files(tmp_path) == []


def test_declared_oversized_body_is_refused(httpserver, session, tmp_path):
    httpserver.expect_request("/big.mp3").respond_with_data(MP3_BODY)

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/big.mp3"), tmp_path, max_bytes=1000)

    assert raised.value.reason == "too_large" and not raised.value.retryable
    assert _cache_files(tmp_path) == []


def test_undeclared_oversized_stream_is_cut_off(httpserver, session, tmp_path):
    def chunks():
        yield MP3_BODY[:12]
        while True:  # a body without Content-Length that never ends
            yield bytes(4096)

    httpserver.expect_request("/endless.mp3").respond_with_response(Response(chunks()))

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/endless.mp3"), tmp_path, max_bytes=50_000)

    assert raised.value.reason == "too_large"
    assert _cache_files(tmp_path) == []


def test_slow_response_times_out_and_is_retryable(httpserver, session, tmp_path):
    def slow(request):
        time.sleep(0.5)
        return Response(MP3_BODY)

    httpserver.expect_request("/slow.mp3").respond_with_handler(slow)

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/slow.mp3"), tmp_path, timeout=(1.0, 0.1))

    assert raised.value.reason == "timeout" and raised.value.retryable
    assert _cache_files(tmp_path) == []


def test_body_that_stalls_midway_times_out(httpserver, session, tmp_path):
    def stalling():
        yield MP3_BODY[:1000]
        time.sleep(0.5)
        yield MP3_BODY[1000:]

    httpserver.expect_request("/stall.mp3").respond_with_response(Response(stalling()))

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/stall.mp3"), tmp_path, timeout=(1.0, 0.1))

    assert raised.value.reason == "timeout" and raised.value.retryable
    assert _cache_files(tmp_path) == []


def test_trickling_body_hits_the_deadline(httpserver, session, tmp_path):
    def trickle():
        yield MP3_BODY[:12]
        for _ in range(20):
            time.sleep(0.02)
            yield bytes(100)

    httpserver.expect_request("/trickle.mp3").respond_with_response(Response(trickle()))

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/trickle.mp3"), tmp_path, deadline_s=0.1)

    assert raised.value.reason == "timeout"
    assert _cache_files(tmp_path) == []


def test_refused_connection_is_retryable(session, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(DownloadError) as raised:
        download_audio(session, f"http://127.0.0.1:{port}/a.mp3", tmp_path)

    assert raised.value.reason == "connection" and raised.value.retryable


@pytest.mark.parametrize(
    ("url", "options"),
    [("ftp://example.com/a.mp3", {}), ("http://localhost/a.mp3", {"max_bytes": 0}),
     ("http://localhost/a.mp3", {"timeout": (5.0, 0.0)})],
)
def test_invalid_arguments_raise_value_error(session, tmp_path, url, options):
    with pytest.raises(ValueError):
        download_audio(session, url, tmp_path, **options)


def test_is_retryable_only_for_retryable_download_errors():
    assert is_retryable(DownloadError("http_503", "busy", retryable=True))
    assert not is_retryable(DownloadError("http_404", "gone", retryable=False))
    assert not is_retryable(ValueError("http_503"))


@pytest.mark.parametrize(
    ("head", "extension"),
    [(b"ID3\x03\x00", "mp3"), (b"\xff\xfb\x90\x64", "mp3"), (b"\xff\xf3\x80\xc4", "mp3"),
     (b"RIFF\x00\x00\x00\x00WAVE", "wav"), (b"fLaC\x00\x00", "flac"), (b"OggS\x00\x02", "ogg"),
     (b"RIFF\x00\x00\x00\x00AVI ", None), (b"\xff\xf1\x50\x80", None), (b"<!DOCTYPE", None),
     (b"", None)],
)
def test_audio_extension_from_leading_bytes(head, extension):
    assert audio_extension(head) == extension


def test_cached_path_rejects_malformed_digests(tmp_path):
    assert cached_path(tmp_path, "a" * 64) is None
    with pytest.raises(ValueError, match="sha256"):
        cached_path(tmp_path, "../etc/passwd")
