"""The retry policy (per task and per item), the session without silent retries, stopping
a run's network waits, and the rate limiter."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from fakes import loopback, loopback_server  # noqa: F401  (fixtures)
import requests
from prefect.states import Completed, Failed
from spotipy.exceptions import SpotifyException

from songmix.sources.addresses import AddressRefused
from songmix.sources.http import (
    BACKOFF_BASE_S,
    BACKOFF_JITTER,
    MAX_RETRY_AFTER_S,
    GaveUp,
    InterruptibleThreadPoolTaskRunner,
    NetworkInterrupted,
    ProviderError,
    RateLimiter,
    backoff_s,
    check_base_url,
    classify_http_error,
    interrupt_network,
    make_download_session,
    make_retry_condition,
    make_session,
    retry_after_seconds,
    retry_each,
    wait_unless_interrupted,
)


def _response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = "http://provider.test/v1/thing?token=abc"
    response.headers.update(headers or {})
    return response


# ----------------------------------------------------------------------------- classification


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_failures_are_retried_with_backoff(status):
    decision = classify_http_error(ProviderError("boom", provider="p", status=status))
    assert decision.retryable and decision.wait_s is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status):
    decision = classify_http_error(ProviderError("no", provider="p", status=status))
    assert not decision.retryable
    assert str(status) in decision.reason


def test_429_waits_the_retry_after():
    decision = classify_http_error(ProviderError("slow down", provider="p", status=429, retry_after_s=7))
    assert decision.retryable and decision.wait_s == 7


def test_429_without_retry_after_falls_back_to_backoff():
    decision = classify_http_error(ProviderError("slow down", provider="p", status=429))
    assert decision.retryable and decision.wait_s is None


def test_429_beyond_the_cap_fails_and_says_when_to_retry():
    wait = MAX_RETRY_AFTER_S + 3600
    before = datetime.now(timezone.utc)
    decision = classify_http_error(ProviderError("slow down", provider="p", status=429, retry_after_s=wait))
    assert not decision.retryable and decision.wait_s == wait
    retry_at = datetime.strptime(decision.reason.split("run again after ")[1], "%Y-%m-%d %H:%M:%S UTC")
    expected = (before + timedelta(seconds=wait)).replace(tzinfo=None)
    assert abs((retry_at - expected).total_seconds()) < 5


def test_cap_is_configurable():
    exc = ProviderError("slow down", provider="p", status=429, retry_after_s=30)
    assert not classify_http_error(exc, max_retry_after_s=10).retryable
    assert classify_http_error(exc, max_retry_after_s=60).retryable


def test_spotify_exception_reads_retry_after_case_insensitively():
    exc = SpotifyException(429, -1, "rate limited", headers={"retry-after": "4"})
    decision = classify_http_error(exc)
    assert decision.retryable and decision.wait_s == 4
    assert not classify_http_error(SpotifyException(404, -1, "not found")).retryable


def test_requests_http_error_uses_its_response():
    retryable = requests.HTTPError(response=_response(503))
    refused = requests.HTTPError(response=_response(404))
    limited = requests.HTTPError(response=_response(429, {"Retry-After": "2"}))
    assert classify_http_error(retryable).retryable
    assert not classify_http_error(refused).retryable
    assert classify_http_error(limited).wait_s == 2
    assert "token=abc" not in classify_http_error(refused).reason


@pytest.mark.parametrize(
    "exc",
    [requests.ReadTimeout("slow"), requests.ConnectTimeout("no route"), requests.ConnectionError("refused")],
)
def test_transport_failures_are_retried(exc):
    assert classify_http_error(exc).retryable


def test_unknown_errors_are_not_retried():
    assert not classify_http_error(ValueError("bad input")).retryable
    assert not classify_http_error(ProviderError("odd", provider="p")).retryable


def test_wrapped_errors_are_classified_through_their_chain():
    def wrapped() -> None:
        try:
            raise requests.HTTPError(response=_response(429, {"Retry-After": "3"}))
        except requests.HTTPError:
            raise RuntimeError("token request failed")  # like spotipy's SpotifyOauthError

    with pytest.raises(RuntimeError) as caught:
        wrapped()
    decision = classify_http_error(caught.value)
    assert decision.retryable and decision.wait_s == 3


def test_retry_after_forms():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert retry_after_seconds({"Retry-After": "12"}) == 12
    in_90_s = format_datetime(now + timedelta(seconds=90), usegmt=True)
    ago_90_s = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds({"Retry-After": in_90_s}, now=now) == 90
    assert retry_after_seconds({"Retry-After": ago_90_s}, now=now) == 0
    assert retry_after_seconds({"Retry-After": "-5"}) == 0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds(None) is None


def test_check_base_url():
    assert check_base_url("http://127.0.0.1:9/v1/", name="X") == "http://127.0.0.1:9/v1"
    for bad in ("api.spotify.com", "ftp://x", "", None):
        with pytest.raises(ValueError, match="X must be an http"):
            check_base_url(bad, name="X")


# ----------------------------------------------------------------------------- Prefect retry condition


class _Task:
    name = "fetch-page"


def _recorded(waits: list[float]):
    """A retry condition's wait that records instead of waiting (and is never interrupted)."""
    return lambda seconds: waits.append(seconds) or True


