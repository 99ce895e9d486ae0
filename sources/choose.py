"""Choosing where a run's tracks come from: the one place a ``--source`` is read.

========================  ==========================================================
``demo``                  the built-in demo catalog, served on loopback (default)
``spotify``               Spotify's tracks of ``--year`` (or of ``--playlist``)
``csv:FILE``              a Spotify-schema data set (``--name`` names it; default the stem)
``dir:PATH``              the audio files under a folder (``truth.csv`` beside them optional)
``run:ID``, ``run:latest`` an earlier run's tracks, re-clustered from the warehouse
========================  ==========================================================
"""

from __future__ import annotations

from pathlib import Path

from songmix.sources.base import Source
from songmix.sources.catalogs import DemoSource, SpotifySource
from songmix.sources.files import CsvSource, FolderSource
from songmix.sources.stored import StoredRunSource

SOURCE_FORMS = ("demo", "spotify", "csv:FILE", "dir:PATH", "run:ID", "run:latest")


def parse_source(
    spec: str,
    *,
    n_tracks: int = 1000,
    year: int = 2020,
    playlist: str | None = None,
    dataset: str | None = None,
    demo_groups: int = 6,
    demo_audio_mismatch: bool = False,
) -> Source:
    """The source ``spec`` names, with the options that apply to it.

    Raises
    ------
    ValueError
        An unknown form, or an option given to a source it does not apply to.
    """
    kind, _, argument = spec.partition(":")
    if playlist and kind != "spotify":
        raise ValueError("--playlist needs --source spotify (the other sources have no playlists)")
    if dataset and kind != "csv":
        raise ValueError("--name names a CSV data set; it needs --source csv:FILE")
    if kind == "demo" and not argument:
        return DemoSource(n_tracks=n_tracks, year=year, groups=demo_groups,
                          audio_mismatch=demo_audio_mismatch)
    if kind == "spotify" and not argument:
        return SpotifySource(n_tracks=n_tracks, year=year, playlist=playlist)
    if kind == "csv" and argument:
        return CsvSource(path=Path(argument), dataset=dataset)
    if kind == "dir" and argument:
        return FolderSource(path=Path(argument))
    if kind == "run" and argument:
        return StoredRunSource(from_run=argument)
    raise ValueError(f"unknown source {spec!r}; use one of {', '.join(SOURCE_FORMS)}")
