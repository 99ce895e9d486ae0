"""One run at a time per warehouse: an advisory lock on ``<warehouse>.lock``.

DuckDB itself lets one process write at a time, but two runs interleaving their stages in
one file would still mix their reads and writes (each asks what is missing, then writes).
A run therefore holds ``fcntl.flock`` on a file beside the warehouse for its whole length; a
second run (a scheduled one, a CLI one) waits for it, logging why. The kernel releases the
lock when the holder's process dies, so a crashed run never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from songmix.warehouse.connection import WarehouseError

_POLL_INTERVAL_S = 0.2


def lock_path(db_path: Path) -> Path:
    """The lock file of warehouse ``db_path``."""
    return db_path.with_name(db_path.name + ".lock")


@contextlib.contextmanager
def holding_run_lock(
    db_path: Path, *, timeout_s: float | None = None, logger: logging.Logger | None = None
) -> Iterator[None]:
    """Hold the run lock of ``db_path`` while the block runs, waiting for it if taken.

    Parameters
    ----------
    db_path : Path
        The warehouse file (the lock is ``<db_path>.lock`` beside it).
    timeout_s : float, optional
        Give up after this long; None waits as long as the other run takes.
    logger : logging.Logger, optional
        Where to say that the run waits, and for whom.

    Raises
    ------
    WarehouseError
        The warehouse's folder is missing, or the lock stayed taken for ``timeout_s``.
    """
    path = lock_path(Path(db_path))
    if not path.parent.is_dir():
        raise WarehouseError(f"folder {path.parent} does not exist; create it or choose another --db")
    with path.open("a+") as handle:
        if not _try_lock(handle):
            holder = path.read_text().strip() or "unknown"
            (logger or logging.getLogger("songmix")).warning(
                "another songmix run (pid %s) is using %s; waiting for it to finish", holder, db_path)
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while not _try_lock(handle):
                if deadline is not None and time.monotonic() >= deadline:
                    raise WarehouseError(
                        f"another songmix run (pid {holder}) kept {db_path} for {timeout_s:.0f} s; "
                        "try again when it has finished")
                time.sleep(_POLL_INTERVAL_S)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(handle) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
