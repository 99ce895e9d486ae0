"""The audio tasks' per-track records: readable reasons, no URL tokens, and a retryable
failure that outlasts the retries recorded per track instead of failing the chunk."""

from __future__ import annotations

import numpy as np
import soundfile
from werkzeug import Response

from songmix.tasks.audio import download_previews, extract_aubio_features

MP3_BODY = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40


def test_failures_read_reason_and_detail_without_the_url_token(httpserver, tmp_path):
    httpserver.expect_request("/ok.mp3").respond_with_data(MP3_BODY)
    httpserver.expect_request("/gone.mp3").respond_with_data("gone", status=404)
    httpserver.expect_request("/busy.mp3").respond_with_response(Response("busy", status=503))
    urls = [httpserver.url_for("/ok.mp3"), httpserver.url_for("/gone.mp3") + "?token=SECRET",
            httpserver.url_for("/busy.mp3") + "?token=SECRET", None]

    # Called outside Prefect there is no retry to come: this is the last attempt.
    rows = download_previews.fn(["ok", "gone", "busy", "none"], urls, tmp_path, chunk="1/1")

    by_track = {row["track_id"]: row for row in rows}
    assert by_track["ok"]["status"] == "ok" and by_track["ok"]["path"]
    assert by_track["gone"]["status"] == "failed"
    assert by_track["gone"]["error"].startswith("http_404: localhost answered 404")
    assert by_track["busy"]["error"].startswith("http_503:")
    assert "still failing after every retry" in by_track["busy"]["error"]
    assert not any("SECRET" in row.get("error", "") for row in rows)
    assert by_track["none"] == by_track["none"] | {"status": "unavailable", "error": "no preview URL"}


def test_a_file_that_cannot_be_analysed_gets_an_error_row(tmp_path):
    good, empty = tmp_path / "good.wav", tmp_path / "empty.mp3"
    soundfile.write(good, np.zeros(22050, dtype=np.float32), 22050)
    empty.write_bytes(b"")

    rows = extract_aubio_features.fn(["a" * 64, "b" * 64], [str(good), str(empty)], "v1",
                                     chunk="1/1")

    assert "error" not in rows[0] and rows[0]["flags"].startswith("silent")
    assert rows[1]["error"].startswith("empty_file: ")
    assert rows[1]["sha256"] == "b" * 64 and rows[1]["extractor_version"] == "v1"
