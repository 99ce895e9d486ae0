"""Arguments several commands share, each checked as it is parsed (bounds:
:mod:`songmix.flows.parameters`), so a bad value stops the command before anything starts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from songmix.flows import parameters
from songmix.flows.settings import default_db_path


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None,
                        help="warehouse file (default $SONGMIX_DB or ./songmix.duckdb)")


def db_path(args: argparse.Namespace) -> Path:
    return args.db or default_db_path()


def whole_number(option: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: the text as a whole number within ``low..high``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = text
        return _as_argument_error(parameters.check_between, option, value, low, high)

    return parse


def k_list(text: str) -> list[int]:
    """An argparse ``type``: ``--ks`` (:func:`songmix.flows.parameters.parse_ks`)."""
    return _as_argument_error(parameters.parse_ks, text)


def _as_argument_error(check: Callable, *arguments):
    try:
        return check(*arguments)
    except ValueError as error:  # argparse shows an ArgumentTypeError's own words
        raise argparse.ArgumentTypeError(str(error)) from None