def test_retry_condition_sleeps_the_retry_after_then_retries():
    slept: list[float] = []
    condition = make_retry_condition(wait=_recorded(slept))
    state = Failed(data=ProviderError("slow down", provider="p", status=429, retry_after_s=2.5))
    assert condition(_Task(), None, state) is True
    assert slept == [2.5]


class _TaskRun:
    def __init__(self, run_count: int) -> None:
        self.run_count = run_count


def test_retry_condition_backs_off_exponentially_on_5xx_and_only_once_per_failure():
    slept: list[float] = []
    condition = make_retry_condition(wait=_recorded(slept), uniform=lambda: 0.5)  # no jitter
    for attempt in (1, 2, 3):
        state = Failed(data=SpotifyException(503, -1, "unavailable"))
        assert condition(_Task(), _TaskRun(attempt), state) is True
    assert slept == [BACKOFF_BASE_S, 2 * BACKOFF_BASE_S, 4 * BACKOFF_BASE_S]


@pytest.mark.parametrize("uniform", [0.0, 0.25, 0.999])
def test_backoff_is_jittered_within_its_bounds(uniform):
    nominal = 4 * BACKOFF_BASE_S
    waited = backoff_s(3, uniform=lambda: uniform)
    assert nominal * (1 - BACKOFF_JITTER) <= waited <= nominal * (1 + BACKOFF_JITTER)
    assert waited == pytest.approx(nominal * (1 + BACKOFF_JITTER * (2 * uniform - 1)))


def test_network_tasks_leave_all_waiting_to_the_retry_condition():
    from songmix.tasks.spotify import NETWORK_RETRIES

    assert NETWORK_RETRIES["retry_delay_seconds"] == 0 and "retry_jitter_factor" not in NETWORK_RETRIES


def test_retry_condition_refuses_4xx_and_long_waits_and_logs_why(caplog):
    slept: list[float] = []
    condition = make_retry_condition(wait=_recorded(slept), max_retry_after_s=60)
    with caplog.at_level(logging.WARNING, logger="songmix.sources.http"):
        assert condition(_Task(), None, Failed(data=SpotifyException(404, -1, "missing"))) is False
        too_long = ProviderError("slow down", provider="p", status=429, retry_after_s=600)
        assert condition(_Task(), None, Failed(data=too_long)) is False
    assert slept == []
    assert "run again after" in caplog.text and "fetch-page" in caplog.text


def test_retry_condition_ignores_states_without_an_exception():
    condition = make_retry_condition(wait=lambda s: True)
    assert condition(_Task(), None, Completed(data=3)) is False


# ----------------------------------------------------------------------------- session


def test_session_makes_one_request_per_call_on_500_and_429(loopback):
    loopback.expect_request("/boom").respond_with_data("no", status=500)
    loopback.expect_request("/busy").respond_with_data("later", status=429, headers={"Retry-After": "1"})
    session = make_session(timeout=1, trusted_urls=(loopback.url_for("/"),))
    assert session.get(loopback.url_for("/boom")).status_code == 500
    assert session.get(loopback.url_for("/busy")).status_code == 429
    assert [request.path for request, _ in loopback.log] == ["/boom", "/busy"]


def test_session_applies_its_timeout_to_calls_that_name_none(loopback):
    loopback.expect_request("/slow").respond_with_handler(lambda request: time.sleep(0.6) or _ok())
    session = make_session(timeout=0.2, trusted_urls=(loopback.url_for("/"),))
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        session.get(loopback.url_for("/slow"))
    assert time.monotonic() - started < 0.5


def _trickling(request):
    """An answer that sends a byte every 0.1 s for a minute: no read ever waits a second."""
    from werkzeug import Response

    return Response((b" " for _ in range(600) if time.sleep(0.1) is None), content_type="application/json")


