"""``songmix run``: the pipeline on any source, the built-in demo by default."""

from __future__ import annotations

import argparse
from pathlib import Path

from songmix.cli.options import add_db_argument, db_path
from songmix.flows.settings import DEFAULT_KS

NAME = "run"
HELP = "run the pipeline on a source (the built-in demo catalog by default)"


def _k_range(text: str) -> list[int]:
    """``2-10`` or ``2,4,8`` → a list of k."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            ks = list(range(low, high + 1))
        else:
            ks = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a range like 2-10 or a list like 2,4,8, got {text!r}")
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"every k must be at least 1 (got {text})")
    return ks


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """The clustering options every way of starting a run shares."""
    parser.add_argument("--k", type=int, default=None,
                        help="number of clusters to use (default: the k with the lowest BIC)")
    parser.add_argument("--ks", type=_k_range, default=DEFAULT_KS,
                        help="k to fit for the BIC curve, e.g. 2-10 (default) or 2,4,8")
    parser.add_argument("--seeds", type=int, default=10, help="EM seeds per k (default 10)")
    parser.add_argument("--no-fit", action="store_true", help="only store the data; do not cluster it")
    add_db_argument(parser)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="audio cache (default $SONGMIX_DATA_DIR or ~/.cache/songmix)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for plots (default $SONGMIX_OUT_DIR or ./songmix-out)")
    parser.add_argument("--quiet", action="store_true", help="no progress display (scheduled use)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="demo", metavar="SOURCE",
                        help="demo: built-in catalog served on loopback (default); spotify: the "
                        "Spotify Web API with SPOTIPY_CLIENT_ID / SPOTIPY_CLIENT_SECRET; csv:FILE: "
                        "a Spotify-schema data set; dir:PATH: your own audio files; run:ID or "
                        "run:latest: an earlier run's tracks, re-clustered from the warehouse")
    parser.add_argument("--audio-dir", type=Path, default=None, metavar="DIR",
                        help="short for --source dir:DIR (compared with DIR/truth.csv if present)")
    parser.add_argument("--year", type=int, default=2020, help="release year to search (default 2020)")
    parser.add_argument("--playlist", default=None, metavar="ID_OR_URL",
                        help="with --source spotify: take this playlist's tracks instead of the year search")
    parser.add_argument("--tracks", type=int, default=1000,
                        help="number of tracks of demo or spotify (default 1000)")
    parser.add_argument("--name", default=None,
                        help="with csv:FILE, the data set's name; the run's source is csv:NAME "
                        "(default: the file name)")
    parser.add_argument("--demo-groups", type=int, default=6,
                        help="genre-like groups in the demo catalog (default 6)")
    add_fit_arguments(parser)


def main(args: argparse.Namespace) -> int:
    source = f"dir:{args.audio_dir}" if args.audio_dir is not None else args.source
    return run_pipeline(args, source=source, n_tracks=args.tracks, year=args.year,
                        playlist=args.playlist, dataset=args.name, demo_groups=args.demo_groups)


def run_pipeline(args: argparse.Namespace, *, source: str, **source_options) -> int:
    """Check, then run the pipeline in this process with the progress shown on stderr;
    prints the run's summary. Every process the run starts ends with it, and Ctrl-C or
    SIGTERM stops it within seconds (:mod:`songmix.flows.lifecycle`)."""
    from songmix.cli.progress import showing_progress
    from songmix.flows.lifecycle import ending_with_this_process, stopping_on_signals
    from songmix.flows.pipeline import pipeline, source_of, validate_parameters
    from songmix.flows.settings import local_run_settings
    from songmix.warehouse.connection import validate_path

    parameters = dict(source=source, **source_options, fit=not args.no_fit, k=args.k, ks=args.ks,
                      n_seeds=args.seeds, db_path=db_path(args), data_dir=args.data_dir,
                      out_dir=args.out)
    # Checked here, before Prefect starts (seconds): bad input fails at once.
    validate_parameters(source_of(parameters), k=args.k, ks=args.ks, n_seeds=args.seeds)
    validate_path(parameters["db_path"], for_writing=True)
    with (ending_with_this_process(), stopping_on_signals(interrupt=_interrupt_work),
          showing_progress(quiet=args.quiet, title=f"songmix: {source} → {parameters['db_path']}"),
          local_run_settings()):
        summary = pipeline(**parameters)
    print(summary.as_text())
    return 0


def _interrupt_work() -> None:
    """Cut what a stopping run waits on: the database statement and the transfers in flight."""
    from songmix.sources.http import interrupt_network
    from songmix.warehouse.connection import interrupt_open_connections

    interrupt_open_connections()
    interrupt_network()
