"""``songmix report``: one run's answer as a self-contained HTML page and a Markdown file,
built only from the warehouse (works for any stored run, refits nothing)."""

from __future__ import annotations

import argparse
from pathlib import Path

from songmix.cli.options import add_db_argument, db_path

NAME = "report"
HELP = "write the comparison report of a run (HTML with embedded plots, and Markdown)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=None,
                        help="the run to report (default: the latest run that fitted models)")
    add_db_argument(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for report.html, report.md and the Markdown's plots "
                        "(default $SONGMIX_OUT_DIR or ./songmix-out)")


def write_report(database: Path, out_dir: Path, *, run_id: str | None = None):
    """Render the report of ``run_id`` (default the latest) into ``out_dir``: a
    :class:`~songmix.analysis.report.WrittenReport` (the report, its HTML and Markdown files
    and its plots folder)."""
    from songmix.analysis.report import REPORT_PLOTS, build_report
    from songmix.warehouse.reads import report_tables

    return build_report(report_tables(database, run_id), plot_folder=REPORT_PLOTS).save(out_dir)


def main(args: argparse.Namespace) -> int:
    from songmix.flows.settings import default_out_dir, validate_out_dir

    validate_out_dir(args.out or default_out_dir())
    written = write_report(db_path(args), args.out or default_out_dir(), run_id=args.run)
    print(f"{written.report.headline}\nreport: {written.html}\nmarkdown: {written.markdown}")
    return 0
