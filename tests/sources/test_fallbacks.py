"""ReccoBeats and Deezer clients against loopback fakes."""

from __future__ import annotations

import pytest
import requests
from fakes import (  # noqa: F401  (loopback, loopback_server: fixtures)
    DEEZER_QUOTA,
    FakeDeezer,
    FakeReccoBeats,
    Fault,
    loopback,
    loopback_server,
    make_features,
    make_isrc,
    make_track_id,
)

from songmix.sources.fallbacks import (
    DEEZER_PERIOD_S,
    RECCOBEATS_BATCH,
    DeezerMiss,
    DeezerPreview,
    FallbackEndpoints,
    fetch_reccobeats_features,
    make_deezer_rate_limiter,
    resolve_deezer_preview,
)
from songmix.sources.http import ProviderError, RateLimiter, classify_http_error, make_session
from songmix.sources.schema import SPOTIFY_FEATURE_COLUMNS

TIMEOUT_S = 0.3


@pytest.fixture
def session(loopback):
    """A session trusting the fakes' loopback origin, as a run trusts its configured providers."""
    return make_session(timeout=TIMEOUT_S, trusted_urls=(loopback.url_for("/"),))


def test_endpoints_default_and_read_the_environment(monkeypatch):
    monkeypatch.delenv("SONGMIX_RECCOBEATS_URL", raising=False)
    monkeypatch.delenv("SONGMIX_DEEZER_URL", raising=False)
    assert FallbackEndpoints.from_env() == FallbackEndpoints("https://api.reccobeats.com/v1", "https://api.deezer.com")
    monkeypatch.setenv("SONGMIX_RECCOBEATS_URL", "http://127.0.0.1:1/recco/v1/")
    monkeypatch.setenv("SONGMIX_DEEZER_URL", "http://127.0.0.1:1/deezer")
    assert FallbackEndpoints.from_env() == FallbackEndpoints("http://127.0.0.1:1/recco/v1", "http://127.0.0.1:1/deezer")
    with pytest.raises(ValueError, match="SONGMIX_DEEZER_URL"):
        FallbackEndpoints(deezer_url="api.deezer.com")


# ----------------------------------------------------------------------------- ReccoBeats


@pytest.fixture
def recco(loopback):
    return FakeReccoBeats(loopback, features={make_track_id(i): make_features(i) for i in range(30)})


def test_reccobeats_maps_rows_back_through_href_and_drops_unknown_ids(recco, session):
    ids = [make_track_id(i) for i in range(RECCOBEATS_BATCH)]  # 0-29 known, 30-39 not
    features = fetch_reccobeats_features(session, recco.base_url, ids)
    assert set(features) == set(ids[:30])
    for i in range(30):
        assert features[make_track_id(i)] == {column: make_features(i)[column] for column in SPOTIFY_FEATURE_COLUMNS}
    assert recco.calls["audio-features"] == 1


def test_reccobeats_validates_batches_before_any_request(recco, session):
    with pytest.raises(ValueError, match="1 to 40"):
        fetch_reccobeats_features(session, recco.base_url, [make_track_id(i) for i in range(41)])
    with pytest.raises(ValueError, match="22 letters"):
        fetch_reccobeats_features(session, recco.base_url, ["spotify:track:x"])
    assert recco.calls["audio-features"] == 0


@pytest.mark.parametrize(
    ("fault", "status", "wait_s", "retryable"),
    [
        (Fault.rate_limited(3), 429, 3, True),
        (Fault.server_error(503), 503, None, True),
        (Fault.malformed(), 502, None, True),
        (Fault(400, '{"error": "bad ids"}'), 400, None, False),
    ],
)
def test_reccobeats_failures_are_classified(recco, session, fault, status, wait_s, retryable):
    recco.inject("audio-features", fault)
    with pytest.raises(ProviderError) as caught:
        fetch_reccobeats_features(session, recco.base_url, [make_track_id(1)])
    decision = classify_http_error(caught.value)
    assert caught.value.status == status and caught.value.provider == "reccobeats"
    assert (decision.retryable, decision.wait_s) == (retryable, wait_s)
    assert recco.calls["audio-features"] == 1


def test_reccobeats_times_out(recco, session):
    recco.inject("audio-features", Fault.slow(TIMEOUT_S + 0.4))
    with pytest.raises(requests.Timeout) as caught:
        fetch_reccobeats_features(session, recco.base_url, [make_track_id(1)])
    assert classify_http_error(caught.value).retryable


