"""Choosing where tracks come from: the one place a run picks its source.

Every source looks the same to the pipeline: a Spotify-compatible API (reached through the
same spotipy client) plus, for the demo, ground truth. The demo starts its loopback service
here and always stops it; a real run just points at the configured Spotify hosts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from songmix.sources.demo_audio import render_catalog_audio
from songmix.sources.demo_catalog import generate_catalog
from songmix.sources.demo_server import DemoService
from songmix.sources.spotify import SpotifyEndpoints, playlist_id_from_ref

SOURCES = ("demo", "spotify")

@dataclass(frozen=True)
class SourceConnection:
    """An open source of tracks.

    Attributes
    ----------
    name : str
        ``"demo"`` or ``"spotify"``.
    cache_key : str
        Identifies the catalog behind the source in task cache keys (the demo's URLs change
        with every run's port, so tasks key on this instead of on endpoints).
    endpoints : SpotifyEndpoints
        Base URLs of the Spotify-compatible API and accounts service.
    search_query : str
        The search that lists the run's tracks (the notebook's ``year:2020``).
    playlist : str or None
        A playlist id, URI or link whose tracks the run takes instead of searching.
    truth : pandas.DataFrame or None
        Ground truth per track (demo only): group_id, group_name, tempo, key, mode.
    """

    name: str
    cache_key: str
    endpoints: SpotifyEndpoints
    search_query: str
    playlist: str | None = None
    truth: pd.DataFrame | None = None

    @property
    def pages_key(self) -> str:
        """Keys stored search pages: the catalog and the API address that answered them.

        A page's links (``next``, ``preview_url``) point at the server that served it. A
        loopback service such as the demo's gets a new port every run and dies with its run,
        so its pages are never reused by a later run; the same catalog at the same address
        (Spotify's) is.
        """
        return f"{self.cache_key}@{self.endpoints.api_url}"


@contextlib.contextmanager
def open_source(
    name: str,
    *,
    year: int,
    n_tracks: int,
    data_dir: Path,
    playlist: str | None = None,
    demo_groups: int = 6,
    demo_seed: int = 2020,
    demo_audio_mismatch: bool = False,
    render_progress: Callable[[int, int], None] | None = None,
) -> Iterator[SourceConnection]:
    """Open source ``name`` for a run; the demo service stops when the block ends.

    ``playlist`` (Spotify only) replaces the year search by that playlist's tracks.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}")
    query = f"year:{year}"
    if name == "spotify":
        # Checked here, before any request, so a typo fails in a second with the fix.
        playlist_id = playlist_id_from_ref(playlist) if playlist else None
        yield SourceConnection("spotify", "spotify", SpotifyEndpoints.from_env(), query, playlist_id)
        return
    if playlist:
        raise ValueError("--playlist needs --source spotify (the demo catalog has no playlists)")
    catalog = generate_catalog(
        n_tracks, n_groups=demo_groups, year=year, seed=demo_seed, audio_mismatch=demo_audio_mismatch
    )
    audio_paths = render_catalog_audio(
        catalog, data_dir / "demo-previews", progress=render_progress
    )
    with DemoService(catalog, audio_paths) as service:
        yield SourceConnection(
            name="demo",
            cache_key=f"demo:{catalog.fingerprint}",
            endpoints=SpotifyEndpoints(api_url=service.api_url, accounts_url=service.accounts_url),
            search_query=query,
            truth=catalog.truth.set_index("track_id"),
        )
