"""Where songmix keeps things, read from the environment at the edge.

``SONGMIX_DB``        the warehouse file (default ``./songmix.duckdb``)
``SONGMIX_DATA_DIR``  audio cache and rendered demo previews (default ``~/.cache/songmix``)
``SONGMIX_OUT_DIR``   plots and reports (default ``./songmix-out``)
"""

from __future__ import annotations

import os
from pathlib import Path


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