# ----------------------------------------------------------------------------- Deezer


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def deezer(loopback):
    return FakeDeezer(
        loopback,
        tracks={
            make_isrc(1): {"id": 101, "bpm": 123.5, "duration": 201},
            make_isrc(2): {"id": 102, "bpm": 0, "duration": 180},
            make_isrc(3): {"id": 103, "bpm": 99, "duration": 150, "preview": False},
        },
    )


@pytest.fixture
def limiter():
    return make_deezer_rate_limiter()


def test_deezer_finds_a_preview_that_downloads(deezer, session, limiter):
    found = resolve_deezer_preview(session, deezer.base_url, make_isrc(1), rate_limiter=limiter)
    assert isinstance(found, DeezerPreview)
    assert (found.deezer_id, found.bpm, found.duration_s) == (101, 123.5, 201)
    assert session.get(found.preview_url).content == deezer.preview_bytes
    assert "hmac" not in repr(found) and found.preview_url not in repr(found)


def test_deezer_unknown_bpm_is_none(deezer, session, limiter):
    assert resolve_deezer_preview(session, deezer.base_url, make_isrc(2), rate_limiter=limiter).bpm is None


def test_deezer_error_800_in_a_200_is_a_miss_with_a_reason(deezer, session, limiter):
    missing = resolve_deezer_preview(session, deezer.base_url, make_isrc(9), rate_limiter=limiter)
    assert missing == DeezerMiss(make_isrc(9), f"Deezer has no track with ISRC {make_isrc(9)}")


def test_deezer_track_without_preview_is_a_miss(deezer, session, limiter):
    missing = resolve_deezer_preview(session, deezer.base_url, make_isrc(3), rate_limiter=limiter)
    assert isinstance(missing, DeezerMiss) and "103 has no preview" in missing.reason


def test_deezer_quota_error_in_a_200_waits_one_window(deezer, session, limiter):
    deezer.inject("track", DEEZER_QUOTA)
    with pytest.raises(ProviderError) as caught:
        resolve_deezer_preview(session, deezer.base_url, make_isrc(1), rate_limiter=limiter)
    decision = classify_http_error(caught.value)
    assert caught.value.status == 429 and decision.retryable and decision.wait_s == DEEZER_PERIOD_S
    again = resolve_deezer_preview(session, deezer.base_url, make_isrc(1), rate_limiter=limiter)
    assert isinstance(again, DeezerPreview)


@pytest.mark.parametrize(
    ("fault", "status", "retryable"),
    [
        (Fault.json({"error": {"type": "Exception", "message": "busy", "code": 700}}), 503, True),
        (Fault.json({"error": {"type": "ParameterException", "message": "bad", "code": 500}}), 400, False),
        (Fault.server_error(500), 500, True),
        (Fault(404, "not here"), 404, False),
        (Fault.malformed(), 502, True),
    ],
)
def test_deezer_failures_are_classified(deezer, session, limiter, fault, status, retryable):
    deezer.inject("track", fault)
    with pytest.raises(ProviderError) as caught:
        resolve_deezer_preview(session, deezer.base_url, make_isrc(1), rate_limiter=limiter)
    assert caught.value.status == status and caught.value.provider == "deezer"
    assert classify_http_error(caught.value).retryable is retryable


def test_deezer_isrc_is_normalized_and_checked(deezer, session, limiter):
    hyphenated = "qz-fak-20-00001"
    assert isinstance(resolve_deezer_preview(session, deezer.base_url, hyphenated, rate_limiter=limiter), DeezerPreview)
    for bad in (None, "", "not-an-isrc"):
        assert isinstance(resolve_deezer_preview(session, deezer.base_url, bad, rate_limiter=limiter), DeezerMiss)
    assert deezer.calls["track"] == 1  # the misses asked nobody


def test_deezer_lookups_respect_the_rate_limit(deezer, session):
    clock = _FakeClock()
    limiter = RateLimiter(2, DEEZER_PERIOD_S, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        resolve_deezer_preview(session, deezer.base_url, make_isrc(1), rate_limiter=limiter)
    assert clock.now == 2 * DEEZER_PERIOD_S  # calls 3-4 wait one window, call 5 two
    assert deezer.calls["track"] == 5


def test_deezer_times_out(deezer, session, limiter):
    deezer.inject("track", Fault.slow(TIMEOUT_S + 0.4))
    with pytest.raises(requests.Timeout):
        resolve_deezer_preview(session, deezer.base_url, make_isrc(1), rate_limiter=limiter)
