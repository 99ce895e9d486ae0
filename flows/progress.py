"""Stage progress, reported to whoever listens: the terminal and the Prefect UI.

Flows call :func:`stage` and :func:`advance`; the CLI registers a terminal listener, and
every run also keeps a Prefect progress artifact per stage up to date (visible in the UI).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Protocol
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger


class ProgressListener(Protocol):
    def stage_started(self, stage: str, total: int) -> None: ...

    def stage_advanced(self, stage: str, done: int) -> None: ...

    def stage_finished(self, stage: str, summary: str) -> None: ...


_listeners: list[ProgressListener] = []
_lock = threading.Lock()


@contextlib.contextmanager
def listening(listener: ProgressListener) -> Iterator[None]:
    """Send progress to ``listener`` while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


class StageProgress:
    """Progress of one stage: ``advance`` as items complete, ``finish`` with a summary."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, total, 0
        self._artifact_id: UUID | None = None
        if FlowRunContext.get() is not None and total > 0:
            self._artifact_id = create_progress_artifact(
                progress=0.0, key=re.sub(r"[^a-z0-9]+", "-", name.lower()),
                description=f"{name}: {total} items",
            )
        for listener in list(_listeners):
            listener.stage_started(name, total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._artifact_id is not None:
            update_progress_artifact(self._artifact_id, progress=100.0 * self.done / self.total)
        for listener in list(_listeners):
            listener.stage_advanced(self.name, self.done)

    def finish(self, summary: str) -> None:
        try:
            logger = get_run_logger()
        except MissingContextError:
            logger = logging.getLogger("songmix")
        logger.info("%s: %s", self.name, summary)
        for listener in list(_listeners):
            listener.stage_finished(self.name, summary)


def stage(name: str, total: int) -> StageProgress:
    """Start reporting progress of stage ``name`` over ``total`` items."""
    return StageProgress(name, total)


def reporter(name: str) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback reporting as stage ``name``, for library code taking one.

    The stage starts at the first call and finishes when ``done`` reaches ``total``.
    """
    started: list[StageProgress] = []

    def report(done: int, total: int) -> None:
        if not started:
            started.append(stage(name, total))
            started[0].done = done
        progress = started[0]
        if done > progress.done:
            progress.advance(done - progress.done)
        if done >= total:
            progress.finish(f"{total} ready")

    return report
