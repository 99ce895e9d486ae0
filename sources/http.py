"""The one retry policy for every HTTP provider (Spotify, ReccoBeats, Deezer), and its plumbing.

Who retries what
----------------
Prefect owns retries; nothing below it retries silently. :func:`make_session` returns a
``requests`` session without urllib3 retries, so a 429 or a 5xx surfaces at once as an
exception. :func:`classify_http_error` turns that exception into a :class:`RetryDecision`:

* **429** -- retry after the ``Retry-After`` the server sent (seconds, or an HTTP date),
  provided it is at most :data:`MAX_RETRY_AFTER_S`; a longer wait is not retried, and the
  reason says when to try again. A 429 without ``Retry-After`` falls back to the backoff.
* **5xx, 408, timeouts, connection errors, truncated or malformed bodies** -- retry after an
  exponential backoff with jitter (:func:`backoff_s`: about 2, 4, 8, 16 s).
* **every other 4xx** -- never retried: asking again gets the same answer.

:func:`retry_condition` is the ``retry_condition_fn`` for Prefect tasks: it applies the policy
and waits, before Prefect's retry, exactly what the policy says -- the ``Retry-After`` of a
429, the backoff otherwise. The tasks set Prefect's own ``retry_delay_seconds`` to 0, so a
429 costs its ``Retry-After`` and no backoff on top. Prefect only asks it while retries
remain, so a wait is never wasted.

Providers' request rates are respected up front with :class:`RateLimiter`.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from spotipy.exceptions import SpotifyException

logger = logging.getLogger(__name__)

#: Longest ``Retry-After`` (seconds) a task waits in-process; longer ones fail the task.
MAX_RETRY_AFTER_S: float = 120.0

#: First backoff (seconds) after a retryable failure without ``Retry-After``; doubles per attempt.
BACKOFF_BASE_S: float = 2.0
#: Each backoff is drawn uniformly within this fraction of its nominal value, so tasks that
#: failed together do not all retry at the same instant.
BACKOFF_JITTER: float = 0.5

#: Sent with every request so providers can tell who is calling.
USER_AGENT = "songmix (research pipeline; python-requests)"

# Failures of the transport itself: the request may never have reached the server, or its
# answer was cut short. Asking again is the right move.
_TRANSIENT_TRANSPORT_ERRORS = (
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)


class ProviderError(Exception):
    """A provider answered, but not with what we asked for.

    Parameters
    ----------
    message : str
        What went wrong, for a person. Never contains credentials or signed URLs.
    provider : str
        ``"spotify"``, ``"reccobeats"`` or ``"deezer"``.
    status : int or None
        The HTTP status, or, for errors a provider reports inside a 200 body, the status that
        means the same (quota exceeded -> 429, busy -> 503, malformed body -> 502).
    retry_after_s : float or None
        How long the provider asked us to wait, when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.provider}: {self.message}{status}"


@dataclass(frozen=True)
class RetryDecision:
    """What the retry policy says about one failure.

    Attributes
    ----------
    retryable : bool
        Whether asking again can help.
    wait_s : float or None
        Seconds the provider asked us to wait (from ``Retry-After``); ``None`` means the
        retry waits :func:`backoff_s`. Set even when the wait is over the cap, for the message.
    reason : str
        One line for logs and the ``failed_items`` table.
    """

    retryable: bool
    wait_s: float | None
    reason: str


def classify_http_error(
    exc: BaseException, *, max_retry_after_s: float = MAX_RETRY_AFTER_S
) -> RetryDecision:
    """Decide whether a failed request is worth retrying, and after how long.

    Understands spotipy's ``SpotifyException`` (``http_status``, ``headers``), ``requests``
    exceptions (``HTTPError`` with its response, ``Timeout``, ``ConnectionError``) and
    :class:`ProviderError`. Exceptions that wrap one of those -- spotipy's
    ``SpotifyOauthError`` is raised while handling the token endpoint's ``HTTPError`` -- are
    classified by the first understood exception in their ``__cause__``/``__context__`` chain.

    Parameters
    ----------
    exc : BaseException
        The failure.
    max_retry_after_s : float
        Longest ``Retry-After`` still retried.

    Returns
    -------
    RetryDecision
        Anything not understood (a bug, a ``ValueError`` from validation) is not retryable.
    """
    for link in _exception_chain(exc):
        decision = _classify_one(link, max_retry_after_s=max_retry_after_s)
        if decision is not None:
            return decision
    return RetryDecision(False, None, f"{type(exc).__name__} is not a provider error; not retried")


