"""Reading a published Spotify-schema data set (CSV) into tracks, features and genres.

The widely shared data sets (Kaggle's "Spotify Tracks Dataset", "30000 Spotify Songs",
"Spotify 1921-2020 600k tracks", ...) all carry Spotify's audio features under Spotify's
names, but name the rest differently: ``track_id`` or ``id``, ``track_name`` or ``name``,
``album_name`` or ``track_album_name``, ``track_genre`` or ``playlist_genre``. Columns are
matched case-insensitively through :data:`COLUMN_ALIASES`; the first alias present wins.

Conventions
-----------
* Required: a track id, a name, the artists and the eleven audio features
  (:data:`~songmix.sources.schema.SPOTIFY_FEATURE_COLUMNS`). Missing ones are all listed in
  one :class:`CsvSchemaError` and nothing is read further.
* A row is rejected, with every reason found, when a feature is empty, not a number or out of
  Spotify's documented range (:data:`FEATURE_RANGES`; ``key`` and ``mode`` must be
  integers), when ``duration_ms`` or ``year`` is given but is not a whole number of
  milliseconds up to a day or a year from 1900 to next year, when the id or name is empty, or
  when its id repeats an earlier row's (the first one is kept). The rest load.
* The file must be UTF-8 (a BOM is allowed); a file in another encoding, or one the CSV parser
  cannot split into rows, is refused in one line naming it.
* Line numbers count the header as line 1 and assume one line per row.
* Artists written as a list (``"['A', 'B']"``) or separated by ``;`` become ``"A, B"``.
"""

from __future__ import annotations

import ast
import codecs
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from songmix.sources.schema import (
    FIRST_RELEASE_YEAR,
    MAX_DURATION_MS,
    SPOTIFY_FEATURE_COLUMNS,
    last_release_year,
)

#: Canonical column -> names it goes by in published data sets, in order of preference.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "track_id": ("track_id", "id", "spotify_id", "track_uri", "uri"),
    "name": ("track_name", "name", "title", "song", "song_name"),
    "artists": ("artists", "artist", "artist_name", "artist_names", "track_artist"),
    "album": ("album_name", "album", "track_album_name"),
    "release_date": ("release_date", "track_album_release_date", "album_release_date"),
    "year": ("year", "release_year"),
    "duration_ms": ("duration_ms",),
    "genre": ("track_genre", "genre", "playlist_genre", "genres"),
    **{feature: (feature,) for feature in SPOTIFY_FEATURE_COLUMNS},
}
REQUIRED_COLUMNS: tuple[str, ...] = ("track_id", "name", "artists", *SPOTIFY_FEATURE_COLUMNS)

#: Inclusive ranges Spotify documents for each feature (loudness: dB, tempo: BPM).
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    **{score: (0.0, 1.0) for score in ("danceability", "energy", "speechiness", "acousticness",
                                       "instrumentalness", "liveness", "valence")},
    "key": (0, 11),
    "mode": (0, 1),
    "loudness": (-60.0, 5.0),
    "tempo": (1.0, 300.0),
}
_INTEGER_FEATURES = ("key", "mode")


def _optional_ranges() -> dict[str, tuple[float, float]]:
    """Inclusive ranges of the optional whole-number columns; an empty cell is allowed."""
    return {"duration_ms": (1, MAX_DURATION_MS), "year": (FIRST_RELEASE_YEAR, last_release_year())}

_CHECK_BLOCK_BYTES = 1 << 20
_TRACK_URI = re.compile(r"^(?:spotify:track:|https?://open\.spotify\.com/track/)")


class CsvSchemaError(ValueError):
    """The file lacks required columns (the message lists them all, with accepted names)."""


class CsvReadError(ValueError):
    """The file is not UTF-8 CSV text (the message names it)."""


@dataclass(frozen=True)
class CsvDataset:
    """What a Spotify-schema CSV holds, split into loadable rows and rejected ones.

    Attributes
    ----------
    tracks : pandas.DataFrame
        One row per accepted track: ``track_id, name, artists, album, release_date, year,
        duration_ms`` (optional columns ``None`` when the file lacks them).
    features : pandas.DataFrame of shape (n_tracks, 11)
        Audio features indexed by track_id, in :data:`SPOTIFY_FEATURE_COLUMNS` order.
    genres : pandas.Series
        Genre per track_id (empty when the file has no genre column).
    rejected : pandas.DataFrame
        ``line_number, track_id, reason, row`` (``row``: the row as JSON text).
    column_map : dict
        Canonical column -> the file's column it was read from.
    """

    tracks: pd.DataFrame
    features: pd.DataFrame
    genres: pd.Series
    rejected: pd.DataFrame
    column_map: dict[str, str]


