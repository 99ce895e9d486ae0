"""What each ``songmix`` command does; ``main`` parses arguments and reports errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from songmix.audio.decode import AudioDecodeError
from songmix.cli.predict import PredictionError, predict_song
from songmix.flows.pipeline import pipeline, validate_parameters
from songmix.flows.progress import listening
from songmix.flows.settings import default_db_path
from songmix.sources.credentials import MissingCredentialsError
from songmix.warehouse.connection import WarehouseError, validate_path
from songmix.warehouse.query import describe_schema, run_query

#: Failures a user can fix; reported as one line without a traceback.
EXPECTED_ERRORS = (ValueError, WarehouseError, MissingCredentialsError, AudioDecodeError,
                   PredictionError, FileNotFoundError)


class TerminalProgress:
    """Shows each stage as a progress bar, then its one-line summary."""

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

    def stage_advanced(self, stage: str, done: int) -> None:
        self._bars.update(self._task_ids[stage], completed=done)

    def stage_finished(self, stage: str, summary: str) -> None:
        self._bars.remove_task(self._task_ids.pop(stage))
        self._console.print(f"[green]✓[/] {stage}: {summary}")


def run(args: argparse.Namespace) -> int:
    validate_parameters(n_tracks=args.tracks, k=args.k, ks=args.ks, n_seeds=args.seeds)
    db_path = args.db or default_db_path()
    validate_path(db_path, for_writing=True)
    parameters = dict(source=args.source, year=args.year, n_tracks=args.tracks, k=args.k,
                      ks=args.ks, n_seeds=args.seeds, demo_groups=args.demo_groups,
                      db_path=db_path, data_dir=args.data_dir, out_dir=args.out)
    if args.quiet:
        summary = pipeline(**parameters)
    else:
        console = Console(stderr=True)
        console.print(f"songmix: {args.source} source, {args.tracks} tracks → {db_path}")
        with TerminalProgress(console) as progress, listening(progress):
            summary = pipeline(**parameters)
    print(summary.as_text())
    return 0


def _print_frame(frame: pd.DataFrame, *, output_format: str = "table") -> None:
    if output_format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif output_format == "json":
        print(frame.to_json(orient="records", date_format="iso"))
    else:
        table = Table(show_lines=False)
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.itertuples(index=False):
            table.add_row(*("" if value is None else str(value) for value in row))
        Console().print(table)


def sql(args: argparse.Namespace) -> int:
    _print_frame(run_query(args.db or default_db_path(), args.query), output_format=args.format)
    return 0


def schema(args: argparse.Namespace) -> int:
    described = describe_schema(args.db or default_db_path())
    console = Console()
    for (kind, name, description), columns in described.groupby(
        ["kind", "name", "object_description"], sort=False, dropna=False
    ):
        console.print(f"\n[bold]{name}[/] ({kind}) — {description if isinstance(description, str) else ''}")
        for row in columns.itertuples(index=False):
            note = row.column_description if isinstance(row.column_description, str) else ""
            console.print(f"  {row.column_name:<20} {row.data_type:<12} {note}")
    return 0


def predict(args: argparse.Namespace) -> int:
    prediction = predict_song(args.db or default_db_path(), args.song)
    print(prediction.as_text())
    return 0



