"""The one interface every source of tracks implements, and what a run asks of it.

A run asks its source, stage by stage:

1. **tracks** (every source): :meth:`Source.track_batches` yields the rows of the tracks it
   has, batch by batch, with whatever it holds for them already (a CSV's features and
   genres, a folder's files and ``truth.csv``, the demo's ground truth). The pipeline writes
   each batch as it arrives, so memory stays bounded and an interrupted listing resumes.
2. **Spotify-style features** (when :attr:`Source.fetches_features`): fetched for the
   tracks the warehouse lacks through the source's :attr:`Source.api`, a Spotify-compatible
   API (the demo serves one on loopback; ReccoBeats stands in where Spotify refuses).
3. **audio** (when :attr:`Source.fetches_audio`): each track's preview, from the URL its
   track row lists, else Deezer by ISRC.

Everything after that (Aubio extraction of whatever audio is stored, the mixtures, the
comparison, the drift) is the same for every source. A source never touches the warehouse
or Prefect: where it needs either, the pipeline hands it a :class:`Listing`.

Adding a source (a Deezer playlist, a Jamendo dump, another CSV layout): write a frozen
dataclass subclass of :class:`Source` in this package, and name it in
:func:`songmix.sources.choose.parse_source`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import pandas as pd

from songmix.sources.spotify import SpotifyEndpoints

#: Rows of a track batch, by warehouse table, without ``run_id`` (the pipeline adds it).
#: ``tracks`` holds the batch's new tracks in the source's order.
TrackBatch = dict[str, pd.DataFrame]


@dataclass(frozen=True)
class SpotifyApi:
    """A Spotify-compatible API a source's tracks can be asked about.

    Attributes
    ----------
    endpoints : SpotifyEndpoints
        Base URLs of the API and its accounts service.
    credentials : str
        ``"demo"`` (the demo service's fixed client) or ``"spotify"`` (resolved from the
        environment or Prefect Secret blocks inside the tasks, never passed).
    cache_key : str
        Identifies the catalog behind the API in task cache keys (the demo's URLs change with
        every run's port, so keys never use them).
    """

    endpoints: SpotifyEndpoints
    credentials: str
    cache_key: str

    @property
    def pages_key(self) -> str:
        """Keys stored search pages: the catalog and the API address that answered them.

        A page's links (``next``, ``preview_url``) point at the server that served it. A
        loopback service such as the demo's gets a new port every run and dies with its run,
        so its pages are never reused by a later run; the same catalog at the same address
        (Spotify's) is.
        """
        return f"{self.cache_key}@{self.endpoints.api_url}"


class Listing(Protocol):
    """What the pipeline offers a source while it lists tracks."""

    def pages(self, query: str, offsets: list[int]) -> list[dict]:
        """Raw result pages of ``query`` at ``offsets``, in offset order: pages stored
        recently are reused, the rest fetched through the source's API and stored as they
        arrive. A playlist is the query ``playlist:<id>`` at offset 0."""

    def run_tracks(self, run_id: str) -> pd.DataFrame:
        """The stored ``tracks`` rows of an earlier run, in its order."""

    def latest_completed_run(self) -> str | None:
        """The newest completed run's id, or None."""

    def run_source(self, run_id: str) -> str:
        """``runs.source`` of a stored run (raises ValueError for an unknown run)."""


class Source(ABC):
    """Where a run's tracks come from, and what it can give for them.

    Implementations are frozen dataclasses of a few settings (a path, a query, a size): a
    stage receives the source as a parameter, and Prefect stores and shows it.

    Attributes
    ----------
    name : str
        ``runs.source``: runs of one name are compared with each other (drift).
    fetches_features : bool
        The source can fetch Spotify-style features through :attr:`api`.
    fetches_audio : bool
        The source lists preview URLs (or ISRCs) to download.
    feature_sets : tuple of str or None
        The feature sets (``spotify``, ``aubio``) every usable track of a run must have: a
        run with none is failed, not completed. None: whichever the run's tracks have.
    api : SpotifyApi or None
        Where features and pages are fetched; set by :meth:`opened` for API sources.
    """

    fetches_features: ClassVar[bool] = False
    fetches_audio: ClassVar[bool] = False
    feature_sets: ClassVar[tuple[str, ...] | None] = None
    api: SpotifyApi | None = None

    @property
    @abstractmethod
    def name(self) -> str:
        """``runs.source``."""

    @abstractmethod
    def parameters(self) -> dict[str, object]:
        """What ``runs.parameters`` records about the source (no secrets, no data)."""

    @abstractmethod
    def track_batches(self, listing: Listing) -> Iterator[TrackBatch]:
        """The tracks the source has, in batches of rows to store (see :data:`TrackBatch`).

        Raises
        ------
        ValueError
            The source cannot be read (a missing file, bad columns); nothing is written.
        """

    def check(self) -> None:
        """Refuse settings no run can honour, in a second, before anything is written.

        Raises
        ------
        ValueError, FileNotFoundError
        """

    def expected_tracks(self) -> int | None:
        """How many tracks the source will list, when known before listing."""
        return None

    def run_name(self) -> str:
        """A short, readable name for the run in Prefect's UI (``demo-1000``)."""
        return self.name

    def resolved(self, listing: Listing) -> Source:
        """The source with what it names resolved against the warehouse ("the latest run");
        most sources need nothing and return themselves."""
        return self

    @contextlib.contextmanager
    def opened(
        self, data_dir: Path, *, progress: Callable[[int, int], None] | None = None
    ) -> Iterator[Source]:
        """The source ready for a run (services started), stopped when the block ends.

        Parameters
        ----------
        data_dir : Path
            Where songmix keeps caches (the demo's rendered previews).
        progress : callable(done, total), optional
            Told how preparation advances, when it takes a while.
        """
        yield self
