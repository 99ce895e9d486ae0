from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from werkzeug import Response

from songmix.audio.download import (
    DownloadError,
    audio_extension,
    download_audio,
    link_into_cache,
    remove_stale_downloads,
)
from songmix.sources.http import NetworkInterrupted, interrupt_network, make_download_session

MP3_BODY = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40
WAV_BODY = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)


@pytest.fixture
def session(httpserver):
    """A download session that trusts the test server (a configured provider, here)."""
    with make_download_session(timeout=5, trusted_urls=[httpserver.url_for("/")]) as http:
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


def test_a_file_linked_into_the_cache_is_what_a_download_of_its_bytes_keeps(httpserver, session, tmp_path):
    rendered = tmp_path / "previews" / "track.mp3"
    rendered.parent.mkdir()
    rendered.write_bytes(MP3_BODY)
    cache = tmp_path / "audio"
    linked = link_into_cache(rendered, cache)
    assert linked == cache / hashlib.sha256(MP3_BODY).hexdigest()[:2] / f"{hashlib.sha256(MP3_BODY).hexdigest()}.mp3"
    assert linked.stat().st_ino == rendered.stat().st_ino  # one copy of the bytes, two names
    httpserver.expect_request("/track.mp3").respond_with_data(MP3_BODY)

    downloaded = download_audio(session, httpserver.url_for("/track.mp3"), cache)

    assert downloaded.path == linked and downloaded.path.stat().st_ino == rendered.stat().st_ino
    assert len(_cache_files(cache)) == 1
    assert link_into_cache(rendered, cache) == linked  # linking again changes nothing


def test_a_file_that_is_not_audio_is_not_linked_into_the_cache(tmp_path):
    page = tmp_path / "page.mp3"
    page.write_bytes(b"<html>not audio</html>")
    assert link_into_cache(page, tmp_path / "audio") is None
    assert not (tmp_path / "audio").exists()


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
    assert raised.value.retryable is retryable
    assert _cache_files(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "reason", "described"),
    [(b"<html><body>Preview expired for token-abc123</body></html>", "not_audio", "starts with markup"),
     (b"", "empty", "empty body"),
     (b"\xff\xf1\x50\x80" + bytes(100), "not_audio", "starts with binary data")],  # AAC (ADTS): undecodable
    ids=["html", "empty", "aac"],
)
def test_bodies_that_are_not_audio_are_refused(httpserver, session, tmp_path, body, reason, described):
    httpserver.expect_request("/a.mp3").respond_with_data(body, content_type="audio/mpeg")

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/a.mp3"), tmp_path)

    assert raised.value.reason == reason and not raised.value.retryable
    # The error is stored and shown: it describes the body, never quotes it.
    assert described in str(raised.value) and "token-abc123" not in str(raised.value)
    assert "\\x" not in str(raised.value)
    assert _cache_files(tmp_path) == []


def test_declared_oversized_body_is_refused(httpserver, session, tmp_path):
    httpserver.expect_request("/big.mp3").respond_with_data(MP3_BODY)

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/big.mp3"), tmp_path, max_bytes=1000)

    assert raised.value.reason == "too_large" and not raised.value.retryable
    assert _cache_files(tmp_path) == []


def _failed_download(httpserver, session, cache, respond, **limits) -> DownloadError:
    """The error of a download from a server answering with ``respond``; the cache keeps nothing."""
    httpserver.expect_request("/audio.mp3").respond_with_handler(respond)
    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/audio.mp3"), cache, **limits)
    assert _cache_files(cache) == []
    return raised.value


def test_undeclared_oversized_stream_is_cut_off(httpserver, session, tmp_path):
    def chunks():
        yield MP3_BODY[:12]
        while True:  # a body without Content-Length that never ends
            yield bytes(4096)

    error = _failed_download(httpserver, session, tmp_path, lambda request: Response(chunks()), max_bytes=50_000)
    assert error.reason == "too_large"


def _slow_headers(request):
    time.sleep(0.5)
    return Response(MP3_BODY)


def _body_stalling_midway(request):
    def stalling():
        yield MP3_BODY[:1000]
        time.sleep(0.5)
        yield MP3_BODY[1000:]

    return Response(stalling())


