"""An earlier run's tracks, as a source: re-cluster from what the warehouse holds.

Nothing is fetched: the run lists the earlier run's tracks, extracts any stored audio the
current extractor has not analysed yet, then fits and compares again (other seeds, other k,
another covariance type). It is recorded under the earlier run's source, so its drift says
how far the new clustering moved from the last run of that source.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from songmix.sources.base import Listing, Source, TrackBatch

#: ``run:latest`` names the newest completed run.
LATEST = "latest"


@dataclass(frozen=True)
class StoredRunSource(Source):
    """The tracks of run ``from_run`` (``latest``: the newest completed run)."""

    from_run: str = LATEST
    source_name: str | None = None

    @property
    def name(self) -> str:
        if self.source_name is None:
            raise ValueError("resolve the stored run first (StoredRunSource.resolved)")
        return self.source_name

    def parameters(self) -> dict[str, object]:
        return {"reclustered_from": self.from_run}

    def run_name(self) -> str:
        return f"recluster-{self.from_run[:8]}"

    def resolved(self, listing: Listing) -> StoredRunSource:
        run_id = listing.latest_completed_run() if self.from_run == LATEST else self.from_run
        if run_id is None:
            raise ValueError("the warehouse holds no completed run to re-cluster; run `songmix run` first")
        return dataclasses.replace(self, from_run=run_id, source_name=listing.run_source(run_id))

    def track_batches(self, listing: Listing) -> Iterator[TrackBatch]:
        yield {"tracks": listing.run_tracks(self.from_run)}
