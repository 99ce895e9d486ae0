"""Read-only questions the real-data sources ask the warehouse (schema version 4).

Kept apart from :mod:`songmix.warehouse.store` so the writer stays one small class: these
functions only read, through :meth:`Warehouse.reading`, with every value as a parameter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from songmix.warehouse.store import Warehouse


def fresh_search_pages(
    warehouse: Warehouse, *, source_key: str, query: str, offsets: Sequence[int], since: datetime
) -> dict[int, dict]:
    """Stored pages of ``query`` at ``offsets`` fetched from this source since ``since``.

    Parameters
    ----------
    warehouse : Warehouse
    source_key : str
        The source's ``cache_key`` (``spotify``, ``demo:<fingerprint>``): pages of another
        catalog never stand in.
    query : str
        The exact search query (or ``playlist:<id>``).
    offsets : sequence of int
        Offsets wanted.
    since : datetime
        Naive UTC; older pages are stale (search results change from week to week).

    Returns
    -------
    dict
        ``{offset: {"query", "offset", "fetched_at", "page"}}`` with the newest copy of each
        page, in the shape the fetch tasks return.
    """
    with warehouse.reading() as connection:
        connection.register("wanted", pd.DataFrame({"wanted_offset": list(offsets)}, dtype="int64"))
        try:
            rows = connection.execute(
                'SELECT "offset", fetched_at, page FROM search_pages '
                'JOIN wanted ON "offset" = wanted.wanted_offset '
                "WHERE source_key = ? AND query = ? AND fetched_at >= ? "
                'QUALIFY row_number() OVER (PARTITION BY "offset" ORDER BY fetched_at DESC) = 1',
                [source_key, query, since],
            ).fetchall()
        finally:
            connection.unregister("wanted")
    return {offset: {"query": query, "offset": offset, "fetched_at": fetched_at, "page": json.loads(page)}
            for offset, fetched_at, page in rows}


def rejection_reasons(warehouse: Warehouse, run_id: str, *, top: int = 5) -> tuple[int, dict[str, int]]:
    """How many rows of an imported file the run rejected, and its ``top`` most frequent first
    reasons -> how many rows gave them."""
    with warehouse.reading() as connection:
        rows = connection.execute(
            "SELECT split_part(reason, '; ', 1) AS first, count(*) AS n FROM rejected_rows "
            "WHERE run_id = ? GROUP BY first ORDER BY n DESC, first", [run_id]).fetchall()
    return sum(n for _, n in rows), {reason: n for reason, n in rows[:top]}