@pytest.mark.parametrize("kind", ["api", "downloads"])
def test_an_api_answer_trickling_past_the_deadline_is_cut(loopback, kind):
    """Spotify's and ReccoBeats' answers (API sessions), Deezer's lookups (the download session)."""
    loopback.expect_request("/search").respond_with_handler(_trickling)
    trusted = (loopback.url_for("/"),)
    if kind == "api":
        session = make_session(timeout=1, trusted_urls=trusted, deadline_s=1.0)
    else:
        session = make_download_session(timeout=1, trusted_urls=trusted)
        session.request_deadline_s = 1.0
    started = time.monotonic()
    with pytest.raises(requests.Timeout, match="did not answer within 1 s"):
        session.get(loopback.url_for("/search"))
    assert time.monotonic() - started < 3


def test_an_api_session_reaches_only_public_addresses_and_its_providers(loopback):
    loopback.expect_request("/secret").respond_with_data("{}")
    with pytest.raises(AddressRefused, match="loopback"):
        make_session(timeout=1).get(loopback.url_for("/secret"))
    assert loopback.log == []


def test_a_stop_cuts_an_api_request_in_flight_and_the_session_serves_the_next_run(loopback):
    loopback.expect_request("/search").respond_with_handler(_trickling)
    loopback.expect_request("/fine").respond_with_data("{}")
    session = make_session(timeout=1, trusted_urls=(loopback.url_for("/"),))
    failed = []
    request = threading.Thread(target=lambda: failed.append(
        pytest.raises(requests.RequestException, session.get, loopback.url_for("/search"))))
    started = time.monotonic()
    request.start()
    time.sleep(0.5)
    interrupt_network()
    request.join(timeout=5)
    assert not request.is_alive() and failed and time.monotonic() - started < 3
    assert session.get(loopback.url_for("/fine")).status_code == 200


def test_session_rejects_a_missing_timeout():
    for bad in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            make_session(timeout=bad)


def _ok():
    from werkzeug.wrappers import Response

    return Response("ok")


# ----------------------------------------------------------------------------- rate limiter


class _FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _max_in_any_window(starts: list[float], period: float) -> int:
    starts = sorted(starts)
    return max(sum(1 for t in starts if s <= t < s + period - 1e-9) for s in starts)


