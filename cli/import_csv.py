"""``songmix import-csv``: load a Spotify-schema data set, then cluster it (no audio needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from songmix.cli.options import add_db_argument, db_path
from songmix.cli.run import add_model_arguments, model_parameters

NAME = "import-csv"
HELP = ("load a Spotify-schema CSV data set (track_id/id, track_name/name, artists, the audio "
        "features; optional album_name, duration_ms, year, track_genre) and cluster it")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the CSV file")
    parser.add_argument("--name", default=None,
                        help="data set name; the run's source is csv:NAME (default: the file name)")
    parser.add_argument("--no-fit", action="store_true", help="only load; do not fit mixtures")
    add_model_arguments(parser, ("spotify",))
    add_db_argument(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the report (default $SONGMIX_OUT_DIR or ./songmix-out)")


def main(args: argparse.Namespace) -> int:
    from songmix.flows.importing import import_csv_run
    from songmix.sources.csv_import import read_csv_header
    from songmix.warehouse.connection import validate_path

    database = db_path(args)
    validate_path(database, for_writing=True)
    # Checked before Prefect starts (seconds): a file with missing columns fails at once.
    read_csv_header(args.file)
    summary = import_csv_run(path=args.file, name=args.name, fit=not args.no_fit,
                             **model_parameters(args, ("spotify",)), db_path=database, out_dir=args.out)
    print(summary.as_text())
    return 0
