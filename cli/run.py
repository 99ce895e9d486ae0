"""``songmix run``: the whole pipeline, the built-in demo by default."""

from __future__ import annotations

import argparse
from pathlib import Path

from songmix.cli.options import add_db_argument, db_path

NAME = "run"
HELP = "run the whole pipeline (the built-in demo catalog by default)"


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=("demo", "spotify"), default="demo",
                        help="demo: built-in catalog served on loopback (default); spotify: the "
                        "Spotify Web API with SPOTIPY_CLIENT_ID / SPOTIPY_CLIENT_SECRET")
    parser.add_argument("--year", type=int, default=2020, help="release year to search (default 2020)")
    parser.add_argument("--playlist", default=None, metavar="ID_OR_URL",
                        help="with --source spotify: take this playlist's tracks instead of the year search")
    parser.add_argument("--tracks", type=int, default=1000, help="number of tracks (default 1000)")
    parser.add_argument("--k", type=int, default=None,
                        help="number of clusters to use (default: the k with the lowest BIC)")
    parser.add_argument("--ks", type=_k_range, default=list(range(2, 11)),
                        help="k to fit for the BIC curve, e.g. 2-10 (default) or 2,4,8")
    parser.add_argument("--seeds", type=int, default=10, help="EM seeds per k (default 10)")
    parser.add_argument("--demo-groups", type=int, default=6,
                        help="genre-like groups in the demo catalog (default 6)")
    add_db_argument(parser)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="audio cache (default $SONGMIX_DATA_DIR or ~/.cache/songmix)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for plots (default $SONGMIX_OUT_DIR or ./songmix-out)")
    parser.add_argument("--quiet", action="store_true", help="no progress display (scheduled use)")
    parser.add_argument("--audio-dir", type=Path, default=None, metavar="DIR",
                        help="cluster your own MP3/WAV/FLAC/OGG files under DIR by their Aubio "
                        "features instead (no Spotify side; compared with DIR/truth.csv if present)")


def main(args: argparse.Namespace) -> int:
    if args.audio_dir is not None:
        from songmix.cli.audio_dir import run_audio_dir

        return run_audio_dir(args)
    from rich.console import Console

    from songmix.cli.progress import TerminalProgress
    from songmix.flows.pipeline import pipeline, validate_parameters
    from songmix.flows.progress import listening
    from songmix.flows.settings import local_run_settings
    from songmix.warehouse.connection import validate_path

    validate_parameters(n_tracks=args.tracks, k=args.k, ks=args.ks, n_seeds=args.seeds,
                        demo_groups=args.demo_groups)
    database = db_path(args)
    validate_path(database, for_writing=True)
    parameters = dict(source=args.source, year=args.year, n_tracks=args.tracks,
                      playlist=args.playlist, k=args.k, ks=args.ks, n_seeds=args.seeds,
                      demo_groups=args.demo_groups, db_path=database, data_dir=args.data_dir,
                      out_dir=args.out)
    if args.quiet:
        with local_run_settings():
            summary = pipeline(**parameters)
    else:
        console = Console(stderr=True)
        console.print(f"songmix: {args.source} source, {args.tracks} tracks → {database}")
        with TerminalProgress(console) as progress, listening(progress), local_run_settings():
            summary = pipeline(**parameters)
    print(summary.as_text())
    return 0
