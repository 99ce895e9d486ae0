"""``songmix run --audio-dir DIR``: the run command's path for a folder of the user's audio."""

from __future__ import annotations

import argparse

from songmix.cli.options import db_path
from songmix.cli.run import model_parameters


def run_audio_dir(args: argparse.Namespace) -> int:
    """Cluster the files under ``args.audio_dir``; prints the run's summary."""
    from rich.console import Console

    from songmix.cli.progress import TerminalProgress
    from songmix.flows.audio_dir import audio_dir_pipeline
    from songmix.flows.progress import listening
    from songmix.flows.settings import default_out_dir, validate_out_dir
    from songmix.warehouse.connection import validate_path

    if not args.audio_dir.is_dir():
        raise ValueError(f"--audio-dir {args.audio_dir} is not a folder")
    validate_out_dir(args.out or default_out_dir())
    database = db_path(args)
    validate_path(database, for_writing=True)
    parameters = dict(audio_dir=args.audio_dir, **model_parameters(args, ("aubio",)),
                      db_path=database, out_dir=args.out)
    if args.quiet:
        summary = audio_dir_pipeline(**parameters)
    else:
        console = Console(stderr=True)
        console.print(f"songmix: audio files under {args.audio_dir} → {database}")
        with TerminalProgress(console) as progress, listening(progress):
            summary = audio_dir_pipeline(**parameters)
    print(summary.as_text())
    return 0
