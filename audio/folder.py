"""A folder of the user's own audio files, and the ground truth that may sit beside them.

Conventions: files are found recursively, in sorted order, without leaving the folder through
a symbolic link (unless asked to), and identified by their absolute path (``file:/abs/posix/path`` as a track id: two folders never share an id; the features are
cached by content, so moving a folder costs no new extraction). ``truth.csv`` in the folder's
root has a header and the columns ``file,tempo,key,mode`` (``file`` relative to the folder;
tempo in BPM, the column may be named ``tempo_bpm``; key a pitch-class name with sharps or flats -- ``C``, ``C#``, ``Db`` -- or a
number 0-11; mode ``major``/``minor`` or 1/0) plus optionally ``group`` or ``genre``. Blank
cells mean "unknown" and leave that row out of the measure that needs the value.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from songmix.audio.download import AUDIO_EXTENSIONS
from songmix.sources.schema import PITCH_CLASSES

TRUTH_FILE = "truth.csv"
TRACK_ID_PREFIX = "file:"
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E",
          "E#": "F", "B#": "C"}
_MODES = {"major": 1, "minor": 0, "maj": 1, "min": 0, "1": 1, "0": 0}
_HASH_CHUNK_BYTES = 1 << 20
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderFile:
    """One audio file of the folder.

    Attributes
    ----------
    track_id : str
        ``file:`` + the absolute path, with forward slashes.
    path : Path
        Absolute path.
    sha256 : str
        Hex digest of the bytes.
    n_bytes : int
        File size.
    """

    track_id: str
    path: Path
    sha256: str
    n_bytes: int


def list_audio_files(folder: str | Path, *, follow_links: bool = False) -> list[FolderFile]:
    """Every MP3/WAV/FLAC/OGG file under ``folder`` (recursively), hashed, in sorted order.

    The folder is walked with an explicit stack, so any depth works. By default the walk stays
    inside ``folder``: a linked file counts only when its target lies inside too (a link
    to ``/etc/passwd`` named ``song.mp3`` is skipped and logged), and linked folders are not
    entered. ``follow_links=True`` takes every link, entering each folder once.

    Raises
    ------
    ValueError
        ``folder`` is not a directory or holds no audio file.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ValueError(f"--audio-dir {folder} is not a folder; give a folder of audio files")
    suffixes = {f".{extension}" for extension in AUDIO_EXTENSIONS}
    paths = sorted({path for path in _walk_files(folder, follow_links=follow_links)
                    if path.suffix.lower() in suffixes})
    if not paths:
        raise ValueError(f"{folder} holds no {'/'.join(AUDIO_EXTENSIONS).upper()} file")
    return [FolderFile(track_id=_track_id(path), path=path, sha256=digest, n_bytes=n_bytes)
            for path, (digest, n_bytes) in zip(paths, map(_sha256_and_size, paths))]


def _walk_files(root: Path, *, follow_links: bool) -> Iterator[Path]:
    """Resolved paths of the regular files under ``root`` (itself resolved), depth-first."""
    folders, entered, outside = [root], {_identity(root)}, []
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except OSError as error:  # unreadable folder: what it holds cannot be listed
            _log.warning("skipped %s: %s", error.filename, error.strerror)
            continue
        for entry in entries:
            if not entry.is_symlink():
                if entry.is_dir(follow_symlinks=False):
                    folders.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    yield Path(entry.path)
                continue
            target = Path(entry.path).resolve()
            if not (follow_links or target.is_relative_to(root)):
                outside.append(entry.path)
            elif target.is_file():
                yield target
            elif follow_links and target.is_dir() and _identity(target) not in entered:
                entered.add(_identity(target))
                folders.append(target)
    if outside:
        _log.warning("skipped %d link(s) leading out of %s, e.g. %s", len(outside), root, outside[0])


def _identity(folder: Path) -> tuple[int, int]:
    status = folder.stat()
    return status.st_dev, status.st_ino


