"""``songmix sql``: one read-only query, printed as a table, Markdown, CSV or JSON.

Every value is printed whole, whatever the terminal's width (a pipe or a file gets the same
lines), and SQL NULL prints as ``NULL`` (``null`` in JSON, an empty field in CSV) so it is
never mistaken for a float NaN. The table and Markdown round floats to six significant digits
(all digits before the decimal point are kept) and show control characters escaped, so a value
cannot move the cursor or break a row; CSV and JSON keep every digit.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime
import decimal
import json
import math
import sys
from collections.abc import Callable

from songmix.cli.options import add_db_argument, db_path

NAME = "sql"
HELP = "run one read-only SQL query on the warehouse (waits briefly if a run is writing)"
FORMATS = ("table", "csv", "json", "markdown")
#: Significant digits of floats in the table and Markdown formats.
READABLE_DIGITS = 6
_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7f)} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help='e.g. "select count(*) from tracks"')
    add_db_argument(parser)
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table: aligned columns (default); markdown: a pipe table; csv: a "
                        "header then one line per row; json: an array of objects")


def main(args: argparse.Namespace) -> int:
    from songmix.flows.lifecycle import stopping_on_signals
    from songmix.warehouse.query import query_rows

    with stopping_on_signals():  # a stop interrupts the query at once
        result = query_rows(db_path(args), args.query)
    WRITERS[args.format](result.columns, result.types, result.rows)
    return 0


# ------------------------------------------------------------------------------ table, markdown
def readable_float(value: float) -> str:
    """``value`` with :data:`READABLE_DIGITS` significant digits and every integer digit:
    ``0.765432``, ``92.1235``, ``-1523457``; scientific below 1e-4 and from 1e15."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -4 or magnitude >= 15:
        return f"{value:.{READABLE_DIGITS}g}"
    text = f"{value:.{max(0, READABLE_DIGITS - 1 - magnitude)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _readable(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return readable_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_readable(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_readable(item)}" for key, item in value.items()) + "}"
    return str(value).translate(_CONTROL_ESCAPES)


def _is_numeric(type_name: str) -> bool:
    return type_name.split("(")[0] in {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL"}


def write_table(columns: list[str], types: list[str], rows: list[tuple]) -> None:
    """Aligned columns, numbers to the right, a dashed rule under the header; no width limit."""
    header = [_readable(column) for column in columns]
    cells = [[_readable(value) for value in row] for row in rows]
    widths = [max([len(header[i]), *(len(row[i]) for row in cells)]) for i in range(len(columns))]
    numeric = [_is_numeric(type_name) for type_name in types]

    def line(values: list[str]) -> str:
        return "  ".join(value.rjust(width) if right else value.ljust(width)
                         for value, width, right in zip(values, widths, numeric)).rstrip()

    lines = [line(header), "  ".join("-" * width for width in widths)]
    lines += [line(row) for row in cells]
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    sys.stdout.write("\n".join(lines) + "\n")


def write_markdown(columns: list[str], types: list[str], rows: list[tuple]) -> None:
    """A GitHub-style pipe table of literal text (as the report's tables: no tag, link or
    image from a value)."""
    from songmix.analysis.report import markdown_text

    def line(values: list[str]) -> str:
        return "| " + " | ".join(map(markdown_text, values)) + " |"

    lines = [line([_readable(column) for column in columns]),
             "|" + "|".join("---:" if _is_numeric(t) else "---" for t in types) + "|"]
    lines += [line([_readable(value) for value in row]) for row in rows]
    sys.stdout.write("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------- csv, json
def _exact(value: object) -> object:
    """A JSON-ready value: NULL ``None``, non-finite floats as text, every digit kept."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_exact(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _exact(item) for key, item in value.items()}
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _csv_field(value: object) -> str:
    from songmix.warehouse.query import spreadsheet_safe

    if value is None:
        return ""
    if isinstance(value, str):
        return spreadsheet_safe(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_exact(value), ensure_ascii=False)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def write_csv(columns: list[str], types: list[str], rows: list[tuple]) -> None:
    """A header, then one line per row: NULL an empty field, text spreadsheet-safe
    (:func:`songmix.warehouse.query.spreadsheet_safe`), floats with every digit."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_field(value) for value in row] for row in rows)


def write_json(columns: list[str], types: list[str], rows: list[tuple]) -> None:
    """An array of objects, one per row, keyed by column name."""
    json.dump([dict(zip(columns, (_exact(value) for value in row))) for row in rows],
              sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


WRITERS: dict[str, Callable[[list[str], list[str], list[tuple]], None]] = {
    "table": write_table, "markdown": write_markdown, "csv": write_csv, "json": write_json}
