"""``songmix import-csv FILE``: short for ``songmix run --source csv:FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path

from songmix.cli.run import add_fit_arguments, run_pipeline

NAME = "import-csv"
HELP = ("load a Spotify-schema CSV data set (track_id/id, track_name/name, artists, the audio "
        "features; optional album_name, duration_ms, year, track_genre) and cluster it")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the CSV file")
    parser.add_argument("--name", default=None,
                        help="data set name; the run's source is csv:NAME (default: the file name)")
    add_fit_arguments(parser, ("spotify",))


def main(args: argparse.Namespace) -> int:
    return run_pipeline(args, ("spotify",), source=f"csv:{args.file}", dataset=args.name)
