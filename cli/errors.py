"""Failures a user can fix or wait out: reported as one line, without a traceback."""

from __future__ import annotations

import errno
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from songmix.audio.decode import AudioDecodeError
from songmix.cli.predict import PredictionError
from songmix.sources.credentials import MissingCredentialsError
from songmix.warehouse.connection import WarehouseError

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    WarehouseError,
    MissingCredentialsError,
    AudioDecodeError,
    PredictionError,
    FileNotFoundError,
    PermissionError,
)


def os_error_line(error: OSError) -> str:
    """One line for a full disk, an unreadable file, ...: the system's words and the file, or,
    when a failed write names no file, the folders a run writes to."""
    if error.filename:
        return f"{error.strerror or error}: {error.filename}"
    if error.errno == errno.ENOSPC:
        return f"{error.strerror}; free space where --db, --out and $SONGMIX_DATA_DIR are"
    return str(error.strerror or error)


def network_failure_line(error: BaseException) -> str | None:
    """One line for a provider that could not be reached or would not answer, or None.

    Names the host, what it did, and what to do: when to run again (a ``Retry-After`` beyond
    what a run waits), or which setting or credential to check. Understands what the clients
    raise -- :class:`~songmix.sources.http.ProviderError`, spotipy's exceptions (the token
    endpoint's wrap the HTTP error they were raised from) and ``requests``' -- anywhere in the
    exception's chain.
    """
    from songmix.sources.http import exception_chain

    for link in exception_chain(error):
        line = _describe(link, outermost=error)
        if line is not None:
            return line
    return None


def _describe(link: BaseException, *, outermost: BaseException) -> str | None:
    import requests
    from spotipy.exceptions import SpotifyException, SpotifyOauthError

    from songmix.sources.addresses import AddressRefused
    from songmix.sources.http import ProviderError, retry_after_seconds

    if isinstance(link, ProviderError):  # its status may stand for an error inside a 200 answer
        url = _configured_urls().get(link.provider, "")
        return _http_line(url, link.status, link.retry_after_s, f"({link.provider}): {link.message}")
    if isinstance(link, SpotifyException):
        url, _, message = str(link.msg).partition(":\n")
        return _http_line(url, link.http_status, retry_after_seconds(link.headers),
                          _answered(link.http_status, message.strip()))
    if isinstance(link, requests.HTTPError) and link.response is not None:
        response = link.response
        if isinstance(outermost, SpotifyOauthError) and response.status_code in (400, 401):
            return (f"{_host(response.url)} refused the Spotify credentials ({outermost.error}: "
                    f"{outermost.error_description}): check SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET")
        return _http_line(response.url, response.status_code, retry_after_seconds(response.headers),
                          _answered(response.status_code, response.reason or ""))
    if isinstance(link, AddressRefused):
        return f"refused to connect to {link}: songmix reaches only public addresses and the configured providers"
    if isinstance(link, requests.RequestException):
        url = link.request.url if link.request is not None else ""
        what = ("did not answer in time" if isinstance(link, requests.Timeout)
                else "could not be reached (connection refused)" if "refused" in str(link).lower()
                else "could not be reached (its name does not resolve)" if "resolve" in str(link).lower()
                else "could not be reached (the connection failed)")
        return f"{_host(url)} {what}, through every retry: check the network{_setting_hint(url)}"
    return None


def _answered(status: int, message: str) -> str:
    return f"answered HTTP {status}" + (f" ({message})" if message and message != "None" else "")


def _http_line(url: str, status: int | None, retry_after_s: float | None, what: str) -> str:
    """The line for a provider at ``url`` that did ``what`` (status ``status``) to every retry."""
    from songmix.sources.http import MAX_RETRY_AFTER_S

    host = _host(url)
    if status == 429 and retry_after_s is not None and retry_after_s > MAX_RETRY_AFTER_S:
        retry_at = datetime.now(timezone.utc) + timedelta(seconds=retry_after_s)
        return (f"{host} is rate limiting songmix for {retry_after_s:g} s (HTTP 429 Retry-After; a run "
                f"waits at most {MAX_RETRY_AFTER_S:g} s): run again after {retry_at:%Y-%m-%d %H:%M} UTC")
    if status == 429:
        return f"{host} kept answering HTTP 429 (rate limited) through every retry: run again in a few minutes"
    if status is None or status >= 500 or status == 408:
        return (f"{host} {what}, through every retry: the service is failing or not the one songmix "
                f"expects; run again later{_setting_hint(url)}")
    return f"{host} refused the request ({what}): not retried{_setting_hint(url)}"


def _configured_urls() -> dict[str, str]:
    """Provider name -> configured base URL (what each client talks to)."""
    from songmix.sources.fallbacks import FallbackEndpoints
    from songmix.sources.spotify import SpotifyEndpoints

    fallbacks = FallbackEndpoints.from_env()
    return {"spotify": SpotifyEndpoints.from_env().api_url, "reccobeats": fallbacks.reccobeats_url,
            "deezer": fallbacks.deezer_url}


def _setting_hint(url: str) -> str:
    """``", or SETTING"`` naming the variable whose base URL ``url`` is under, if any."""
    from songmix.sources.fallbacks import DEEZER_URL_ENV, RECCOBEATS_URL_ENV, FallbackEndpoints
    from songmix.sources.spotify import ACCOUNTS_URL_ENV, API_URL_ENV, SpotifyEndpoints

    spotify, fallbacks = SpotifyEndpoints.from_env(), FallbackEndpoints.from_env()
    for setting, base in ((ACCOUNTS_URL_ENV, spotify.accounts_url), (API_URL_ENV, spotify.api_url),
                          (RECCOBEATS_URL_ENV, fallbacks.reccobeats_url), (DEEZER_URL_ENV, fallbacks.deezer_url)):
        if url.startswith(base + "/") or url == base:
            return f", or {setting} (now {base})"
    return ""


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] if parts.netloc else "the provider"
