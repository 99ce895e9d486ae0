"""Tasks that extract Aubio features (and plain aubio's tempo, the reference beside it), a
chunk of files at a time; previews are downloaded by :mod:`songmix.tasks.previews`.

Per-file work is batched (each task run carries Prefect's bookkeeping): one task handles
a chunk, and a failure of one file is recorded in its row instead of failing the chunk.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from songmix.audio.accuracy import plain_aubio_tempo
from songmix.audio.decode import AudioDecodeError
from songmix.audio.features import EXTRACTOR_VERSION, extract_file


@task(
    name="extract-aubio-features",
    task_run_name="extract-aubio-features[chunk {chunk}]",
    cache_policy=(INPUTS - "paths" - "chunk") + TASK_SOURCE,
)
def extract_aubio_features(
    sha256s: list[str], paths: list[str], extractor_version: str, chunk: str
) -> list[dict]:
    """Aubio features of each file; a file that cannot be analysed gets an ``error`` row.

    The error reads ``"reason: detail"`` (:class:`~songmix.audio.decode.AudioDecodeError`'s
    reasons: empty_file, not_audio, truncated, ...), so one bad file never fails its chunk.
    """
    rows = []
    for sha256, path in zip(sha256s, paths, strict=True):
        base = {"sha256": sha256, "extractor_version": extractor_version}
        try:
            extracted = extract_file(Path(path))
        except (ValueError, OSError) as error:  # AudioDecodeError is a ValueError
            rows.append(base | {"error": _failure_text(error)})
            continue
        rows.append(base | dict(extracted.values) | {"flags": ",".join(extracted.flags)})
    return rows


@task(name="measure-plain-aubio-tempo", cache_policy=INPUTS + TASK_SOURCE)
def measure_plain_aubio_tempo(paths: dict[str, str]) -> dict[str, float]:
    """Plain aubio's tempo of each file with a true tempo, the reference beside songmix's.

    ``paths`` maps track ids to files; a file that cannot be decoded gets 0 (no estimate).
    """
    tempi = {}
    for track_id, path in paths.items():
        try:
            tempi[track_id] = plain_aubio_tempo(path)
        except AudioDecodeError:
            tempi[track_id] = 0.0
    return tempi


def _failure_text(error: Exception) -> str:
    """``"reason: detail"`` for decode errors, ``"ExceptionType: message"`` for the rest."""
    return str(error) if hasattr(error, "reason") else f"{type(error).__name__}: {error}"


__all__ = ["EXTRACTOR_VERSION", "extract_aubio_features", "measure_plain_aubio_tempo"]
