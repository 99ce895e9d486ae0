"""Stage progress and results, reported to whoever listens: the terminal and the Prefect UI.

Flows call :func:`stage` and :func:`advance`; the CLI registers a terminal listener, and
every run also keeps, per stage, a Prefect progress artifact up to date and a table artifact
of the stage's counts (visible on the flow run's page). :func:`publish_report` adds the
run's report as markdown with its plots embedded.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Protocol
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger


class ProgressListener(Protocol):
    def stage_started(self, stage: str, total: int) -> None: ...

    def stage_advanced(self, stage: str, done: int, total: int) -> None: ...

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
        self.summary = ""
        self._artifact_id: UUID | None = None
        if FlowRunContext.get() is not None and total > 0:
            self._artifact_id = create_progress_artifact(
                progress=0.0, key=artifact_key(name), description=f"{name}: {total} items",
            )
        for listener in list(_listeners):
            listener.stage_started(name, total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        # A stage may find more work than it planned (search pages fetched to replace tracks
        # that turned out to be duplicates): the total grows, so progress never passes 100%.
        self.total = max(self.total, self.done)
        if self._artifact_id is not None:
            update_progress_artifact(self._artifact_id, progress=100.0 * self.done / self.total)
        for listener in list(_listeners):
            listener.stage_advanced(self.name, self.done, self.total)

    def finish(self, summary: str) -> None:
        self.summary = summary
        run_logger().info("%s: %s", self.name, summary)
        publish_table(f"{artifact_key(self.name)}-summary", summary_counts(summary),
                      description=f"{self.name}: {summary}")
        for listener in list(_listeners):
            listener.stage_finished(self.name, summary)


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The current Prefect run's logger (its log in the UI), or ``songmix``'s outside a run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("songmix")


def artifact_key(name: str) -> str:
    """``name`` as a Prefect artifact key (lowercase letters, digits and dashes)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def summary_counts(summary: str) -> list[dict]:
    """A stage summary such as ``"58 downloaded, 0 already stored, 2 failed"`` as table rows
    ``{"what": ..., "count": ...}``; empty unless every part starts with a count."""
    parts = [part.strip() for part in re.split(r"[,;]", summary) if part.strip()]
    counted = [re.fullmatch(r"(\d+) (.+)", part) for part in parts]
    if not parts or not all(counted):
        return []
    return [{"what": match[2], "count": int(match[1])} for match in counted]


def publish_table(key: str, rows: list[dict], *, description: str) -> None:
    """A table artifact on the current flow run's page (nothing outside a run or without rows)."""
    if FlowRunContext.get() is not None and rows:
        create_table_artifact(rows, key=artifact_key(key), description=description)


def publish_report(markdown: str, *, key: str = "songmix-report") -> None:
    """The run's report as a markdown artifact (its plots embedded as ``data:`` URIs, so the
    run's page shows them without access to the worker's disk)."""
    if FlowRunContext.get() is None:
        return
    create_markdown_artifact(markdown, key=artifact_key(key), description="The run's report, with its plots")


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
