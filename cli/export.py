"""``songmix export``: every table and view of the warehouse as Parquet or CSV files."""

from __future__ import annotations

import argparse
from pathlib import Path

from songmix.cli.options import add_db_argument, db_path

NAME = "export"
HELP = "write every table and view of the warehouse to a folder (Parquet or CSV)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="folder for the files (created if missing)")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet",
                        help="file format (default parquet)")
    add_db_argument(parser)


def main(args: argparse.Namespace) -> int:
    from songmix.flows.lifecycle import stopping_on_signals
    from songmix.warehouse.query import export_warehouse

    with stopping_on_signals():  # a stop interrupts the copy at once
        written = export_warehouse(db_path(args), args.directory, file_format=args.format)
    for name, n_rows in written.items():
        print(f"{n_rows:>10}  {args.directory / f'{name}.{args.format}'}")
    return 0
