"""``songmix import-csv``: load a Spotify-schema data set, then cluster it (no audio needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from songmix.cli.options import add_db_argument, db_path
from songmix.cli.run import _k_range

NAME = "import-csv"
HELP = ("load a Spotify-schema CSV data set (track_id/id, track_name/name, artists, the audio "
        "features; optional album_name, duration_ms, year, track_genre) and cluster it")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the CSV file")
    parser.add_argument("--name", default=None,
                        help="data set name; the run's source is csv:NAME (default: the file name)")
    parser.add_argument("--no-fit", action="store_true", help="only load; do not fit mixtures")
    parser.add_argument("--k", type=int, default=None,
                        help="number of clusters to use (default: the k with the lowest BIC)")
    parser.add_argument("--ks", type=_k_range, default=list(range(2, 11)),
                        help="k to fit for the BIC curve, e.g. 2-10 (default) or 2,4,8")
    parser.add_argument("--seeds", type=int, default=10, help="EM seeds per k (default 10)")
    add_db_argument(parser)


def main(args: argparse.Namespace) -> int:
    from songmix.flows.importing import import_csv_run
    from songmix.sources.csv_import import read_csv_header
    from songmix.warehouse.connection import validate_path

    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1 (got {args.seeds})")
    database = db_path(args)
    validate_path(database, for_writing=True)
    # Checked before Prefect starts (seconds): a file with missing columns fails at once.
    read_csv_header(args.file)
    summary = import_csv_run(path=args.file, name=args.name, fit=not args.no_fit, k=args.k, ks=args.ks,
                             n_seeds=args.seeds, db_path=database)
    print(summary.as_text())
    return 0