def backoff_s(attempt: int, *, uniform: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...) when the server named none.

    ``BACKOFF_BASE_S * 2 ** (attempt - 1)``, scaled by a factor drawn uniformly from
    ``[1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER]`` (``uniform`` returns values in [0, 1)).
    """
    nominal = BACKOFF_BASE_S * 2.0 ** (max(attempt, 1) - 1)
    return nominal * (1.0 + BACKOFF_JITTER * (2.0 * uniform() - 1.0))


def make_retry_condition(
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_retry_after_s: float = MAX_RETRY_AFTER_S,
    uniform: Callable[[], float] = random.random,
) -> Callable[[Any, Any, Any], bool]:
    """Build a Prefect ``retry_condition_fn`` applying :func:`classify_http_error`.

    Parameters
    ----------
    sleep : callable
        Waits before the retry (injectable for tests).
    max_retry_after_s : float
        Longest ``Retry-After`` still retried.
    uniform : callable
        Source of the backoff's jitter (injectable for tests).

    Returns
    -------
    callable
        ``(task, task_run, state) -> bool``, the signature Prefect 3 calls. It sleeps the
        ``Retry-After`` of a 429, or :func:`backoff_s` of the task run's attempt number for
        other retryable failures, then returns True.
    """

    def retry_condition(task: Any, task_run: Any, state: Any) -> bool:
        # `_sync=True`: the task engine may call this from an event loop, where Prefect's
        # dispatcher would otherwise hand back a coroutine instead of the exception.
        exc = state.result(raise_on_failure=False, _sync=True)
        if not isinstance(exc, BaseException):
            return False
        decision = classify_http_error(exc, max_retry_after_s=max_retry_after_s)
        task_name = getattr(task, "name", "task")
        if not decision.retryable:
            logger.warning("%s: not retrying: %s", task_name, decision.reason)
            return False
        if decision.wait_s is not None:
            wait_s, why = decision.wait_s, "Retry-After"
        else:
            wait_s, why = backoff_s(getattr(task_run, "run_count", 1), uniform=uniform), "backoff"
        logger.info("%s: %s; waiting %.1f s before the retry (%s)", task_name, decision.reason, wait_s, why)
        sleep(wait_s)
        return True

    return retry_condition


#: The retry condition for every network task: ``@task(retry_condition_fn=retry_condition)``.
retry_condition = make_retry_condition()


class _TimeoutSession(requests.Session):
    """A session that applies a default timeout to every request that names none."""

    __attrs__ = [*requests.Session.__attrs__, "default_timeout"]

    def __init__(self, default_timeout: float) -> None:
        super().__init__()
        self.default_timeout = default_timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def make_session(*, timeout: float) -> requests.Session:
    """A ``requests`` session with a timeout on every request and no silent retries.

    Parameters
    ----------
    timeout : float
        Seconds to wait for a connection and for each read, used when a call names none
        (spotipy's token request names none unless told).

    Returns
    -------
    requests.Session
        With ``max_retries=0`` adapters: a 429, a 5xx or a timeout raises at once, for Prefect
        to retry under :func:`retry_condition`.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    session = _TimeoutSession(default_timeout=timeout)
    adapter = HTTPAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def check_base_url(url: str, *, name: str) -> str:
    """Validate a configured base URL and drop its trailing slash.

    Parameters
    ----------
    url : str
        E.g. ``https://api.deezer.com`` or ``http://127.0.0.1:8080/v1``.
    name : str
        What the URL is for (the setting's name), for the error message.
    """
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"{name} must be an http(s) URL such as https://api.example.com/v1, got {url!r}")
    return url.rstrip("/")


