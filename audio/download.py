"""Download audio previews into a content-addressed cache, safely.

A download is streamed with a size cap, timeouts and a wall-clock deadline, accepted only when
its first bytes are those of an MP3, WAV, FLAC or OGG file, and written to a temporary file that
is renamed into ``<cache_dir>/<sha256[:2]>/<sha256>.<ext>`` only once complete, so the cache
never holds a partial or foreign file. It goes through a
:class:`~songmix.sources.http.GuardedSession`: the URL and every redirect (at most
:data:`MAX_REDIRECTS`) must pass its :class:`~songmix.sources.addresses.AddressPolicy`, and the
deadline or a stopping run cuts the transfer wherever it is blocked. Every failure is a
:class:`DownloadError` with a short ``reason`` for the warehouse and a ``retryable`` verdict for
the retry policy; a stopping run raises :class:`~songmix.sources.http.NetworkInterrupted`.

Temporary files are named after the process writing them, so :func:`remove_stale_downloads`
can sweep the ones a killed process left behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from songmix.audio.decode import describe_start
from songmix.sources.addresses import AddressRefused
from songmix.sources.http import GuardedSession, retry_after_seconds

#: The audio cache's folder under songmix's data folder (``SONGMIX_DATA_DIR``).
AUDIO_CACHE = "audio"
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read between bytes), seconds
DEFAULT_DEADLINE_S = 120.0  # whole download, headers included: stops a server that trickles bytes
#: Most redirects one download follows.
MAX_REDIRECTS = 5
#: A temporary download file this old is left over whoever wrote it (a download lasts at most
#: its deadline).
STALE_TEMPORARY_AGE_S = 600.0
_CHUNK_BYTES = 64 * 1024
_SNIFF_BYTES = 12  # enough for every signature below
# HTTP statuses worth retrying: the server may answer differently later.
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_TEMPORARY_PREFIX = ".download-"
_TEMPORARY_NAME = re.compile(r"^\.download-(?:(\d+)-)?.*\.tmp$")
AUDIO_EXTENSIONS = ("mp3", "wav", "flac", "ogg")


class DownloadError(Exception):
    """A download that did not produce an audio file in the cache.

    Parameters
    ----------
    reason : str
        Short machine-readable cause: ``"http_<status>"``, ``"timeout"``, ``"connection"``,
        ``"too_large"``, ``"empty"``, ``"not_audio"``, ``"address_refused"`` (the URL's host is
        not public), ``"redirect_refused"`` (a redirect to such a host, or to another scheme),
        ``"too_many_redirects"`` or ``"request_error"``.
    detail : str
        Human-readable explanation.
    retryable : bool
        Whether trying again later may succeed (429, 5xx, timeouts, dropped connections).
    status : int or None
        The HTTP status the server answered, for ``http_<status>``.
    retry_after_s : float or None
        The server's ``Retry-After``, when it sent one.
    """

    def __init__(
        self, reason: str, detail: str, *, retryable: bool, status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class DownloadedAudio:
    """An audio file in the cache.

    Attributes
    ----------
    sha256 : str
        Hex digest of the file's bytes (64 lowercase characters).
    path : Path
        ``<cache_dir>/<sha256[:2]>/<sha256>.<ext>``.
    n_bytes : int
        File size.
    content_type : str
        The server's ``Content-Type`` header ("" when absent); informative only, the bytes
        decide whether it is audio.
    """

    sha256: str
    path: Path
    n_bytes: int
    content_type: str


def describe_failure(error: DownloadError, url: str) -> str:
    """``"reason: detail"`` for the warehouse, with ``url`` reduced to its host.

    Preview URLs can be signed (Deezer's carry a token that expires after ~15 minutes), so the
    stored text names where the download went without keeping the URL itself.
    """
    host = urlsplit(url).hostname or "the server"
    return f"{error.reason}: {error.detail.replace(url, host)}"


def audio_extension(head: bytes) -> str | None:
    """File extension for the leading bytes of an audio file, or None when not audio.

    Recognises ID3-tagged or bare MPEG audio frames (``mp3``), RIFF/WAVE (``wav``), ``fLaC``
    (``flac``) and ``OggS`` (``ogg``).

    Parameters
    ----------
    head : bytes
        The first bytes of the file (at least 12 for WAV).
    """
    if head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        return "mp3"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    return None


def link_into_cache(path: Path, cache_dir: Path) -> Path | None:
    """Give an audio file already on disk its place in ``cache_dir`` by a hard link, so a
    download of the same bytes finds it there and keeps no second copy.

    Returns
    -------
    Path or None
        The cached path; None when ``path`` is not audio or cannot be linked (another file
        system, one without hard links, a concurrent writer): a download then stores its copy.
    """
    with Path(path).open("rb") as stream:
        extension = audio_extension(stream.read(_SNIFF_BYTES))
        stream.seek(0)
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    if extension is None:
        return None
    target = _cache_path(cache_dir, digest, extension)
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
        except OSError:
            return None
    return target


def _cache_path(cache_dir: Path, sha256: str, extension: str) -> Path:
    return Path(cache_dir) / sha256[:2] / f"{sha256}.{extension}"


def download_audio(
    session: GuardedSession,
    url: str,
    cache_dir: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    deadline_s: float = DEFAULT_DEADLINE_S,
    max_redirects: int = MAX_REDIRECTS,
) -> DownloadedAudio:
    """Download one audio file into the content-addressed cache.

    Parameters
    ----------
    session : GuardedSession
        From :func:`songmix.sources.http.make_download_session`: its address policy decides
        which hosts the URL and its redirects may reach; it is not closed.
    url : str
        http(s) URL of the audio.
    cache_dir : Path
        Cache root; created if missing.
    max_bytes : int, keyword-only
        Largest accepted body; larger ones fail with ``"too_large"`` without being kept.
    timeout : (float, float), keyword-only
        Connect timeout and read timeout (longest silence between bytes), in seconds.
    deadline_s : float, keyword-only
        Longest wall-clock time for the whole download, redirects and headers included.
    max_redirects : int, keyword-only
        Redirects followed before giving up with ``"too_many_redirects"``.

    Returns
    -------
    DownloadedAudio
        The cached file; when a file with the same bytes is already cached it is kept and
        returned as is.

    Raises
    ------
    DownloadError
        On any HTTP, network, address, size or content failure; nothing is left in the cache.
        A URL that is not http(s) is an ``"address_refused"``: URLs come from providers' answers.
    NetworkInterrupted
        When the run stops (:func:`songmix.sources.http.interrupt_network`) during the download.
    ValueError
        When the session is not guarded or the limits are not positive.
    """
    _check_arguments(session, url, max_bytes=max_bytes, timeout=timeout, deadline_s=deadline_s,
                     max_redirects=max_redirects)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with session.deadline(deadline_s) as deadline:

        def check_in_time() -> None:  # a cut connection can look like a body that ended
            session.check_open()
            if deadline.expired:
                raise DownloadError("timeout", f"{url} took longer than {deadline_s:g} s", retryable=True)

        try:
            with _open(session, url, timeout=timeout, max_redirects=max_redirects) as response:
                _check_response(response, url, max_bytes=max_bytes)
                content_type = response.headers.get("Content-Type", "")
                return _store(response, cache_dir, url, content_type, max_bytes=max_bytes,
                              check_in_time=check_in_time)
        except AddressRefused as error:
            raise DownloadError("address_refused", f"{url} points at {error}; downloads may reach only "
                                "public addresses and the configured providers", retryable=False) from None
        except requests.RequestException as error:
            check_in_time()
            raise _classify_request_error(url, error) from error


def remove_stale_downloads(cache_dir: Path, *, older_than_s: float = STALE_TEMPORARY_AGE_S) -> int:
    """Delete temporary download files that no live download will finish; return how many.

    A temporary file is stale when the process named in it is gone (a killed run), or when it
    is older than ``older_than_s`` (its process id was reused, or it predates named files).
    Files of this process are left alone unless they are that old: another thread may be
    writing them.
    """
    removed = 0
    now = time.time()
    for path in Path(cache_dir).glob(f"{_TEMPORARY_PREFIX}*.tmp"):
        match = _TEMPORARY_NAME.match(path.name)
        pid = int(match[1]) if match and match[1] else None
        try:
            too_old = now - path.stat().st_mtime > older_than_s
        except FileNotFoundError:
            continue  # its download just finished
        if too_old or (pid is not None and pid != os.getpid() and not _process_exists(pid)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _check_arguments(
    session: GuardedSession, url: str, *, max_bytes: int, timeout: tuple[float, float],
    deadline_s: float, max_redirects: int,
) -> None:
    if not isinstance(session, GuardedSession):
        raise ValueError("download with a session from songmix.sources.http.make_download_session")
    if max_bytes <= 0 or deadline_s <= 0 or any(limit <= 0 for limit in timeout) or max_redirects < 0:
        raise ValueError(
            f"max_bytes, timeout and deadline_s must be positive and max_redirects not negative, got "
            f"max_bytes={max_bytes}, timeout={timeout}, deadline_s={deadline_s}, max_redirects={max_redirects}"
        )


def _open(
    session: GuardedSession, url: str, *, timeout: tuple[float, float], max_redirects: int
) -> requests.Response:
    """The response at the end of ``url``'s redirects, each hop checked against the session's
    address policy before it is requested."""
    current = url
    for hop in range(max_redirects + 1):
        refusal = session.addresses.refusal(current)
        if refusal is not None:
            if hop == 0:
                raise AddressRefused(refusal)
            raise DownloadError("redirect_refused", f"{url} redirected to {refusal}; downloads may "
                                "reach only public http(s) addresses and the configured providers",
                                retryable=False)
        response = session.get(current, stream=True, timeout=timeout, allow_redirects=False)
        if not response.is_redirect:
            return response
        response.close()
        current = urljoin(current, response.headers["Location"])
    raise DownloadError("too_many_redirects", f"{url} redirected more than {max_redirects} times",
                        retryable=False)


def _check_response(response: requests.Response, url: str, *, max_bytes: int) -> None:
    if response.status_code >= 400:
        raise DownloadError(
            f"http_{response.status_code}",
            f"{url} answered {response.status_code} {response.reason}",
            retryable=response.status_code in _RETRYABLE_STATUSES,
            status=response.status_code,
            retry_after_s=retry_after_seconds(response.headers),
        )
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise DownloadError(
            "too_large", f"{url} declares {declared} bytes, over the {max_bytes} byte cap",
            retryable=False,
        )


def _store(
    response: requests.Response,
    cache_dir: Path,
    url: str,
    content_type: str,
    *,
    max_bytes: int,
    check_in_time: Callable[[], None],
) -> DownloadedAudio:
    """Stream the body into a temporary file in ``cache_dir``, then rename it into place."""
    handle, temporary_name = tempfile.mkstemp(
        dir=cache_dir, prefix=f"{_TEMPORARY_PREFIX}{os.getpid()}-", suffix=".tmp")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            digest, n_bytes, head = _copy_body(response, stream, url, content_type, max_bytes=max_bytes,
                                               check_in_time=check_in_time)
        check_in_time()
        extension = _checked_extension(head, n_bytes, url, content_type)
        target = _cache_path(cache_dir, digest, extension)
        target.parent.mkdir(exist_ok=True)
        if target.exists():  # same bytes already cached: keep the first copy
            temporary.unlink()
        else:
            os.replace(temporary, target)
        return DownloadedAudio(digest, target, n_bytes, content_type)
    finally:
        temporary.unlink(missing_ok=True)


def _copy_body(
    response: requests.Response,
    stream,
    url: str,
    content_type: str,
    *,
    max_bytes: int,
    check_in_time: Callable[[], None],
) -> tuple[str, int, bytes]:
    """Copy the body to ``stream``; return its sha256, its size and its first bytes.

    A body that does not start like audio is refused as soon as its first bytes arrive. The
    deadline is checked after every read too, for connections the session cannot cut (proxied).
    """
    digest = hashlib.sha256()
    n_bytes = 0
    head = b""
    for chunk in response.iter_content(_CHUNK_BYTES):
        n_bytes += len(chunk)
        if n_bytes > max_bytes:
            raise DownloadError(
                "too_large", f"{url} sent more than the {max_bytes} byte cap", retryable=False
            )
        check_in_time()
        if len(head) < _SNIFF_BYTES:
            head += chunk[: _SNIFF_BYTES - len(head)]
            if len(head) == _SNIFF_BYTES:
                _checked_extension(head, n_bytes, url, content_type)
        digest.update(chunk)
        stream.write(chunk)
    return digest.hexdigest(), n_bytes, head


def _checked_extension(head: bytes, n_bytes: int, url: str, content_type: str) -> str:
    if n_bytes == 0:
        raise DownloadError("empty", f"{url} sent an empty body", retryable=False)
    extension = audio_extension(head)
    if extension is None:
        raise DownloadError(
            "not_audio",
            f"{url} sent {content_type or 'an untyped body'} that is not MP3/WAV/FLAC/OGG: "
            f"{describe_start(head)}",
            retryable=False,
        )
    return extension


def _classify_request_error(url: str, error: requests.RequestException) -> DownloadError:
    # requests wraps a read timeout hit while streaming the body in a ConnectionError.
    wrapped = error.args[0] if error.args else None
    if isinstance(error, requests.Timeout) or isinstance(wrapped,
                                                         urllib3.exceptions.ReadTimeoutError):
        return DownloadError("timeout", f"{url} timed out: {error}", retryable=True)
    if isinstance(error, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return DownloadError("connection", f"{url} connection failed: {error}", retryable=True)
    return DownloadError("request_error", f"{url} request failed: {error}", retryable=False)


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2/2.5 audio frame header: 11 sync bits, a valid version and layer.

    ADTS (AAC) shares the sync word but has layer bits 00, which libsndfile cannot decode.
    """
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version_bits = (head[1] >> 3) & 0b11
    layer_bits = (head[1] >> 1) & 0b11
    return version_bits != 0b01 and layer_bits != 0b00