@pytest.mark.parametrize("respond", [_slow_headers, _body_stalling_midway])
def test_a_server_too_slow_to_answer_times_out_and_is_retryable(httpserver, session, tmp_path, respond):
    error = _failed_download(httpserver, session, tmp_path, respond, timeout=(1.0, 0.1))
    assert error.reason == "timeout" and error.retryable


def test_trickling_body_hits_the_deadline(httpserver, session, tmp_path):
    def trickle():
        yield MP3_BODY[:12]
        for _ in range(20):
            time.sleep(0.02)
            yield bytes(100)

    error = _failed_download(httpserver, session, tmp_path, lambda request: Response(trickle()), deadline_s=0.1)
    assert error.reason == "timeout"


def test_refused_connection_is_retryable(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.mp3"

    with pytest.raises(DownloadError) as raised:
        download_audio(make_download_session(timeout=5, trusted_urls=[url]), url, tmp_path)

    assert raised.value.reason == "connection" and raised.value.retryable


@pytest.mark.parametrize(
    ("url", "options"),
    [("http://localhost/a.mp3", {"max_bytes": 0}), ("http://localhost/a.mp3", {"timeout": (5.0, 0.0)}),
     ("http://localhost/a.mp3", {"max_redirects": -1})],
)
def test_invalid_arguments_raise_value_error(session, tmp_path, url, options):
    with pytest.raises(ValueError):
        download_audio(session, url, tmp_path, **options)


@pytest.mark.parametrize("url", ["ftp://example.com/a.mp3", "file:///etc/passwd", "data:audio/mpeg;base64,SUQz",
                                 "http:///a.mp3", "not a url", ""])
def test_a_listed_url_that_is_not_http_is_refused_like_a_local_address(session, tmp_path, url):
    with pytest.raises(DownloadError) as raised:  # it came from a provider's answer: one track fails
        download_audio(session, url, tmp_path)
    assert raised.value.reason == "address_refused" and not raised.value.retryable


def test_a_session_without_an_address_policy_is_refused(tmp_path):
    import requests

    with pytest.raises(ValueError, match="make_download_session"):
        download_audio(requests.Session(), "http://localhost/a.mp3", tmp_path)


@pytest.mark.parametrize(
    ("head", "extension"),
    [(b"ID3\x03\x00", "mp3"), (b"\xff\xfb\x90\x64", "mp3"), (b"\xff\xf3\x80\xc4", "mp3"),
     (b"RIFF\x00\x00\x00\x00WAVE", "wav"), (b"fLaC\x00\x00", "flac"), (b"OggS\x00\x02", "ogg"),
     (b"RIFF\x00\x00\x00\x00AVI ", None), (b"\xff\xf1\x50\x80", None), (b"<!DOCTYPE", None),
     (b"", None)],
)
def test_audio_extension_from_leading_bytes(head, extension):
    assert audio_extension(head) == extension


# ----------------------------------------------------------------------------- redirects


@pytest.fixture(scope="module")
def _other_server():
    from pytest_httpserver import HTTPServer

    with HTTPServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def other_service(_other_server):
    """Another service on this machine (another loopback port): nothing may reach it."""
    _other_server.clear()
    _other_server.expect_request(re.compile(".*")).respond_with_data(MP3_BODY, content_type="audio/mpeg")
    return _other_server


def _redirect(httpserver, path, location, status=302):
    httpserver.expect_request(path).respond_with_response(Response("", status, {"Location": location}))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("spelling", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1",
                                      "0177.0.0.1", "127.1"])
def test_a_redirect_to_another_local_service_is_refused(httpserver, session, other_service, tmp_path,
                                                        status, spelling):
    _redirect(httpserver, "/a.mp3", f"http://{spelling}:{other_service.port}/secret", status)

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/a.mp3"), tmp_path)

    assert raised.value.reason == "redirect_refused" and not raised.value.retryable
    assert other_service.log == [] and _cache_files(tmp_path) == []


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://example.com/a.mp3", "data:audio/mpeg;base64,SUQz",
                                      "gopher://127.0.0.1:70/", "http://169.254.169.254/latest/meta-data",
                                      "http://[::1]:9/a.mp3", "http://10.0.0.1/a.mp3", "//127.0.0.1:9/a.mp3"])