def match_columns(header: list[str]) -> dict[str, str]:
    """Map canonical columns to the file's header names (case-insensitive, through aliases).

    Raises
    ------
    CsvSchemaError
        Listing every required column that no header name matches.
    """
    by_lower = {}
    for name in header:
        by_lower.setdefault(name.strip().lower(), name)
    found = {}
    for canonical, aliases in COLUMN_ALIASES.items():
        match = next((by_lower[alias] for alias in aliases if alias in by_lower), None)
        if match is not None:
            found[canonical] = match
    missing = [column for column in REQUIRED_COLUMNS if column not in found]
    if missing:
        described = ", ".join(
            f"{column} (as {' or '.join(COLUMN_ALIASES[column])})" if len(COLUMN_ALIASES[column]) > 1
            else column for column in missing)
        raise CsvSchemaError(
            f"the file lacks required column(s): {described}; its columns are {', '.join(header)}. "
            "Rename them (matching ignores case), or use a Spotify-schema data set")
    return found


def read_csv_header(path: Path) -> dict[str, str]:
    """Check a CSV file before it is imported: :func:`match_columns` of its first line, and
    that all of it is UTF-8 text (a file of a million rows takes well under a second).

    Raises
    ------
    CsvSchemaError, CsvReadError, FileNotFoundError
    """
    path = _existing(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHECK_BLOCK_BYTES), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                raise _not_utf8(path) from None
    return match_columns([str(name) for name in _read_csv(path, nrows=0).columns])


def read_spotify_csv(path: Path) -> CsvDataset:
    """Read and check a Spotify-schema CSV file.

    Parameters
    ----------
    path : Path
        The CSV file (comma-separated, header on the first line, UTF-8).

    Returns
    -------
    CsvDataset

    Raises
    ------
    CsvSchemaError
        Required columns missing.
    CsvReadError
        Not UTF-8 text, or not CSV.
    FileNotFoundError
        No such file.
    """
    return parse_spotify_frame(_read_csv(_existing(path), dtype=str, keep_default_na=False,
                                         skipinitialspace=True))


