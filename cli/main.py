"""The ``songmix`` command line.

Each command is a module of this package with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``main(args) -> int``; :data:`COMMANDS` lists them. Expected failures (bad arguments, a
missing or locked warehouse, an unreadable file, a provider that is down, refuses or rate
limits) become one line on stderr and exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version

EXIT_USAGE = 2

#: Command modules, in the order ``songmix --help`` lists them.
COMMANDS = ("run", "import-csv", "predict", "extract", "report", "runs", "sql", "schema", "export", "serve")


def _command(name: str):
    return importlib.import_module(f"songmix.cli.{name.replace('-', '_')}")


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (no usage block) like other errors."""

    def error(self, message: str):
        option, _, reason = message.partition(": ")
        if option.startswith("argument ") and option.removeprefix("argument ") in reason:
            message = reason  # the check's own words name the option already
        self.exit(EXIT_USAGE, f"songmix: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="songmix",
        description="Cluster songs by Spotify's audio features and by Aubio features computed "
        "from their audio, and measure how closely the two agree.",
    )
    parser.add_argument("--version", action="version", version=f"songmix {version('songmix')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _command(name)
        module.add_arguments(commands.add_parser(module.NAME, help=module.HELP,
                                                 description=module.HELP))
    return parser


def _quiet_libraries() -> None:
    """Runs still log to the Prefect API/UI; the terminal gets songmix's own progress."""
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    args = build_parser().parse_args(argv)
    from songmix.cli.errors import EXPECTED_ERRORS, network_failure_line, os_error_line

    # spotipy logs every HTTP error, expected ones too (a 403 that triggers a fallback).
    spotipy_logger = logging.getLogger("spotipy")
    spotipy_level = spotipy_logger.level
    spotipy_logger.setLevel(logging.CRITICAL)
    try:
        return _command(args.command).main(args)
    except EXPECTED_ERRORS as error:
        print(f"songmix: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (``songmix schema | head``): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if _stopped(error):  # a library turned Ctrl-C into its own error (DuckDB's "Query interrupted")
            return _interrupted(args.command)
        line = network_failure_line(error)
        if line is None and isinstance(error, OSError):  # a full disk, an unreadable file
            line = os_error_line(error)
        if line is None:
            raise
        print(f"songmix: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return _interrupted(args.command)
    finally:
        spotipy_logger.setLevel(spotipy_level)


#: Commands that run the pipeline: stopped, they keep every stage they finished.
_RUNS = ("run", "import-csv")


def _stopped(error: BaseException) -> bool:
    """Whether ``error`` was raised because of Ctrl-C or SIGTERM (a stop in its chain)."""
    from songmix.sources.http import exception_chain
    from songmix.warehouse.store import STOPS

    return any(type(link).__name__ in STOPS for link in exception_chain(error))


def _interrupted(command: str) -> int:
    print("songmix: interrupted" + ("; rerun to resume (finished stages are kept)" if command in _RUNS else ""),
          file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