def test_a_redirect_to_another_scheme_or_a_private_address_is_refused(httpserver, session, tmp_path, location):
    _redirect(httpserver, "/a.mp3", location)

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/a.mp3"), tmp_path)

    assert raised.value.reason == "redirect_refused" and _cache_files(tmp_path) == []


def test_a_refused_redirect_late_in_a_chain_is_refused(httpserver, session, other_service, tmp_path):
    _redirect(httpserver, "/a.mp3", "/b.mp3")
    _redirect(httpserver, "/b.mp3", httpserver.url_for("/c.mp3"), 307)
    _redirect(httpserver, "/c.mp3", other_service.url_for("/secret"))

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/a.mp3"), tmp_path)

    assert raised.value.reason == "redirect_refused" and other_service.log == []
    assert f"127.0.0.1:{other_service.port}" in raised.value.detail and "loopback" in raised.value.detail


def test_redirects_within_the_provider_are_followed_up_to_the_limit(httpserver, session, tmp_path):
    for hop in range(5):
        _redirect(httpserver, f"/{hop}.mp3", f"/{hop + 1}.mp3")
    httpserver.expect_request("/5.mp3").respond_with_data(MP3_BODY)
    _redirect(httpserver, "/loop.mp3", "/loop.mp3")

    assert download_audio(session, httpserver.url_for("/0.mp3"), tmp_path).n_bytes == len(MP3_BODY)
    with pytest.raises(DownloadError, match="redirected more than 4 times") as raised:
        download_audio(session, httpserver.url_for("/0.mp3"), tmp_path, max_redirects=4)
    assert raised.value.reason == "too_many_redirects"
    with pytest.raises(DownloadError, match="too_many_redirects"):
        download_audio(session, httpserver.url_for("/loop.mp3"), tmp_path)


def test_a_url_on_a_local_address_that_is_no_provider_is_refused(session, other_service, tmp_path):
    with pytest.raises(DownloadError) as raised:
        download_audio(session, other_service.url_for("/secret"), tmp_path)

    assert raised.value.reason == "address_refused" and other_service.log == []


def test_a_name_that_resolves_to_a_public_address_then_to_a_local_one_is_caught(
        session, other_service, tmp_path, monkeypatch):
    """DNS rebinding: the check sees a public address, the connection lands on loopback."""
    real = socket.getaddrinfo
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", other_service.port))]])

    def resolve(host, port, *args, **kwargs):
        if host == "cdn.example":
            return next(answers, None) or real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(DownloadError) as raised:
        download_audio(session, f"http://cdn.example:{other_service.port}/secret", tmp_path)

    assert raised.value.reason == "address_refused" and "connected to 127.0.0.1" in raised.value.detail
    assert other_service.log == [] and _cache_files(tmp_path) == []


# ----------------------------------------------------------------------------- deadlines and stopping


def _trickle(interval_s: float, n_bytes: int = 1000):
    def body():
        yield MP3_BODY[:12]
        for _ in range(n_bytes):
            time.sleep(interval_s)
            yield b"\x00"

    return body


@pytest.mark.parametrize("framing", ["chunked", "close-delimited"])
def test_a_body_trickling_faster_than_the_read_timeout_is_cut_at_the_deadline(httpserver, session, tmp_path,
                                                                              framing):
    headers = {"Connection": "close"} if framing == "close-delimited" else {}
    response = Response(_trickle(0.2)(), headers=headers, direct_passthrough=True)
    if framing == "close-delimited":
        response.headers.pop("Transfer-Encoding", None)
    httpserver.expect_request("/trickle.mp3").respond_with_response(response)
    started = time.monotonic()

    with pytest.raises(DownloadError) as raised:
        download_audio(session, httpserver.url_for("/trickle.mp3"), tmp_path, timeout=(1.0, 1.0), deadline_s=1.0)

    assert raised.value.reason == "timeout" and raised.value.retryable
    assert time.monotonic() - started < 3.0  # the body would take 200 s
    assert _cache_files(tmp_path) == []