def test_rate_limiter_never_exceeds_the_quota_in_any_window():
    clock = _FakeClock()
    limiter = RateLimiter(50, 5.0, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(175):
        limiter.acquire()
        starts.append(clock.now)
    assert _max_in_any_window(starts, 5.0) == 50
    assert starts[49] == 100.0  # the first 50 go at once
    assert clock.now == pytest.approx(115.0)  # 175 calls need three more windows


def test_rate_limiter_lets_calls_through_after_a_pause():
    clock = _FakeClock()
    limiter = RateLimiter(2, 1.0, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 1.0]
    clock.now += 10
    assert limiter.acquire() == 0


def test_rate_limiter_is_thread_safe():
    # A frozen clock: every grant is "now + wait", so the grants must form exact windows.
    limiter = RateLimiter(5, 0.2, clock=lambda: 0.0, sleep=lambda seconds: None)
    grants: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = limiter.acquire()
            with lock:
                grants.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [round(0.2 * (i // 5), 6) for i in range(200)]
    assert sorted(round(g, 6) for g in grants) == expected


def test_rate_limiter_validates():
    with pytest.raises(ValueError, match="max_calls"):
        RateLimiter(0, 5)
    with pytest.raises(ValueError, match="period_s"):
        RateLimiter(5, 0)



@pytest.mark.slow
def test_retry_condition_drives_a_real_prefect_task(prefect_harness):
    """The engine's own call: a 429 waits its Retry-After and retries; a 404 fails at once."""
    from prefect import flow, task

    slept: list[float] = []
    attempts: list[str] = []
    condition = make_retry_condition(wait=_recorded(slept))

    @task(retries=3, retry_delay_seconds=0, retry_condition_fn=condition)
    def rate_limited_once() -> str:
        attempts.append("limited")
        if len(attempts) == 1:
            raise ProviderError("slow down", provider="p", status=429, retry_after_s=1.5)
        return "ok"

    @task(retries=3, retry_delay_seconds=0, retry_condition_fn=condition)
    def not_found() -> None:
        attempts.append("missing")
        raise ProviderError("no such thing", provider="p", status=404)

    @flow
    def both() -> tuple[str, str]:
        return rate_limited_once(), not_found(return_state=True).type.value

    assert both() == ("ok", "FAILED")
    assert attempts == ["limited", "limited", "missing"]
    assert slept == [1.5]


# ----------------------------------------------------------------------------- per-item retries


def _scripted(answers: dict[str, list]):
    """An ``attempt`` that raises or returns each item's scripted answers in turn."""
    calls: list[str] = []

    def attempt(item: str) -> str:
        calls.append(item)
        answer = answers[item].pop(0) if len(answers[item]) > 1 else answers[item][0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return attempt, calls


def test_retry_each_retries_only_failed_items_and_keeps_the_rest():
    busy = ProviderError("busy", provider="p", status=503)
    attempt, calls = _scripted({"a": ["A"], "b": [busy, "B"], "c": [ProviderError("x", provider="p", status=404)],
                                "d": [busy]})
    waits: list[float] = []
    results = retry_each(["a", "b", "c", "d"], attempt, wait=waits.append, uniform=lambda: 0.5)
    assert results[:2] == ["A", "B"]
    assert isinstance(results[2], GaveUp) and "not retried" in results[2].reason
    assert isinstance(results[3], GaveUp) and "still failing after 5 attempts" in results[3].reason
    assert calls == ["a", "b", "c", "d", "b", "d", "d", "d", "d"]
    assert waits == [BACKOFF_BASE_S * 2 ** n for n in range(4)]  # one wait per round, not per item


def test_retry_each_waits_the_longest_retry_after_of_a_round_and_refuses_long_ones():
    attempt, calls = _scripted({
        "a": [ProviderError("slow", provider="p", status=429, retry_after_s=3), "A"],
        "b": [ProviderError("slow", provider="p", status=429, retry_after_s=7), "B"],
        "c": [ProviderError("slow", provider="p", status=429, retry_after_s=999_999)],
    })
    waits: list[float] = []
    results = retry_each(["a", "b", "c"], attempt, wait=waits.append)
    assert results[:2] == ["A", "B"] and waits == [7]
    assert isinstance(results[2], GaveUp) and "run again after" in results[2].reason
    assert calls.count("c") == 1


def test_retry_each_lets_bugs_through():
    attempt, _ = _scripted({"a": [TypeError("a bug")]})
    with pytest.raises(TypeError):
        retry_each(["a"], attempt, wait=lambda s: None)


# ----------------------------------------------------------------------------- stopping


def test_an_interrupt_ends_waits_and_the_retries_behind_them():
    ended: list[float] = []

    def waiting() -> None:
        started = time.monotonic()
        assert wait_unless_interrupted(60) is False
        ended.append(time.monotonic() - started)

    threads = [threading.Thread(target=waiting) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    interrupt_network()
    for thread in threads:
        thread.join(timeout=5)
    assert len(ended) == 3 and max(ended) < 2
    assert wait_unless_interrupted(0.01) is True  # later waits are not affected
    condition = make_retry_condition(wait=lambda seconds: False)  # interrupted while waiting
    assert condition(_Task(), None, Failed(data=ProviderError("busy", provider="p", status=503))) is False
    attempt, _ = _scripted({"a": [ProviderError("busy", provider="p", status=503)]})
    threading.Timer(0.3, interrupt_network).start()
    with pytest.raises(NetworkInterrupted):
        retry_each(["a"], attempt)


@pytest.mark.slow
def test_leaving_a_stage_early_cuts_its_tasks_transfers(prefect_harness, loopback):
    """Ctrl-C in the flow's thread: Prefect's pool joins its threads on the way out, and the
    interruptible pool cuts the trickling download first, so the flow ends within seconds."""
    from prefect import flow, task
    from werkzeug import Response

    from songmix.audio.download import download_audio

    def trickle():
        yield b"ID3" + bytes(9)
        for _ in range(600):
            time.sleep(0.2)
            yield b"\x00"

    loopback.expect_request("/trickle.mp3").respond_with_response(Response(trickle()))
    url = loopback.url_for("/trickle.mp3")
    outcome: list[str] = []

    @task
    def download(cache_dir: str) -> None:
        from songmix.sources.http import make_download_session

        try:
            download_audio(make_download_session(timeout=5, trusted_urls=[url]), url, cache_dir)
        except NetworkInterrupted:
            outcome.append("interrupted")
            raise

    @flow(task_runner=InterruptibleThreadPoolTaskRunner(max_workers=2))
    def stage(cache_dir: str) -> None:
        download.submit(cache_dir)
        time.sleep(1.0)
        raise KeyboardInterrupt  # what Ctrl-C raises in the main thread

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stage(str(Path(tempfile.mkdtemp())))
    assert time.monotonic() - started < 8 and outcome == ["interrupted"]
