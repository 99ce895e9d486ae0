"""Stage progress: listeners see every step, and a stage that finds more work never passes 100%."""

from __future__ import annotations

import io
import time

from rich.console import Console

from songmix.cli.progress import PlainProgress, TerminalProgress
from songmix.flows.progress import listening, stage


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def stage_started(self, stage: str, total: int) -> None:
        self.events.append(("started", stage, total))

    def stage_advanced(self, stage: str, done: int, total: int) -> None:
        self.events.append(("advanced", stage, done, total))

    def stage_finished(self, stage: str, summary: str) -> None:
        self.events.append(("finished", stage, summary))


def test_a_stage_that_finds_more_work_grows_its_total_instead_of_passing_100_percent():
    recorder = Recorder()
    with listening(recorder):
        pages = stage("search pages", 3)
        pages.advance(2)
        pages.advance(2)  # a fourth page, fetched to replace duplicate tracks
        pages.finish("4 pages")
    assert recorder.events == [
        ("started", "search pages", 3),
        ("advanced", "search pages", 2, 3),
        ("advanced", "search pages", 4, 4),
        ("finished", "search pages", "4 pages"),
    ]


def test_the_terminal_bar_follows_a_growing_total():
    terminal = TerminalProgress(Console(file=io.StringIO()))
    with terminal, listening(terminal):
        pages = stage("search pages", 3)
        pages.advance(5)
        (task,) = terminal._bars.tasks
        assert (task.completed, task.total) == (5, 5)


def test_a_finished_stage_is_one_line_however_long_outside_a_terminal():
    """A pipe or a log file gets no hard wrap at 80 columns ("ARI \\n0.765")."""
    written = io.StringIO()
    terminal = TerminalProgress(Console(file=written, width=80))
    summary = "Aubio's clustering agrees with Spotify's more than chance: ARI 0.765 (95% interval 0.6–0.9)"
    with terminal, listening(terminal):
        stage("comparison", 1).finish(summary)
    assert [line for line in written.getvalue().splitlines() if line.strip()] == [f"✓ comparison: {summary}"]


def test_a_running_stage_says_how_far_it_is_at_every_interval_in_a_pipe():
    """A log file shows a long stage is alive: a line per interval, then its end."""
    written = io.StringIO()
    plain = PlainProgress(written, interval_s=0.05)
    with plain, listening(plain):
        rows = stage("tracks", 1000)
        rows.advance(400)
        deadline = time.monotonic() + 10
        while written.getvalue().count("after") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        rows.finish("1000 tracks")
    lines = written.getvalue().splitlines()
    assert lines[0] == "songmix: tracks: started, 1000 to do"
    assert sum(line.startswith("songmix: tracks: 400/1000 after ") for line in lines) >= 2
    assert lines[-1].startswith("songmix: tracks: done in ") and lines[-1].endswith(": 1000 tracks")