@pytest.fixture
def https_server(tmp_path_factory):
    """A loopback HTTPS server with a self-signed certificate for 127.0.0.1, and that certificate."""
    import shutil
    import ssl

    from pytest_httpserver import HTTPServer

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with HTTPServer(host="127.0.0.1", port=0, ssl_context=context, threaded=True) as server:
        yield server, cert


def test_a_trickling_https_body_is_cut_at_the_deadline(https_server, tmp_path, monkeypatch):
    server, cert = https_server
    for bundle in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # they would override session.verify
        monkeypatch.delenv(bundle, raising=False)
    server.expect_request("/trickle.mp3").respond_with_response(
        Response(_trickle(0.2)(), headers={"Content-Length": "1012"}, direct_passthrough=True))
    url = server.url_for("/trickle.mp3")
    assert url.startswith("https://")
    session = make_download_session(timeout=5, trusted_urls=[url])
    session.verify = str(cert)
    started = time.monotonic()

    with pytest.raises(DownloadError) as raised:
        download_audio(session, url, tmp_path, timeout=(1.0, 1.0), deadline_s=1.0)

    assert raised.value.reason == "timeout" and time.monotonic() - started < 3.0


@pytest.fixture
def trickling_headers():
    """A raw server that sends its status line, then one header byte every 0.2 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.recv(4096)
                try:
                    connection.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not stop.wait(0.2):
                        connection.sendall(b"X")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/a.mp3"
    stop.set()
    thread.join()
    listener.close()


def test_headers_trickling_forever_are_cut_at_the_deadline(trickling_headers, tmp_path):
    session = make_download_session(timeout=5, trusted_urls=[trickling_headers])
    started = time.monotonic()

    with pytest.raises(DownloadError) as raised:
        download_audio(session, trickling_headers, tmp_path, timeout=(1.0, 1.0), deadline_s=1.0)

    assert raised.value.reason == "timeout" and time.monotonic() - started < 3.0


def test_stopping_the_run_cuts_a_download_in_progress(httpserver, session, tmp_path):
    httpserver.expect_request("/trickle.mp3").respond_with_response(Response(_trickle(0.2)()))
    outcome: list[BaseException] = []

    def download():
        try:
            download_audio(session, httpserver.url_for("/trickle.mp3"), tmp_path)
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            outcome.append(error)

    worker = threading.Thread(target=download)
    worker.start()
    time.sleep(0.5)
    stopped = time.monotonic()
    interrupt_network()
    worker.join(timeout=5)

    assert not worker.is_alive() and time.monotonic() - stopped < 2.0
    assert isinstance(outcome[0], NetworkInterrupted)
    assert _cache_files(tmp_path) == []
    with pytest.raises(NetworkInterrupted):  # the session stays closed
        download_audio(session, httpserver.url_for("/trickle.mp3"), tmp_path)


# ----------------------------------------------------------------------------- temporary files


def test_stale_temporary_files_are_removed_and_live_ones_kept(tmp_path):
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
    names = {"dead": f".download-{dead_pid}-a1.tmp", "mine": f".download-{os.getpid()}-b2.tmp",
             "old": ".download-c3.tmp", "fresh": ".download-d4.tmp", "parent": f".download-{os.getppid()}-e5.tmp",
             "audio": "ab.mp3"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"")
    hour_ago = time.time() - 3600
    os.utime(tmp_path / names["old"], (hour_ago, hour_ago))

    assert remove_stale_downloads(tmp_path) == 2

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        names[key] for key in ("mine", "fresh", "parent", "audio"))


def test_a_download_names_its_temporary_file_after_its_process(httpserver, session, tmp_path, monkeypatch):
    seen: list[str] = []
    real_mkstemp = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", lambda **kw: seen.append(kw["prefix"]) or real_mkstemp(**kw))
    httpserver.expect_request("/a.mp3").respond_with_data(MP3_BODY)

    download_audio(session, httpserver.url_for("/a.mp3"), tmp_path)

    assert seen == [f".download-{os.getpid()}-"]
