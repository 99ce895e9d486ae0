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
                        help="the run to report (default: the latest run with a comparison)")
    add_db_argument(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for report.html, report.md and the Markdown's plots "
                        "(default $SONGMIX_OUT_DIR or ./songmix-out)")


def write_report(database: Path, out_dir: Path, *, run_id: str | None = None):
    """Render the report of ``run_id`` (default the latest) into ``out_dir``.

    Returns the :class:`~songmix.analysis.report.Report` and the paths written: ``html``,
    ``markdown`` and the ``plots`` folder.
    """
    from songmix.analysis.report import build_report
    from songmix.warehouse.report_reads import report_tables

    report = build_report(report_tables(database, run_id), plot_folder="report-plots")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"html": out_dir / "report.html", "markdown": out_dir / "report.md",
               "plots": out_dir / "report-plots"}
    written["plots"].mkdir(exist_ok=True)
    for figure in report.figures:
        (written["plots"] / f"{figure.name}.png").write_bytes(figure.png)
    written["html"].write_text(report.html, encoding="utf-8")
    written["markdown"].write_text(report.markdown, encoding="utf-8")
    return report, written


def main(args: argparse.Namespace) -> int:
    from songmix.flows.settings import default_out_dir

    report, written = write_report(db_path(args), args.out or default_out_dir(), run_id=args.run)
    print(f"{report.headline}\nreport: {written['html']}\nmarkdown: {written['markdown']}")
    return 0
