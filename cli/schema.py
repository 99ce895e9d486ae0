"""``songmix schema [NAME]``: the tables and views of the warehouse, with their documentation."""

from __future__ import annotations

import argparse

from songmix.cli.options import add_db_argument, db_path

NAME = "schema"
HELP = "print every table and view (or one, by name) with column types and descriptions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default=None, metavar="TABLE",
                        help="one table or view (default: all)")
    add_db_argument(parser)


def main(args: argparse.Namespace) -> int:
    from songmix.warehouse.query import describe_schema

    described = describe_schema(db_path(args))
    if args.name is not None:
        names = described["name"].unique()
        if args.name not in names:
            raise ValueError(f"no table or view {args.name!r} in the warehouse; it has "
                             + ", ".join(sorted(names)))
        described = described[described["name"] == args.name]
    for (kind, name), columns in described.groupby(["kind", "name"], sort=False):
        description = columns["object_description"].iloc[0]
        print(f"\n{name} ({kind}) — {description if isinstance(description, str) else ''}")
        for row in columns.itertuples(index=False):
            note = row.column_description if isinstance(row.column_description, str) else ""
            print(f"  {row.column_name:<24} {row.data_type:<12} {note}")
    return 0