def provider_error_from_response(response: requests.Response, *, provider: str) -> ProviderError:
    """Describe a non-2xx response as a :class:`ProviderError` carrying its status.

    Only the status, the path and the start of the body are kept: query strings can carry
    signed tokens, so they stay out of the message.
    """
    path = urlsplit(response.url).path if response.url else "?"
    snippet = response.text[:200].strip() if response.text else ""
    return ProviderError(
        f"{response.request.method if response.request else 'request'} {path} failed: {snippet or response.reason}",
        provider=provider,
        status=response.status_code,
        retry_after_s=retry_after_seconds(response.headers),
    )


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: datetime | None = None) -> float | None:
    """Read ``Retry-After`` (delta-seconds or an HTTP date) from response headers.

    Parameters
    ----------
    headers : mapping or None
        Response headers; looked up case-insensitively.
    now : datetime, optional
        Current time for HTTP-date values (defaults to the clock).

    Returns
    -------
    float or None
        Seconds to wait, never negative; ``None`` when absent or unreadable.
    """
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class RateLimiter:
    """Thread-safe limit of ``max_calls`` per ``period_s`` (Deezer: 50 per 5 s).

    A sliding window rather than a refilling token bucket: a bucket of 50 tokens refilled at
    10 per second lets 100 calls through in the first 5 s, which a provider counting per
    window rejects. Here no window of ``period_s`` ever holds more than ``max_calls`` starts.

    Parameters
    ----------
    max_calls : int
        Calls allowed in any window of ``period_s``.
    period_s : float
        Window length in seconds.
    clock : callable, optional
        Monotonic clock in seconds (injectable for tests).
    sleep : callable, optional
        Waits a number of seconds (injectable for tests).
    """

    def __init__(
        self,
        max_calls: int,
        period_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_calls < 1 or not period_s > 0:
            raise ValueError(
                f"a rate limit needs max_calls >= 1 and period_s > 0, got {max_calls} per {period_s} s"
            )
        self.max_calls = max_calls
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # Start times granted to the last `max_calls` callers, in order (some in the future).
        self._granted: deque[float] = deque(maxlen=max_calls)

    def acquire(self) -> float:
        """Wait until a call may start; return the seconds waited."""
        with self._lock:
            now = self._clock()
            start = now
            if len(self._granted) == self.max_calls:
                start = max(now, self._granted[0] + self.period_s)
            # Reserve the slot before sleeping, so waiting threads queue up in order.
            self._granted.append(start)
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return wait


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _classify_one(exc: BaseException, *, max_retry_after_s: float) -> RetryDecision | None:
    if isinstance(exc, ProviderError):
        if exc.status is None:
            return RetryDecision(False, None, str(exc))
        return _classify_status(exc.status, exc.retry_after_s, str(exc), max_retry_after_s)
    if isinstance(exc, SpotifyException):
        what = f"spotify: HTTP {exc.http_status}: {exc.msg}"
        return _classify_status(exc.http_status, retry_after_seconds(exc.headers), what, max_retry_after_s)
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        response = exc.response
        what = f"HTTP {response.status_code} from {urlsplit(response.url).path}"
        return _classify_status(
            response.status_code, retry_after_seconds(response.headers), what, max_retry_after_s
        )
    if isinstance(exc, _TRANSIENT_TRANSPORT_ERRORS):
        return RetryDecision(True, None, f"{type(exc).__name__}: transient network failure, backing off")
    return None


def _classify_status(
    status: int, retry_after_s: float | None, what: str, max_retry_after_s: float
) -> RetryDecision:
    if status == 429:
        if retry_after_s is None:
            return RetryDecision(True, None, f"{what}: rate limited without Retry-After, backing off")
        if retry_after_s <= max_retry_after_s:
            return RetryDecision(True, retry_after_s, f"{what}: rate limited, Retry-After {retry_after_s:g} s")
        retry_at = datetime.now(timezone.utc) + timedelta(seconds=retry_after_s)
        return RetryDecision(
            False,
            retry_after_s,
            f"{what}: rate limited for {retry_after_s:g} s, beyond the {max_retry_after_s:g} s this "
            f"run waits; run again after {retry_at:%Y-%m-%d %H:%M:%S} UTC",
        )
    if status >= 500 or status == 408:
        return RetryDecision(True, None, f"{what}: server-side failure, backing off")
    return RetryDecision(False, None, f"{what}: the request itself was refused; not retried")
