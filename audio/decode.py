"""Decode audio files into mono float32 samples at one analysis rate.

Conventions: samples are float32 in [-1, 1], shape ``(n_samples,)``; rates are in Hz; lengths
in seconds. Everything that can go wrong with a file raises :class:`AudioDecodeError` whose
``reason`` is a short machine-readable word the pipeline stores beside the file.

libsndfile (through ``soundfile``, >= 1.1) reads WAV, FLAC, OGG/Vorbis/Opus and MP3, so one
code path serves every format the project accepts.
"""

from __future__ import annotations

import codecs
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import firwin, resample_poly

ANALYSIS_SAMPLE_RATE = 22050
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
DEFAULT_MAX_SECONDS = 600.0

# A decoder stopping this far short of the frame count in the header means the file was cut.
_TRUNCATION_TOLERANCE = 0.01

# Leading bytes of the containers libsndfile decodes for us; used only to name the failure.
_AUDIO_MAGIC_PREFIXES = (b"ID3", b"RIFF", b"fLaC", b"OggS", b"FORM", b"\xff")
#: How much of a file :func:`describe_start` looks at.
_SNIFF_BYTES = 64


class AudioDecodeError(ValueError):
    """A file that cannot be turned into samples.

    Parameters
    ----------
    reason : str
        Machine-readable cause: ``"missing_file"``, ``"empty_file"``, ``"not_audio"``,
        ``"undecodable"``, ``"truncated"``, ``"no_frames"`` or ``"unsupported_sample_rate"``.
    detail : str
        Human-readable explanation, including what to do about it.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedAudio:
    """Mono samples at the analysis rate plus what the file said about itself.

    Attributes
    ----------
    samples : ndarray of shape (n_samples,), float32
        Channel mean, resampled to ``sample_rate``, at most ``max_seconds`` long.
    sample_rate : int
        Rate of ``samples`` in Hz.
    source_sample_rate : int
        Rate stored in the file, in Hz.
    source_channels : int
        Channels stored in the file.
    source_seconds : float
        Duration the file declares (the decoder's frame count / rate).
    capped : bool
        True when the file is longer than ``max_seconds`` and only its start was decoded.
    """

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    source_seconds: float
    capped: bool


def decode_file(
    path: str | Path,
    *,
    sample_rate: int = ANALYSIS_SAMPLE_RATE,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> DecodedAudio:
    """Decode the start of an audio file to mono float32 at ``sample_rate``.

    Only the first ``max_seconds`` are read, so a two-hour file costs no more than a
    ten-minute one.

    Parameters
    ----------
    path : str or Path
        MP3, WAV, FLAC or OGG file.
    sample_rate : int, keyword-only
        Output rate in Hz, between 8000 and 48000.
    max_seconds : float, keyword-only
        Longest stretch to decode, in seconds (> 0).

    Returns
    -------
    DecodedAudio

    Raises
    ------
    AudioDecodeError
        When the file is missing, empty, not audio, cut short, undecodable, holds no frames,
        or is stored at a rate outside 8-48 kHz.
    ValueError
        When ``sample_rate`` or ``max_seconds`` are out of range.
    """
    _check_rate(sample_rate, "sample_rate")
    if not (math.isfinite(max_seconds) and max_seconds > 0):
        raise ValueError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}")
    path = Path(path)
    _check_file_exists_and_not_empty(path)
    try:
        with soundfile.SoundFile(path) as audio_file:
            source_rate = audio_file.samplerate
            declared_frames = audio_file.frames
            source_channels = audio_file.channels
            if not MIN_SAMPLE_RATE <= source_rate <= MAX_SAMPLE_RATE:
                raise AudioDecodeError(
                    "unsupported_sample_rate",
                    f"{path} is stored at {source_rate} Hz; convert it to 8-48 kHz first",
                )
            frames_wanted = min(declared_frames, int(max_seconds * source_rate))
            interleaved = audio_file.read(frames_wanted, dtype="float32", always_2d=True)
    except soundfile.SoundFileError as error:
        raise _classify_libsndfile_error(path, error) from error
    _check_complete(path, n_read=len(interleaved), n_wanted=frames_wanted)
    # A mono file's only channel is already the mix: no pass over the samples to average it.
    mono = (interleaved[:, 0] if source_channels == 1
            else interleaved.mean(axis=1, dtype=np.float32))
    return DecodedAudio(
        samples=resample(mono, source_rate, sample_rate),
        sample_rate=sample_rate,
        source_sample_rate=source_rate,
        source_channels=source_channels,
        source_seconds=declared_frames / source_rate,
        capped=declared_frames > frames_wanted,
    )


def load_mono(
    path: str | Path,
    *,
    sample_rate: int = ANALYSIS_SAMPLE_RATE,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> np.ndarray:
    """Decode the start of an audio file; the samples of :func:`decode_file`.

    Returns
    -------
    ndarray of shape (n_samples,), float32
        Mono samples at ``sample_rate``, at most ``max_seconds`` long.
    """
    return decode_file(path, sample_rate=sample_rate, max_seconds=max_seconds).samples


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono samples with a polyphase filter (``scipy.signal.resample_poly``).

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
    from_rate, to_rate : int
        Rates in Hz, each within 8-48 kHz.

    Returns
    -------
    ndarray of shape (ceil(n_samples * to_rate / from_rate),), float32
    """
    _check_rate(from_rate, "from_rate")
    _check_rate(to_rate, "to_rate")
    samples = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return samples
    if from_rate == 2 * to_rate:  # 44.1 to 22.05 kHz, most files: the same output, faster
        return halve_rate(samples, _resample_poly_half_band())
    common = math.gcd(from_rate, to_rate)
    return resample_poly(samples, to_rate // common, from_rate // common).astype(
        np.float32, copy=False
    )


def halve_rate(samples: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Filter by a half-band low-pass and keep every other sample.

    The output of ``resample_poly(samples, 1, 2, window=taps)``, computed only from the
    filter's nonzero taps: in a half-band filter every other tap but the centre is zero, so
    each output sample is the centre tap times an even sample plus, for each odd distance d,
    one tap times the two odd samples d away -- half the work of a general polyphase filter.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,), float32
    taps : ndarray of shape (4 m + 3,), float32
        A symmetric half-band filter (``firwin(n, 0.5, ...)``).

    Returns
    -------
    ndarray of shape (ceil(n_samples / 2),), float32
    """
    centre = len(taps) // 2
    n_out = (len(samples) + 1) // 2
    reach = (centre + 1) // 2  # odd samples needed on each side of an output
    odd = np.zeros(n_out + 2 * reach, dtype=np.float32)
    odd[reach: reach + len(samples) // 2] = samples[1::2]
    output = samples[0::2] * taps[centre]
    pair = np.empty(n_out, dtype=np.float32)
    for distance in range(1, centre + 1, 2):
        # samples 2m + d and 2m - d are odd samples m + (d - 1) / 2 and m - (d + 1) / 2
        np.add(odd[reach + (distance - 1) // 2:][:n_out],
               odd[reach - (distance + 1) // 2:][:n_out], out=pair)
        pair *= taps[centre - distance]
        output += pair
    return output


@cache
def _resample_poly_half_band() -> np.ndarray:
    """The filter ``resample_poly(x, 1, 2)`` designs by default (Kaiser window, beta 5)."""
    return firwin(41, 0.5, window=("kaiser", 5.0)).astype(np.float32)


def _check_rate(rate: int, name: str) -> None:
    if not (isinstance(rate, (int, np.integer)) and MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE):
        raise ValueError(
            f"{name} must be an integer number of Hz between {MIN_SAMPLE_RATE} and "
            f"{MAX_SAMPLE_RATE}, got {rate!r}"
        )


def _check_file_exists_and_not_empty(path: Path) -> None:
    if not path.is_file():
        raise AudioDecodeError("missing_file", f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise AudioDecodeError("empty_file", f"{path} is zero bytes long; download it again")


def _classify_libsndfile_error(path: Path, error: Exception) -> AudioDecodeError:
    # libsndfile says "file does not exist" for unknown formats too; the first bytes tell
    # a text/HTML body saved under an audio name apart from a damaged audio stream.
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.startswith(_AUDIO_MAGIC_PREFIXES):
        return AudioDecodeError(
            "not_audio",
            f"{path} does not start like MP3/WAV/FLAC/OGG ({describe_start(head)}); "
            "it is probably an error page or a different format",
        )
    return AudioDecodeError("undecodable", f"{path} could not be decoded: {error}")


def describe_start(head: bytes) -> str:
    """What the first bytes of a file look like, in words: never the bytes themselves, which
    may be anyone's data (error texts are stored and shown)."""
    try:  # not final: the last character may be cut at the end of ``head``
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "it starts with binary data"
    if text.lstrip().startswith("<"):
        return "it starts with markup, like an HTML or XML page"
    if all(character.isprintable() or character.isspace() for character in text):
        return "it starts with text"
    return "it starts with binary data"


def _check_complete(path: Path, *, n_read: int, n_wanted: int) -> None:
    if n_read == 0:
        raise AudioDecodeError("no_frames", f"{path} decodes to no audio frames")
    if n_read < (1.0 - _TRUNCATION_TOLERANCE) * n_wanted:
        raise AudioDecodeError(
            "truncated",
            f"{path} decoded to {n_read} of the {n_wanted} frames its header declares; "
            "the file was cut short, download it again",
        )
