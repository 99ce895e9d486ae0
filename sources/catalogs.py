"""Sources behind a Spotify-compatible API: Spotify itself, and the built-in demo catalog.

Both list tracks through search pages of 10 (or a playlist), fetch Spotify's audio features
(ReccoBeats where Spotify answers 403) and download previews (Deezer by ISRC where none is
listed). The demo serves its generated catalog over loopback through the same client code,
and also knows the ground truth it generated the catalog from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from songmix.audio.download import AUDIO_CACHE, link_into_cache
from songmix.sources.base import Listing, Source, SpotifyApi, TrackBatch
from songmix.sources.demo_audio import render_catalog_audio
from songmix.sources.demo_catalog import DemoCatalog, generate_catalog
from songmix.sources.demo_server import DemoService
from songmix.sources.spotify import (
    SEARCH_MAX_RESULTS,
    SEARCH_PAGE_LIMIT,
    SpotifyEndpoints,
    parse_track,
    partitioned_queries,
    playlist_id_from_ref,
)

#: Pages asked for at once (in parallel tasks of 10): the tracks stage stores and reports
#: each block as it arrives.
PAGES_PER_BLOCK = 40
#: Folder of the demo's rendered previews under the data folder.
DEMO_PREVIEWS = "demo-previews"


def search_track_batches(
    listing: Listing, *, query: str, n_tracks: int, playlist: str | None = None
) -> Iterator[pd.DataFrame]:
    """Parsed, de-duplicated tracks of a search (or a playlist), block of pages by block.

    Beyond 1000 tracks the search is split by genre (:func:`partitioned_queries`): each query
    is read in blocks of just the pages still needed, until ``n_tracks`` distinct tracks are
    in, its results run out, or it reaches offset 1000; then the next query.
    """
    queries = [f"playlist:{playlist}"] if playlist else partitioned_queries(query, n_tracks)
    seen: set[str] = set()
    for query_text in queries:
        next_offset, exhausted = 0, False
        while len(seen) < n_tracks and not exhausted:
            wanted = min(n_tracks - len(seen), PAGES_PER_BLOCK * SEARCH_PAGE_LIMIT)
            offsets = [0] if playlist else _next_offsets(next_offset, wanted)
            pages = listing.pages(query_text, offsets)
            new = []
            for page in pages:
                for item in page["page"]["tracks"]["items"]:
                    row = parse_track(item) if item else None
                    if row and row["track_id"] not in seen and len(seen) < n_tracks:
                        seen.add(row["track_id"])
                        new.append(row)
            yield pd.DataFrame(new)
            next_offset = offsets[-1] + SEARCH_PAGE_LIMIT
            exhausted = (playlist is not None or next_offset >= SEARCH_MAX_RESULTS
                         or not pages[-1]["page"]["tracks"].get("next"))


def _next_offsets(start: int, n_wanted: int) -> list[int]:
    """Offsets of the pages from ``start`` that could hold ``n_wanted`` more tracks (below 1000)."""
    n_pages = math.ceil(n_wanted / SEARCH_PAGE_LIMIT)
    return list(range(start, min(start + n_pages * SEARCH_PAGE_LIMIT, SEARCH_MAX_RESULTS), SEARCH_PAGE_LIMIT))


@dataclass(frozen=True)
class _SearchedSource(Source):
    """A source that lists ``n_tracks`` tracks "released in ``year``" through a
    Spotify-compatible API, which also gives their features and previews."""

    n_tracks: int = 1000
    year: int = 2020
    api: SpotifyApi | None = None

    fetches_features = True
    fetches_audio = True
    feature_sets = ("spotify", "aubio")

    def expected_tracks(self) -> int:
        return self.n_tracks


@dataclass(frozen=True)
class SpotifySource(_SearchedSource):
    """Spotify's tracks of a year (search ``year:<year>``) or of a playlist.

    Credentials come from ``SPOTIPY_CLIENT_ID`` / ``SPOTIPY_CLIENT_SECRET`` or Prefect Secret
    blocks, resolved inside the tasks; hosts from ``SONGMIX_SPOTIFY_*_URL``.
    """

    playlist: str | None = None

    @property
    def name(self) -> str:
        return "spotify"

    def parameters(self) -> dict[str, object]:
        return {"n_tracks": self.n_tracks, "year": self.year, "playlist": self.playlist}

    def run_name(self) -> str:
        return f"spotify-{self.playlist or self.year}-{self.n_tracks}"

    def check(self) -> None:
        if self.playlist:
            playlist_id_from_ref(self.playlist)

    @contextlib.contextmanager
    def opened(
        self, data_dir: Path, *, progress: Callable[[int, int], None] | None = None
    ) -> Iterator[SpotifySource]:
        yield dataclasses.replace(self, api=SpotifyApi(SpotifyEndpoints.from_env(), "spotify", "spotify"))

    def track_batches(self, listing: Listing) -> Iterator[TrackBatch]:
        playlist = playlist_id_from_ref(self.playlist) if self.playlist else None
        for tracks in search_track_batches(listing, query=f"year:{self.year}",
                                           n_tracks=self.n_tracks, playlist=playlist):
            yield {"tracks": tracks}


@dataclass(frozen=True)
class DemoSource(_SearchedSource):
    """The built-in demo catalog: generated tracks "released in ``year``", served by a
    Spotify-compatible service on loopback, each preview rendered from its own features.

    Its ground truth (the genre-like group each track was drawn from, and its preview's
    tempo, key and mode) is stored with the tracks, in ``demo_truth``. Each rendered preview
    is also hard-linked into the audio cache, so its download keeps no second copy.
    """

    groups: int = 6
    seed: int = 2020
    audio_mismatch: bool = False

    @property
    def name(self) -> str:
        return "demo"

    def parameters(self) -> dict[str, object]:
        return {"n_tracks": self.n_tracks, "year": self.year, "demo_groups": self.groups,
                "demo_audio_mismatch": self.audio_mismatch}

    def run_name(self) -> str:
        return f"demo-{self.n_tracks}"

    @contextlib.contextmanager
    def opened(
        self, data_dir: Path, *, progress: Callable[[int, int], None] | None = None
    ) -> Iterator[DemoSource]:
        catalog = self._catalog()
        audio_paths = render_catalog_audio(catalog, Path(data_dir) / DEMO_PREVIEWS, progress=progress)
        # The downloads of these previews then find their bytes cached: each is stored once.
        for path in audio_paths.values():
            if path.stat().st_nlink == 1:
                link_into_cache(path, Path(data_dir) / AUDIO_CACHE)
        with DemoService(catalog, audio_paths) as service:
            yield dataclasses.replace(self, api=SpotifyApi(
                SpotifyEndpoints(api_url=service.api_url, accounts_url=service.accounts_url),
                "demo", f"demo:{catalog.fingerprint}"))

    def track_batches(self, listing: Listing) -> Iterator[TrackBatch]:
        listed: list[str] = []
        for tracks in search_track_batches(listing, query=f"year:{self.year}", n_tracks=self.n_tracks):
            listed += list(tracks.get("track_id", []))
            yield {"tracks": tracks}
        truth = self._catalog().truth.set_index("track_id").loc[listed].reset_index()
        yield {"demo_truth": truth.rename(columns={"group": "group_id"})[
            ["track_id", "group_id", "group_name", "tempo", "key", "mode"]]}

    def _catalog(self) -> DemoCatalog:
        return _demo_catalog(self.n_tracks, self.groups, self.year, self.seed, self.audio_mismatch)


@functools.lru_cache(maxsize=2)
def _demo_catalog(n_tracks: int, groups: int, year: int, seed: int, audio_mismatch: bool) -> DemoCatalog:
    """The catalog, generated once per process (opening the source and listing share it)."""
    return generate_catalog(n_tracks, n_groups=groups, year=year, seed=seed, audio_mismatch=audio_mismatch)
