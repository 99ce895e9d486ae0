"""Sources that are files on disk: a Spotify-schema CSV data set, and a folder of audio.

A CSV brings Spotify-style features (and often genres) but no audio; a folder brings audio
(and maybe a ``truth.csv``) but no Spotify features. Neither fetches anything: everything
they hold is stored with their tracks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from songmix.audio.folder import list_audio_files, read_truth
from songmix.sources.base import Listing, Source, TrackBatch
from songmix.sources.csv_import import read_csv_header, read_spotify_csv

#: Rows stored per batch of an imported data set: each batch is one transaction, so an
#: interrupted import keeps what it wrote and memory per write stays bounded.
CSV_BATCH_ROWS = 200_000
#: Files stored per batch of a folder.
FOLDER_BATCH_FILES = 1_000
#: ``runs.source`` of a folder of audio files.
FOLDER_SOURCE = "audio-dir"


@dataclass(frozen=True)
class CsvSource(Source):
    """A published Spotify-schema data set (Kaggle's "Spotify Tracks Dataset", the "1.2M
    songs" ``tracks_features.csv``, ...) as a run of source ``csv:<name>``.

    Accepted rows load into ``tracks`` and ``spotify_features`` (provider ``csv:<name>``), the
    genre column into ``csv_genres``, and rejected rows, with every reason, into
    ``rejected_rows`` (see :mod:`songmix.sources.csv_import`).
    """

    path: Path
    dataset: str | None = None

    feature_sets = ("spotify",)

    @property
    def name(self) -> str:
        return f"csv:{self.dataset or Path(self.path).stem}"

    def parameters(self) -> dict[str, object]:
        return {"path": str(Path(self.path).resolve()), "dataset": self.dataset}

    def check(self) -> None:
        read_csv_header(Path(self.path))

    def track_batches(self, listing: Listing) -> Iterator[TrackBatch]:
        dataset = read_spotify_csv(Path(self.path))
        genres = dataset.genres.rename_axis("track_id").reset_index()
        features = dataset.features.reset_index().assign(provider=self.name)
        yield {"rejected_rows": dataset.rejected}
        if dataset.tracks.empty:  # the rejected rows are stored; the run is not a success
            most_often = dataset.rejected["reason"].str.split("; ").str[0].value_counts().index[:1]
            raise ValueError(f"{self.path} holds no row that could be loaded ({len(dataset.rejected)} "
                             f"rejected{''.join(f', most often: {reason}' for reason in most_often)}; "
                             "every reason is in rejected_rows)")
        for start in range(0, len(dataset.tracks), CSV_BATCH_ROWS):
            batch = slice(start, start + CSV_BATCH_ROWS)
            tracks = dataset.tracks.iloc[batch]
            yield {"tracks": tracks, "spotify_features": features.iloc[batch],
                   "csv_genres": genres[genres["track_id"].isin(tracks["track_id"])]}


@dataclass(frozen=True)
class FolderSource(Source):
    """The MP3/WAV/FLAC/OGG files under a folder, as tracks ``file:<absolute path>`` whose
    audio is the file itself (nothing is copied); ``truth.csv`` in the folder, when present,
    is stored as the tracks' ground truth (``demo_truth``: tempo, key, mode, group)."""

    path: Path

    feature_sets = ("aubio",)

    @property
    def name(self) -> str:
        return FOLDER_SOURCE

    def parameters(self) -> dict[str, object]:
        return {"audio_dir": str(Path(self.path).resolve())}

    def run_name(self) -> str:
        return f"audio-dir-{Path(self.path).resolve().name}"

    def check(self) -> None:
        if not Path(self.path).is_dir():
            raise ValueError(f"--audio-dir {self.path} is not a folder; give a folder of audio files")

    def track_batches(self, listing: Listing) -> Iterator[TrackBatch]:
        files = list_audio_files(self.path)
        truth = read_truth(self.path)
        for start in range(0, len(files), FOLDER_BATCH_FILES):
            batch = files[start:start + FOLDER_BATCH_FILES]
            yield {
                "tracks": pd.DataFrame({"track_id": [f.track_id for f in batch],
                                        "name": [f.path.stem for f in batch], "artists": "",
                                        "album": [f.path.parent.name for f in batch]}),
                "audio_files": pd.DataFrame({
                    "track_id": [f.track_id for f in batch], "status": "ok",
                    "sha256": [f.sha256 for f in batch], "path": [str(f.path) for f in batch],
                    "bytes": [f.n_bytes for f in batch]}),
            }
        if truth is not None:
            yield {"demo_truth": _truth_rows(truth)}


def _truth_rows(truth: pd.DataFrame) -> pd.DataFrame:
    """``demo_truth`` rows of a folder's ``truth.csv``; unknown cells (-1, NaN) as NULL."""
    return pd.DataFrame({
        "track_id": truth.index,
        "group_id": _known(pd.factorize(truth["group"])[0]),
        "group_name": truth["group"].to_numpy(),
        "tempo": truth["tempo"].to_numpy(dtype=float),
        "key": _known(truth["key"]),
        "mode": _known(truth["mode"]),
    })


def _known(codes) -> pd.arrays.IntegerArray:
    """Whole-number codes with -1 ("unknown") as missing."""
    return pd.array([None if code < 0 else int(code) for code in codes], dtype="Int64")