def _existing(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {path}")
    return path


def _read_csv(path: Path, **options) -> pd.DataFrame:
    """``pandas.read_csv``, with a file it cannot read refused in one line that names it."""
    try:
        return pd.read_csv(path, **options)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except pd.errors.EmptyDataError:
        raise CsvReadError(f"{path} is empty; a data set has a header line and one row per track") from None
    except pd.errors.ParserError as error:
        raise CsvReadError(f"{path} cannot be read as CSV: {error}".rstrip()) from None


def _not_utf8(path: Path) -> CsvReadError:
    return CsvReadError(f"{path} is not UTF-8 text (Latin-1 or another encoding?); convert it, e.g. "
                        f"iconv -f latin1 -t utf-8 {path} > utf8.csv, and import that")


def parse_spotify_frame(raw: pd.DataFrame) -> CsvDataset:
    """:func:`read_spotify_csv` on an all-text frame already read (one row per file line)."""
    columns = match_columns([str(name) for name in raw.columns])
    text = {canonical: raw[name].astype(str).str.strip() for canonical, name in columns.items()}
    track_ids = text["track_id"].str.replace(_TRACK_URI, "", regex=True)
    numbers = {column: pd.to_numeric(text[column], errors="coerce")
               for column in (*SPOTIFY_FEATURE_COLUMNS, *_optional_ranges()) if column in text}
    problems = _row_problems(track_ids, text, numbers)
    first_line = {}
    for position, track_id in enumerate(track_ids.to_numpy(dtype=object)):
        if problems[position] or not track_id:
            continue
        if track_id in first_line:
            problems[position].append(f"repeats track id {track_id} first seen on line {first_line[track_id]}")
        else:
            first_line[track_id] = position + 2
    accepted = np.array([not reasons for reasons in problems], dtype=bool)
    return CsvDataset(
        tracks=_track_frame(track_ids, text, accepted),
        features=pd.DataFrame({f: numbers[f][accepted].to_numpy() for f in SPOTIFY_FEATURE_COLUMNS},
                              index=pd.Index(track_ids[accepted].to_numpy(), name="track_id")),
        genres=(pd.Series(text["genre"][accepted].to_numpy(), index=track_ids[accepted].to_numpy(), name="genre")
                .loc[lambda genres: genres != ""] if "genre" in text else pd.Series(dtype=str, name="genre")),
        rejected=_rejected_frame(raw, track_ids, problems),
        column_map=columns,
    )


def _row_problems(track_ids: pd.Series, text: dict[str, pd.Series], numbers: dict[str, pd.Series]) -> list[list[str]]:
    problems: list[list[str]] = [[] for _ in range(len(track_ids))]
    for position in np.flatnonzero((track_ids == "").to_numpy()):
        problems[position].append("no track id")
    for position in np.flatnonzero((text["name"] == "").to_numpy()):
        problems[position].append("no track name")
    for feature in SPOTIFY_FEATURE_COLUMNS:
        written = text[feature]
        for position in np.flatnonzero(((written == "") & numbers[feature].isna()).to_numpy()):
            problems[position].append(f"{feature} is empty")
        _number_problems(problems, feature, written, numbers[feature], FEATURE_RANGES[feature],
                         whole=feature in _INTEGER_FEATURES)
    for column, bounds in _optional_ranges().items():
        if column in text:
            _number_problems(problems, column, text[column], numbers[column], bounds, whole=True)
    return problems


def _number_problems(problems: list[list[str]], column: str, written: pd.Series, values: pd.Series,
                     bounds: tuple[float, float], *, whole: bool) -> None:
    """Add a reason to each row whose ``column`` was written but is not a number in ``bounds``
    (not a whole one when ``whole``); NaN and infinities are not numbers here."""
    low, high = bounds
    # numpy arrays, not a pandas lookup per bad cell: a file of bad rows has millions of them
    texts, numbers = written.to_numpy(dtype=object), values.to_numpy(dtype=float)
    finite = np.isfinite(numbers)
    for position in np.flatnonzero((texts != "") & ~finite):
        problems[position].append(f"{column} {texts[position]!r} is not a number")
    out_of_range = finite & ((numbers < low) | (numbers > high))
    shown = (lambda number: f"{number:.0f}") if whole else (lambda number: f"{number:g}")
    for position in np.flatnonzero(out_of_range):
        problems[position].append(
            f"{column} {numbers[position]:g} is outside {shown(low)}..{shown(high)}")
    if whole:
        for position in np.flatnonzero(finite & ~out_of_range & (numbers != np.round(numbers))):
            problems[position].append(f"{column} {numbers[position]:g} is not a whole number")


def _track_frame(track_ids: pd.Series, text: dict[str, pd.Series], accepted: np.ndarray) -> pd.DataFrame:
    def optional(column: str, convert=None) -> list:
        if column not in text:
            return [None] * int(accepted.sum())
        values = text[column][accepted]
        converted = pd.to_numeric(values, errors="coerce") if convert else values.where(values != "", None)
        return [None if pd.isna(value) else (int(value) if convert else value) for value in converted]

    return pd.DataFrame({
        "track_id": track_ids[accepted].to_numpy(),
        "name": text["name"][accepted].to_numpy(),
        "artists": [_artists(value) for value in text["artists"][accepted]],
        "album": optional("album"),
        "release_date": optional("release_date"),
        "year": optional("year", convert=int),
        "duration_ms": optional("duration_ms", convert=int),
    })


def _artists(written: str) -> str:
    """``"['A', 'B']"``, ``"A;B"`` or ``"A, B"`` → ``"A, B"``."""
    if written.startswith("[") and written.endswith("]"):
        try:
            names = ast.literal_eval(written)
        except (ValueError, SyntaxError):
            names = None
        if isinstance(names, (list, tuple)):
            return ", ".join(str(name) for name in names)
    return ", ".join(part.strip() for part in written.split(";") if part.strip())


def _rejected_frame(raw: pd.DataFrame, track_ids: pd.Series, problems: list[list[str]]) -> pd.DataFrame:
    positions = [position for position, reasons in enumerate(problems) if reasons]
    ids, names = track_ids.to_numpy(dtype=object), [str(name) for name in raw.columns]
    return pd.DataFrame({  # typed, so that a file without a bad row gives a usable empty frame
        "line_number": pd.Series([position + 2 for position in positions], dtype="int64"),
        "track_id": pd.Series([ids[position] or None for position in positions], dtype=object),
        "reason": pd.Series(["; ".join(problems[position]) for position in positions], dtype=object),
        "row": pd.Series([json.dumps(dict(zip(names, row)))
                          for row in raw.iloc[positions].to_numpy(dtype=object)], dtype=object),
    })
