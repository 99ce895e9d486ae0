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

A chunk of per-item requests (a task's previews) retries item by item instead:
:func:`retry_each` applies the same policy in rounds, retrying only the items that failed
retryably, so one slow item never costs its neighbours their answers.

Providers' request rates are respected up front with :class:`RateLimiter`.

Downloads go through a :class:`GuardedSession` (:func:`make_download_session`): it connects only
where :class:`~songmix.sources.addresses.AddressPolicy` allows, and its connections can be cut from
another thread -- at a download's wall-clock deadline, or when the run stops:
:func:`interrupt_network` (called by :class:`InterruptibleThreadPoolTaskRunner` when a stage is
left by Ctrl-C or SIGTERM) cuts every open transfer and ends every retry wait within moments.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import re
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.connection
from prefect.task_runners import ThreadPoolTaskRunner
from requests.adapters import HTTPAdapter
from spotipy.exceptions import SpotifyException
from urllib3.poolmanager import PoolManager

from songmix.sources.addresses import AddressPolicy, AddressRefused

logger = logging.getLogger(__name__)

#: Longest ``Retry-After`` (seconds) a task waits in-process; longer ones fail the task.
MAX_RETRY_AFTER_S: float = 120.0

#: Retries after a retryable failure (5 attempts in all), for tasks and for :func:`retry_each`.
RETRIES: int = 4

#: First backoff (seconds) after a retryable failure without ``Retry-After``; doubles per attempt.
BACKOFF_BASE_S: float = 2.0
#: Each backoff is drawn uniformly within this fraction of its nominal value, so tasks that
#: failed together do not all retry at the same instant.
BACKOFF_JITTER: float = 0.5

#: Longest one API request may take (its answers are a few KB): a server trickling its answer
#: a byte at a time never trips the per-read timeout.
API_REQUEST_DEADLINE_S: float = 60.0

#: Sent with every request so providers can tell who is calling.
USER_AGENT = "songmix (research pipeline; python-requests)"

# Failures of the transport itself: the request may never have reached the server, or its
# answer was cut short. Asking again is the right move.
_TRANSIENT_TRANSPORT_ERRORS = (
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)


T = TypeVar("T")
R = TypeVar("R")


class NetworkInterrupted(Exception):
    """The run is stopping (Ctrl-C, SIGTERM): a transfer or a retry wait was cut short."""


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


#: What :func:`retry_each` treats as a provider's answer (classified by the policy); anything
#: else is a bug and propagates.
PROVIDER_ERRORS: tuple[type[BaseException], ...] = (
    ProviderError, SpotifyException, requests.RequestException, AddressRefused)


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
    for link in exception_chain(exc):
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
    wait: Callable[[float], bool] | None = None,
    max_retry_after_s: float = MAX_RETRY_AFTER_S,
    uniform: Callable[[], float] = random.random,
) -> Callable[[Any, Any, Any], bool]:
    """Build a Prefect ``retry_condition_fn`` applying :func:`classify_http_error`.

    Parameters
    ----------
    wait : callable, optional
        Waits before the retry; returns False when the wait was interrupted, and then there is
        no retry (default :func:`wait_unless_interrupted`; injectable for tests).
    max_retry_after_s : float
        Longest ``Retry-After`` still retried.
    uniform : callable
        Source of the backoff's jitter (injectable for tests).

    Returns
    -------
    callable
        ``(task, task_run, state) -> bool``, the signature Prefect 3 calls. It waits the
        ``Retry-After`` of a 429, or :func:`backoff_s` of the task run's attempt number for
        other retryable failures, then returns True (False when the run is stopping).
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
        if not (wait or wait_unless_interrupted)(wait_s):
            logger.warning("%s: not retrying: the run is stopping", task_name)
            return False
        return True

    return retry_condition


#: The retry condition for every network task: ``@task(retry_condition_fn=retry_condition)``.
retry_condition = make_retry_condition()


@dataclass(frozen=True)
class GaveUp:
    """An item :func:`retry_each` stopped trying.

    Attributes
    ----------
    reason : str
        One line: what the provider answered last and, for a long ``Retry-After``, when to try
        again; for a failure that outlasted the retries, how many attempts it had.
    """

    reason: str


def retry_each(
    items: Sequence[T],
    attempt: Callable[[T], R],
    *,
    retries: int = RETRIES,
    wait: Callable[[float], None] | None = None,
    max_retry_after_s: float = MAX_RETRY_AFTER_S,
    uniform: Callable[[], float] = random.random,
) -> list[R | GaveUp]:
    """``attempt`` each item, retrying under the policy only the items that failed retryably.

    Rounds: every pending item is attempted once; the ones whose failure is retryable
    (:func:`classify_http_error`) wait together -- the longest ``Retry-After`` among them, else
    :func:`backoff_s` of the round -- and are attempted again, up to ``retries`` times. Results
    of items that succeeded are kept whatever happens to the others.

    Parameters
    ----------
    items : sequence
    attempt : callable
        One try for one item; raises one of :data:`PROVIDER_ERRORS` when the provider failed.
        Any other exception propagates at once.
    retries : int
        Rounds after the first.
    wait : callable, optional
        Waits between rounds (default: :func:`wait_unless_interrupted`, raising
        :class:`NetworkInterrupted` when the run stops).
    max_retry_after_s : float
        Longest ``Retry-After`` still waited for; an item asked to wait longer gives up at once,
        saying when to try again.
    uniform : callable
        Source of the backoff's jitter.

    Returns
    -------
    list
        Per item, in order: what ``attempt`` returned, or :class:`GaveUp`.
    """
    results: list[R | GaveUp | None] = [None] * len(items)
    pending = list(range(len(items)))
    for round_number in range(1, retries + 2):
        retry: list[int] = []
        waits: list[float] = []
        for index in pending:
            try:
                results[index] = attempt(items[index])
            except PROVIDER_ERRORS as error:
                decision = classify_http_error(error, max_retry_after_s=max_retry_after_s)
                if not decision.retryable:
                    results[index] = GaveUp(decision.reason)
                elif round_number > retries:
                    results[index] = GaveUp(f"{decision.reason}; still failing after {round_number} attempts")
                else:
                    retry.append(index)
                    waits.append(decision.wait_s if decision.wait_s is not None
                                 else backoff_s(round_number, uniform=uniform))
        if not retry:
            break
        logger.info("%d of %d items failed retryably; waiting %.1f s before retrying them",
                    len(retry), len(items), max(waits))
        (wait or _wait_or_stop)(max(waits))
        pending = retry
    return results  # type: ignore[return-value]  # every slot is filled by the last round


# -- stopping: Ctrl-C and SIGTERM cut transfers and waits ----------------------------------

_interrupts = threading.Condition()
_interrupt_count = 0
_live_sessions: weakref.WeakSet[GuardedSession] = weakref.WeakSet()


def interrupt_network() -> None:
    """Cut every open transfer of every :class:`GuardedSession` in this process and end every
    wait of :func:`wait_unless_interrupted` now. Later requests on those sessions raise
    :class:`NetworkInterrupted`; sessions made afterwards work normally."""
    global _interrupt_count
    with _interrupts:
        _interrupt_count += 1
        _interrupts.notify_all()
        sessions = list(_live_sessions)
    for session in sessions:
        session.abort()


def wait_unless_interrupted(seconds: float) -> bool:
    """Wait ``seconds``; False as soon as :func:`interrupt_network` is called meanwhile."""
    with _interrupts:
        started_at = _interrupt_count
        return not _interrupts.wait_for(lambda: _interrupt_count != started_at, timeout=max(seconds, 0.0))


def _wait_or_stop(seconds: float) -> None:
    if not wait_unless_interrupted(seconds):
        raise NetworkInterrupted("the run is stopping; the wait before a retry was cut short")


class InterruptibleThreadPoolTaskRunner(ThreadPoolTaskRunner):
    """Prefect's thread pool for network tasks, whose exit on an exception (Ctrl-C, SIGTERM,
    a stage that failed) first calls :func:`interrupt_network`.

    Prefect's pool joins its threads on exit: without this, a stopping run waits for a
    trickling download or a two-minute ``Retry-After`` to end by itself.
    """

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is not None:
            interrupt_network()
        super().__exit__(exc_type, exc_value, traceback)


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


class GuardedSession(_TimeoutSession):
    """A session for downloads: connections only where ``addresses`` allows, and cut from
    another thread at a deadline (:meth:`deadline`) or when the run stops (:meth:`abort`).

    Build it with :func:`make_download_session`. Each connection's peer address is checked the
    moment it connects (so a DNS name that resolved to a public address for the check and to a
    local one for the connection is caught too) and its socket is kept, so that a blocked read
    -- a server trickling a byte every few seconds never trips a read timeout -- can be ended by
    shutting the socket down. Through an HTTP(S) proxy (``HTTPS_PROXY``) requests uses its own
    proxy pools: the URLs are still checked (:meth:`AddressPolicy.refusal`), but the peer check
    and the cut do not apply: a download then ends at its first read past the deadline.

    Attributes
    ----------
    addresses : AddressPolicy
    """

    def __init__(self, default_timeout: float, addresses: AddressPolicy, *,
                 request_deadline_s: float = API_REQUEST_DEADLINE_S) -> None:
        super().__init__(default_timeout=default_timeout)
        self.addresses = addresses
        self.request_deadline_s = request_deadline_s
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._sockets_lock = threading.Lock()
        self._aborted = threading.Event()
        adapter = _GuardedAdapter(self)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.headers["User-Agent"] = USER_AGENT
        with _interrupts:
            _live_sessions.add(self)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """A request that ends by :attr:`request_deadline_s` (a streamed body is read after it
        returns, under the reader's own deadline: :meth:`deadline`)."""
        with self.deadline(self.request_deadline_s) as deadline:
            try:
                return super().request(method, url, *args, **kwargs)
            except requests.RequestException as error:  # a cut socket: refused, reset, cut short
                if deadline.expired:
                    raise requests.Timeout(f"{urlsplit(str(url)).netloc} did not answer within "
                                           f"{self.request_deadline_s:g} s") from error
                raise

    @property
    def aborted(self) -> bool:
        """True once :meth:`abort` ran: every later request raises :class:`NetworkInterrupted`."""
        return self._aborted.is_set()

    def abort(self) -> None:
        """Cut every connection now and refuse further requests."""
        self._aborted.set()
        self._cut()

    def check_open(self) -> None:
        """Raise :class:`NetworkInterrupted` when the session was aborted."""
        if self.aborted:
            raise NetworkInterrupted("the run is stopping; the transfer was cut")

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[_Deadline]:
        """Cut this session's connections ``seconds`` after entering the block, if still in it.

        Yields a :class:`_Deadline` whose ``expired`` says whether it fired: a request that then
        fails, or a body that ends early, ran out of time.
        """
        deadline = _Deadline()

        def expire() -> None:
            deadline.expired = True
            self._cut()

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            yield deadline
        finally:
            timer.cancel()

    def _connected(self, host: str, port: int, sock: socket.socket) -> None:
        """Called by every new direct connection: keep its socket, check where it landed."""
        self._keep(sock)
        if self.aborted:
            raise NetworkInterrupted("the run is stopping; the transfer was cut")
        refusal = self.addresses.peer_refusal(host, port, sock.getpeername()[0])
        if refusal is not None:
            raise AddressRefused(refusal)

    def _keep(self, sock: socket.socket) -> None:
        with self._sockets_lock:
            self._sockets.add(sock)

    def _cut(self) -> None:
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@dataclass
class _Deadline:
    expired: bool = False


def make_download_session(*, timeout: float, trusted_urls: Iterable[str]) -> GuardedSession:
    """A :class:`GuardedSession` (timeouts, no silent retries) that may connect to public
    addresses and to the origins of ``trusted_urls`` (the configured providers)."""
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return GuardedSession(timeout, AddressPolicy(trusted_urls))


class _ApiSession(GuardedSession):
    """A session for a provider's API: a :class:`GuardedSession` whose requests follow
    redirects, each checked like a download's (an API's answer names the next host no more
    trustworthily than a preview's does). A stop cuts its transfers in flight, and it stays
    usable for the next run in the process (clients are cached)."""

    def abort(self) -> None:
        self._cut()

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is not None:
            refusal = self.addresses.refusal(urljoin(resp.url, target))
            if refusal is not None:
                resp.close()
                raise AddressRefused(f"{refusal}, where {urlsplit(resp.url).netloc} redirected")
        return target


def make_session(*, timeout: float, trusted_urls: Iterable[str] = (),
                 deadline_s: float = API_REQUEST_DEADLINE_S) -> requests.Session:
    """A ``requests`` session for a provider's API: a timeout on every request, a wall-clock
    deadline on each, no silent retries, and connections (redirects included) only to public
    addresses or the origins of ``trusted_urls``.

    Parameters
    ----------
    timeout : float
        Seconds to wait for a connection and for each read, used when a call names none
        (spotipy's token request names none unless told).
    trusted_urls : iterable of str
        The configured providers' base URLs (which may be local: the demo service, a fake).
    deadline_s : float
        Longest time one request may take, redirects and a trickling body included.

    Returns
    -------
    requests.Session
        With ``max_retries=0`` adapters: a 429, a 5xx or a timeout raises at once, for Prefect
        to retry under :func:`retry_condition`; a request past its deadline raises
        ``requests.Timeout``. A redirect elsewhere raises
        :class:`~songmix.sources.addresses.AddressRefused`.
    """
    if not (timeout > 0 and deadline_s > 0):
        raise ValueError(f"timeout and deadline_s must be positive numbers of seconds, got "
                         f"timeout={timeout!r}, deadline_s={deadline_s!r}")
    return _ApiSession(timeout, AddressPolicy(trusted_urls), request_deadline_s=deadline_s)


class _GuardedAdapter(HTTPAdapter):
    """Makes its pools' connections report to the session (see :class:`GuardedSession`)."""

    def __init__(self, session: GuardedSession) -> None:
        self._session = session
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        self.poolmanager = _GuardedPoolManager(
            self._session, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self._session.check_open()
        return super().send(request, **kwargs)


class _GuardedPoolManager(PoolManager):
    def __init__(self, session: GuardedSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._session = session

    def _new_pool(self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None):
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.ConnectionCls = _GuardedHTTPSConnection if scheme == "https" else _GuardedHTTPConnection
        pool.conn_kw = {**pool.conn_kw, "session": self._session}
        return pool


class _GuardedConnection:
    """Mixin for urllib3 connections: checks where each new socket landed before any byte is
    sent, and hands the session every socket to cut (for HTTPS, also the TLS one wrapping it:
    wrapping detaches the plain socket)."""

    def __init__(self, *args: Any, session: GuardedSession, **kwargs: Any) -> None:
        self._guarding_session = session
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        try:
            self._guarding_session._connected(self.host, self.port, sock)
        except BaseException:
            sock.close()
            raise
        return sock

    def connect(self) -> None:
        super().connect()
        self._guarding_session._keep(self.sock)


class _GuardedHTTPConnection(_GuardedConnection, urllib3.connection.HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnection, urllib3.connection.HTTPSConnection):
    pass


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


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it was raised from or while handling, and so on (each once)."""
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
    if isinstance(exc, AddressRefused):
        return RetryDecision(False, None, f"refused: {exc}; requests may reach only public addresses "
                             "and the configured providers")
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
