"""Stage progress on the terminal: a bar per running stage, a line per finished one."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


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
