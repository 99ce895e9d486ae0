"""The ``songmix`` command line.

Every command turns expected failures (bad arguments, a missing or locked warehouse, an
unreadable file) into one line on stderr and exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_USAGE = 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _k_range(text: str) -> list[int]:
    """``2-10`` or ``2,4,8`` → a list of k."""
    if "-" in text:
        low, high = (int(part) for part in text.split("-", 1))
        ks = list(range(low, high + 1))
    else:
        ks = [int(part) for part in text.split(",")]
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"every k must be at least 1 (got {text})")
    return ks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="songmix",
        description="Cluster songs by Spotify's audio features and by Aubio features computed "
        "from their audio, and measure how closely the two agree.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_db(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--db", type=Path, default=None,
                         help="warehouse file (default $SONGMIX_DB or ./songmix.duckdb)")

    run = commands.add_parser("run", help="run the whole pipeline (the built-in demo by default)")
    run.add_argument("--source", choices=("demo", "spotify"), default="demo",
                     help="demo: built-in catalog served on loopback (default); spotify: the "
                     "Spotify Web API with SPOTIPY_CLIENT_ID/SPOTIPY_CLIENT_SECRET")
    run.add_argument("--year", type=int, default=2020, help="release year to search (default 2020)")
    run.add_argument("--tracks", type=int, default=1000, help="number of tracks (default 1000)")
    run.add_argument("--k", type=int, default=None,
                     help="number of clusters to use (default: chosen by BIC)")
    run.add_argument("--ks", type=_k_range, default=list(range(2, 11)),
                     help="k to try for the BIC curve, e.g. 2-10 (default) or 2,4,8")
    run.add_argument("--seeds", type=int, default=10, help="EM seeds per k (default 10)")
    run.add_argument("--demo-groups", type=_positive_int, default=6,
                     help="genre-like groups in the demo catalog (default 6)")
    add_db(run)
    run.add_argument("--data-dir", type=Path, default=None,
                     help="audio cache (default $SONGMIX_DATA_DIR or ~/.cache/songmix)")
    run.add_argument("--out", type=Path, default=None,
                     help="folder for plots (default $SONGMIX_OUT_DIR or ./songmix-out)")
    run.add_argument("--quiet", action="store_true", help="no progress display (scheduled use)")

    predict = commands.add_parser(
        "predict", help="cluster probabilities of one song under both models of the latest run")
    predict.add_argument("song", help="a track id in the warehouse, or an audio file")
    add_db(predict)

    sql = commands.add_parser("sql", help="run one read-only SQL query on the warehouse")
    sql.add_argument("query")
    add_db(sql)
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")

    schema = commands.add_parser("schema", help="print every table and view, documented")
    add_db(schema)
    return parser


def _fail(message: str) -> int:
    print(f"songmix: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Quiet Prefect's console before it is imported: runs still log to the Prefect API/UI,
    # the terminal gets songmix's own progress and summary.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from songmix.cli import commands

    handler = {"run": commands.run, "predict": commands.predict, "sql": commands.sql,
               "schema": commands.schema}[args.command]
    try:
        return handler(args)
    except commands.EXPECTED_ERRORS as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return _fail("interrupted; rerun to resume (finished stages are kept)")


if __name__ == "__main__":
    sys.exit(main())
