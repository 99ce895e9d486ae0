"""The preview task: listed URL first, else Deezer by ISRC resolved and downloaded together
under the shared rate limit, else 'unavailable' with the reason; signed URLs never kept."""

from __future__ import annotations

import pytest
from fakes import DEEZER_QUOTA, FakeDeezer, loopback, loopback_server, make_isrc  # noqa: F401

from songmix.sources.http import ProviderError, RateLimiter
from songmix.tasks import previews

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32)


@pytest.fixture
def deezer(loopback, monkeypatch):
    fake = FakeDeezer(loopback, tracks={make_isrc(1): {"id": 11}, make_isrc(2): {"id": 12, "preview": False},
                                        make_isrc(3): {"id": 13}}, preview_bytes=WAV)
    monkeypatch.setenv("SONGMIX_DEEZER_URL", fake.base_url)
    return fake


def _download(tmp_path, track_ids, urls, isrcs):
    return previews.download_previews_with_fallback.fn(track_ids, urls, isrcs, tmp_path / "audio", chunk="1/1")


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


def test_deezer_quota_in_a_200_body_fails_the_chunk_for_a_retry(deezer, tmp_path):
    deezer.inject("track", DEEZER_QUOTA)
    with pytest.raises(ProviderError) as caught:
        _download(tmp_path, ["a"], [None], [make_isrc(1)])
    assert caught.value.status == 429 and caught.value.retry_after_s == 5.0


def test_a_retryable_preview_failure_is_raised_without_the_signed_url(deezer, tmp_path):
    from fakes import Fault

    deezer.inject("preview", Fault.server_error(503))
    with pytest.raises(ProviderError) as caught:
        _download(tmp_path, ["a"], [None], [make_isrc(1)])
    assert caught.value.status == 503 and "hdnea" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