def track_id_of(path: Path) -> str:
    """``file:`` + the absolute path, forward slashes on every platform."""
    return _track_id(Path(path).resolve())


def _track_id(resolved: Path) -> str:
    return TRACK_ID_PREFIX + resolved.as_posix()


def _sha256_and_size(path: Path) -> tuple[str, int]:
    digest, n_bytes = hashlib.sha256(), 0
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
            digest.update(block)
            n_bytes += len(block)
    return digest.hexdigest(), n_bytes


def read_truth(folder: str | Path) -> pd.DataFrame | None:
    """The folder's ``truth.csv`` as typed rows indexed by track id, or None without one.

    Returns
    -------
    pandas.DataFrame or None
        Index ``track_id``; columns ``tempo`` (float, NaN unknown), ``key`` (pitch class
        0-11, -1 unknown), ``mode`` (1 major, 0 minor, -1 unknown) and ``group`` (str or
        None).

    Raises
    ------
    ValueError
        A column is missing, a file is listed twice, or a cell cannot be read; the message
        names the row.
    """
    folder = Path(folder).resolve()
    path = folder / TRUTH_FILE
    if not path.is_file():
        return None
    if not path.resolve().is_relative_to(folder):
        raise ValueError(f"{path} is a link leading out of {folder}; copy the file into the folder")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    raw.columns = [str(column).strip().lower() for column in raw.columns]
    raw = raw.rename(columns={"tempo_bpm": "tempo"}) if "tempo" not in raw.columns else raw
    missing = {"file", "tempo", "key", "mode"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path} lacks the columns {sorted(missing)}; its header must start "
                         "with file,tempo,key,mode")
    group_column = next((c for c in ("group", "genre") if c in raw.columns), None)
    rows = [_truth_row(row, folder, path, line) for line, row in
            zip(range(2, len(raw) + 2), raw.to_dict("records"))]
    truth = pd.DataFrame(rows, columns=["track_id", "tempo", "key", "mode"]).set_index("track_id")
    repeated = truth.index[truth.index.duplicated()]
    if len(repeated):
        raise ValueError(f"{path} lists {repeated[0]!r} more than once")
    groups = [cell.strip() or None for cell in raw[group_column]] if group_column else None
    truth["group"] = pd.Series(groups, index=truth.index, dtype=object)
    return truth


def _truth_row(row: dict, folder: Path, path: Path, line: int) -> tuple[str, float, int, int]:
    where = f"{path} line {line}"
    file_name = row["file"].strip()
    if not file_name:
        raise ValueError(f"{where}: the file column is empty")
    tempo_text = row["tempo"].strip()
    try:
        tempo = float(tempo_text) if tempo_text else np.nan
    except ValueError:
        raise ValueError(f"{where}: tempo {tempo_text!r} is not a number of BPM") from None
    if not (np.isnan(tempo) or 0 < tempo < 1000):
        raise ValueError(f"{where}: tempo {tempo_text!r} must be a positive number of BPM")
    return (track_id_of(folder / file_name), tempo, parse_key(row["key"], where),
            parse_mode(row["mode"], where))


def parse_key(text: str, where: str = "key") -> int:
    """Pitch class of ``"C#"``, ``"Db"``, ``"c#"`` or ``"1"``; -1 for a blank cell."""
    text = text.strip()
    if not text:
        return -1
    if text.isdigit() and int(text) < 12:
        return int(text)
    name = text[:1].upper() + text[1:].lower()
    name = _FLATS.get(name, name)
    if name not in PITCH_CLASSES:
        raise ValueError(f"{where}: key {text!r} is not a pitch class (C, C#, Db, ... B or 0-11)")
    return PITCH_CLASSES.index(name)


def parse_mode(text: str, where: str = "mode") -> int:
    """1 for ``major``/``1``, 0 for ``minor``/``0``; -1 for a blank cell."""
    text = text.strip().lower()
    if not text:
        return -1
    if text not in _MODES:
        raise ValueError(f"{where}: mode {text!r} must be major, minor, 1 or 0")
    return _MODES[text]
