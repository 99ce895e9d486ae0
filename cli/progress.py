"""Stage progress on stderr: bars on a terminal, plain lines in a pipe or a log file."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: A running stage says how far it is at least this often when the output is not a terminal.
PLAIN_INTERVAL_S = 10.0


class TerminalProgress:
    """A :class:`songmix.flows.progress.ProgressListener` drawing with rich."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bars = Progress(TextColumn("{task.description:<18}"), BarColumn(),
                              MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                              transient=True)
        self._task_ids: dict[str, int] = {}

    def __enter__(self) -> TerminalProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bars.stop()

    def stage_started(self, stage: str, total: int) -> None:
        self._task_ids[stage] = self._bars.add_task(stage, total=max(total, 1))

    def stage_advanced(self, stage: str, done: int, total: int) -> None:
        self._bars.update(self._task_ids[stage], completed=done, total=max(total, 1))

    def stage_finished(self, stage: str, summary: str) -> None:
        self._bars.remove_task(self._task_ids.pop(stage))
        # soft_wrap: one line however long, in a pipe or a log file too (a terminal wraps it)
        self._console.print(f"[green]✓[/] {stage}: {summary}", highlight=False, soft_wrap=True)


class PlainProgress:
    """A progress listener writing plain lines: one when a stage starts and ends, and for
    each running stage one line at least every ``interval_s`` seconds (how far it is and
    for how long), so a log shows a long stage is alive."""

    def __init__(self, stream: TextIO, *, interval_s: float = PLAIN_INTERVAL_S) -> None:
        self._stream, self._interval_s = stream, interval_s
        self._running: dict[str, list] = {}  # stage -> [done, total, started, last line]
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="songmix-progress", daemon=True)

    def __enter__(self) -> PlainProgress:
        self._ticker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._ticker.join()

    def stage_started(self, stage: str, total: int) -> None:
        with self._lock:
            self._running[stage] = [0, total, time.monotonic(), time.monotonic()]
        self._write(f"{stage}: started" + (f", {total} to do" if total else ""))

    def stage_advanced(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            self._running[stage][:2] = [done, total]

    def stage_finished(self, stage: str, summary: str) -> None:
        with self._lock:
            started = self._running.pop(stage, [0, 0, time.monotonic()])[2]
        self._write(f"{stage}: done in {time.monotonic() - started:.0f} s: {summary}")

    def _tick(self) -> None:
        while not self._stopped.wait(min(1.0, self._interval_s)):
            now = time.monotonic()
            with self._lock:
                due = [(stage, state[:]) for stage, state in self._running.items()
                       if now - state[3] >= self._interval_s]
                for stage, _ in due:
                    self._running[stage][3] = now
            for stage, (done, total, started, _) in due:
                self._write(f"{stage}: {done}" + (f"/{total}" if total else "")
                            + f" after {now - started:.0f} s")

    def _write(self, line: str) -> None:
        # Not print(): inside a flow run, Prefect's log_prints sends print() to the run's log.
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(f"songmix: {line}\n")
            self._stream.flush()


@contextlib.contextmanager
def showing_progress(*, quiet: bool, title: str) -> Iterator[None]:
    """Show stage progress on stderr while the block runs, and songmix's warnings (a writer
    waiting for a reader); nothing when ``quiet``."""
    from songmix.flows.progress import listening

    if quiet:
        yield
        return
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(logging.Formatter("songmix: %(message)s"))
    logging.getLogger("songmix").addHandler(warnings)
    if sys.stderr.isatty():
        console = Console(stderr=True)
        console.print(title)
        listener = TerminalProgress(console)
    else:
        print(title, file=sys.stderr, flush=True)
        listener = PlainProgress(sys.stderr)
    try:
        with listener, listening(listener):
            yield
    finally:
        logging.getLogger("songmix").removeHandler(warnings)
