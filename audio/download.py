"""Download audio previews into a content-addressed cache, safely.

A download is streamed with a size cap and timeouts, accepted only when its first bytes are
those of an MP3, WAV, FLAC or OGG file, and written to a temporary file that is renamed into
``<cache_dir>/<sha256[:2]>/<sha256>.<ext>`` only once complete, so the cache never holds a
partial or foreign file. Every failure is a :class:`DownloadError` with a short ``reason`` for
the warehouse and a ``retryable`` verdict for the task's retry policy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read between bytes), seconds
DEFAULT_DEADLINE_S = 120.0  # whole download; stops a server that trickles bytes forever
_CHUNK_BYTES = 64 * 1024
_SNIFF_BYTES = 12  # enough for every signature below
# HTTP statuses worth retrying: the server may answer differently later.
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
AUDIO_EXTENSIONS = ("mp3", "wav", "flac", "ogg")


class DownloadError(Exception):
    """A download that did not produce an audio file in the cache.

    Parameters
    ----------
    reason : str
        Short machine-readable cause: ``"http_<status>"``, ``"timeout"``, ``"connection"``,
        ``"too_large"``, ``"empty"``, ``"not_audio"`` or ``"request_error"``.
    detail : str
        Human-readable explanation.
    retryable : bool
        Whether trying again later may succeed (429, 5xx, timeouts, dropped connections).
    """

    def __init__(self, reason: str, detail: str, *, retryable: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


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


def is_retryable(error: BaseException) -> bool:
    """True for a :class:`DownloadError` worth retrying; usable in a Prefect retry condition."""
    return isinstance(error, DownloadError) and error.retryable


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


def cached_path(cache_dir: Path, sha256: str) -> Path | None:
    """The cached file with this digest, whatever its extension, or None."""
    if len(sha256) != 64 or any(char not in "0123456789abcdef" for char in sha256):
        raise ValueError(f"sha256 must be 64 lowercase hex characters, got {sha256!r}")
    for extension in AUDIO_EXTENSIONS:
        candidate = Path(cache_dir) / sha256[:2] / f"{sha256}.{extension}"
        if candidate.is_file():
            return candidate
    return None


def download_audio(
    session: requests.Session,
    url: str,
    cache_dir: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> DownloadedAudio:
    """Download one audio file into the content-addressed cache.

    Parameters
    ----------
    session : requests.Session
        Session to use (connection pooling, headers); it is not closed.
    url : str
        http(s) URL of the audio.
    cache_dir : Path
        Cache root; created if missing.
    max_bytes : int, keyword-only
        Largest accepted body; larger ones fail with ``"too_large"`` without being kept.
    timeout : (float, float), keyword-only
        Connect timeout and read timeout (longest silence between bytes), in seconds.
    deadline_s : float, keyword-only
        Longest time for the whole body, in seconds.

    Returns
    -------
    DownloadedAudio
        The cached file; when a file with the same bytes is already cached it is kept and
        returned as is.

    Raises
    ------
    DownloadError
        On any HTTP, network, size or content failure; nothing is left in the cache.
    ValueError
        When the URL is not http(s) or the limits are not positive.
    """
    _check_arguments(url, max_bytes=max_bytes, timeout=timeout, deadline_s=deadline_s)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        with session.get(url, stream=True, timeout=timeout) as response:
            _check_response(response, url, max_bytes=max_bytes)
            content_type = response.headers.get("Content-Type", "")
            return _store(response, cache_dir, url, content_type, max_bytes=max_bytes,
                          deadline_s=deadline_s)
    except requests.RequestException as error:
        raise _classify_request_error(url, error) from error


def _check_arguments(
    url: str, *, max_bytes: int, timeout: tuple[float, float], deadline_s: float
) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"url must be an http(s) URL, got {url!r}")
    if max_bytes <= 0 or deadline_s <= 0 or any(limit <= 0 for limit in timeout):
        raise ValueError(
            f"max_bytes, timeout and deadline_s must be positive, got max_bytes={max_bytes}, "
            f"timeout={timeout}, deadline_s={deadline_s}"
        )


def _check_response(response: requests.Response, url: str, *, max_bytes: int) -> None:
    if response.status_code >= 400:
        raise DownloadError(
            f"http_{response.status_code}",
            f"{url} answered {response.status_code} {response.reason}",
            retryable=response.status_code in _RETRYABLE_STATUSES,
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
    deadline_s: float,
) -> DownloadedAudio:
    """Stream the body into a temporary file in ``cache_dir``, then rename it into place."""
    handle, temporary_name = tempfile.mkstemp(dir=cache_dir, prefix=".download-", suffix=".tmp")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            digest, n_bytes, head = _copy_body(response, stream, url, content_type,
                                               max_bytes=max_bytes, deadline_s=deadline_s)
        extension = _checked_extension(head, n_bytes, url, content_type)
        target = cache_dir / digest[:2] / f"{digest}.{extension}"
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
    deadline_s: float,
) -> tuple[str, int, bytes]:
    """Copy the body to ``stream``; return its sha256, its size and its first bytes.

    A body that does not start like audio is refused as soon as its first bytes arrive.
    """
    digest = hashlib.sha256()
    n_bytes = 0
    head = b""
    started = time.monotonic()
    for chunk in response.iter_content(_CHUNK_BYTES):
        n_bytes += len(chunk)
        if n_bytes > max_bytes:
            raise DownloadError(
                "too_large", f"{url} sent more than the {max_bytes} byte cap", retryable=False
            )
        if time.monotonic() - started > deadline_s:
            raise DownloadError(
                "timeout", f"{url} took longer than {deadline_s:g} s to send its body",
                retryable=True,
            )
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
            f"{url} sent {content_type or 'an untyped body'} starting {head!r}, "
            "which is not MP3/WAV/FLAC/OGG",
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
