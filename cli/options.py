"""Arguments several commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from songmix.flows.settings import default_db_path


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None,
                        help="warehouse file (default $SONGMIX_DB or ./songmix.duckdb)")


def db_path(args: argparse.Namespace) -> Path:
    return args.db or default_db_path()
