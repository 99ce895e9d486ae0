"""Where songmix keeps things, read from the environment at the edge.

``SONGMIX_DB``        the warehouse file (default ``./songmix.duckdb``)
``SONGMIX_DATA_DIR``  audio cache and rendered demo previews (default ``~/.cache/songmix``)
``SONGMIX_OUT_DIR``   plots and reports (default ``./songmix-out``)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

#: The numbers of clusters a run tries by default (the BIC chooses among them).
DEFAULT_KS = list(range(2, 11))


def default_db_path() -> Path:
    return Path(os.environ.get("SONGMIX_DB", "songmix.duckdb"))


def default_data_dir() -> Path:
    configured = os.environ.get("SONGMIX_DATA_DIR")
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "songmix"


def default_out_dir() -> Path:
    return Path(os.environ.get("SONGMIX_OUT_DIR", "songmix-out"))


@contextlib.contextmanager
def local_run_settings() -> Iterator[None]:
    """Prefect settings for a run in this process.

    Flow-run heartbeats let a Prefect server notice a crashed run. Without a configured server
    every run gets a temporary one that dies with the process, so heartbeats only cost time:
    each (sub)flow waits up to a second for its heartbeat thread to stop (~1 s per stage).
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
