"""``songmix extract FILE...``: the Aubio features of audio files, one row per file.

Rows go to stdout as CSV (default) or JSON as each file is analysed: ``file``, ``tempo``
(BPM), ``key`` (pitch class with sharps: C, C#, ... B; "none" when no key is audible),
``mode`` (major/minor/none), ``flags``, then every other feature of the feature table
(``songmix.audio.features.FEATURE_TABLE``). A file that cannot be analysed prints its reason
on stderr, the others still print, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

NAME = "extract"
HELP = "print the Aubio features of audio files (tempo, key, mode, ...), one row per file"
EXIT_SOME_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="MP3, WAV, FLAC or OGG files (8-48 kHz, mono or stereo)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv",
                        help="csv: a header then one line per file (default); json: one JSON "
                        "object per line")


def main(args: argparse.Namespace) -> int:
    from songmix.audio.features import AUBIO_FEATURE_COLUMNS, extract_file

    columns = ["file", "tempo", "key", "mode", "flags",
               *(c for c in AUBIO_FEATURE_COLUMNS if c not in ("tempo", "key", "mode"))]
    writer = csv.DictWriter(sys.stdout, columns) if args.format == "csv" else None
    if writer is not None:
        writer.writeheader()
    failed = 0
    for path in args.files:
        try:
            row = feature_row(path, extract_file(path))
        except (ValueError, OSError) as error:  # AudioDecodeError is a ValueError
            print(f"songmix: {path}: {error}", file=sys.stderr)
            failed += 1
            continue
        if writer is not None:
            writer.writerow(row)
        else:
            print(json.dumps(row))
        sys.stdout.flush()
    return EXIT_SOME_FAILED if failed else 0


def feature_row(path: Path, extracted) -> dict[str, object]:
    """One output row: the file, tempo, key and mode by name, flags, then the rest."""
    from songmix.audio.features import key_name, mode_name

    values = dict(extracted.values)
    return {"file": str(path), "tempo": round(values.pop("tempo"), 2),
            "key": key_name(int(values.pop("key"))), "mode": mode_name(int(values.pop("mode"))),
            "flags": ",".join(extracted.flags), **values}
