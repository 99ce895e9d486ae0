"""``songmix runs``: the latest runs of the warehouse, their chosen models and what to
distrust about them."""

from __future__ import annotations

import argparse

from songmix.cli.options import add_db_argument, db_path

NAME = "runs"
HELP = "list the latest runs: source, status, chosen models and their warnings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--last", type=int, default=10, help="how many runs, newest first (default 10)")
    add_db_argument(parser)


def main(args: argparse.Namespace) -> int:
    from songmix.warehouse.reads import recent_runs

    if args.last < 1:
        raise ValueError(f"--last must be at least 1 (got {args.last})")
    for run in recent_runs(db_path(args), args.last).itertuples(index=False):
        models = run.models if isinstance(run.models, str) else "no models"
        print(f"{run.run_id}  {run.status:<9} {run.source}  started {run.started_at:%Y-%m-%d %H:%M}  {models}")
        for warning in run.warnings:
            print(f"    warning: {warning}")
    return 0
