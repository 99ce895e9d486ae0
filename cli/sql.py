"""``songmix sql``: one read-only query, printed as a table, CSV or JSON."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from songmix.cli.options import add_db_argument, db_path

NAME = "sql"
HELP = "run one read-only SQL query on the warehouse (waits briefly if a run is writing)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help='e.g. "select count(*) from tracks"')
    add_db_argument(parser)
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")


def print_frame(frame: pd.DataFrame, *, output_format: str = "table") -> None:
    if output_format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif output_format == "json":
        print(frame.to_json(orient="records", date_format="iso"))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table()
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.itertuples(index=False):
            table.add_row(*("" if value is None else str(value) for value in row))
        Console().print(table)


def main(args: argparse.Namespace) -> int:
    from songmix.warehouse.query import run_query

    print_frame(run_query(db_path(args), args.query), output_format=args.format)
    return 0
