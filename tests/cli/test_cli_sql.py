"""``songmix sql`` output: whole values in a pipe, NULL apart from NaN, four formats; ``schema
TABLE``; ``--version``."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from importlib.metadata import version

import pandas as pd
import pytest

from songmix.cli.main import main
from songmix.cli.sql import readable_float
from songmix.warehouse.store import Warehouse

LONG_NAME = "a run name long enough to be cut at eighty columns by a terminal table renderer " * 2
QUERY = ("select name, null::double as missing, 'nan'::double as not_a_number, "
         "0.76543210987654::double as share, -1523456.789::double as bic from tracks order by name")


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sql") / "w.duckdb"
    Warehouse(path).write({"tracks": pd.DataFrame({
        "track_id": ["a", "b"], "name": [LONG_NAME, "=HYPERLINK(\"http://x\")|b"], "artists": "x",
        "run_id": "r1"})})
    return path


def _sql(warehouse_path, capsys, *arguments: str) -> str:
    assert main(["sql", *arguments, "--db", str(warehouse_path)]) == 0
    return capsys.readouterr().out


def test_a_table_in_a_pipe_holds_every_value_whole_and_null_as_null(warehouse_path, capsys):
    lines = _sql(warehouse_path, capsys, QUERY).splitlines()
    assert lines[0].split() == ["name", "missing", "not_a_number", "share", "bic"]
    row = next(line for line in lines if line.startswith("a run"))
    assert LONG_NAME.strip() in row  # whole, not "a run na…", and on one line
    assert row.split()[-4:] == ["NULL", "nan", "0.765432", "-1523457"]
    assert lines[-1] == "(2 rows)"


def test_markdown_is_a_pipe_table_of_literal_text(warehouse_path, capsys):
    lines = _sql(warehouse_path, capsys, QUERY, "--format", "markdown").splitlines()
    assert lines[0] == "| name | missing | not_a_number | share | bic |"
    assert lines[1] == "|---|---:|---:|---:|---:|"
    assert lines[2] == '| =HYPERLINK("http://x")\\|b | NULL | nan | 0.765432 | -1523457 |'


def test_csv_keeps_every_digit_leaves_null_empty_and_is_spreadsheet_safe(warehouse_path, capsys):
    rows = list(csv.reader(io.StringIO(_sql(warehouse_path, capsys, QUERY, "--format", "csv"))))
    assert rows[1] == ["'=HYPERLINK(\"http://x\")|b", "", "nan", "0.76543210987654", "-1523456.789"]
    assert rows[2][0] == LONG_NAME


def test_json_keeps_every_digit_and_null_as_null(warehouse_path, capsys):
    rows = json.loads(_sql(warehouse_path, capsys, QUERY, "--format", "json"))
    assert rows[1] == {"name": LONG_NAME, "missing": None, "not_a_number": "nan",
                       "share": 0.76543210987654, "bic": -1523456.789}


def test_control_characters_in_values_print_escaped(warehouse_path, capsys):
    out = _sql(warehouse_path, capsys, "select chr(27) || '[2J' || chr(10) || 'x' as v")
    assert "\x1b" not in out and "\\x1b[2J\\nx" in out


@pytest.mark.parametrize(("value", "shown"), [
    (0.76543210987, "0.765432"), (92.123456789, "92.1235"), (-1523456.789, "-1523457"),
    (120.0, "120"), (1e-7, "1e-07"), (1e20, "1e+20"), (0.0, "0"), (float("inf"), "inf")])
def test_readable_floats_keep_six_significant_digits_and_every_integer_digit(value, shown):
    assert readable_float(value) == shown


def test_schema_of_one_table_lists_only_its_columns(warehouse_path, capsys):
    assert main(["schema", "tracks", "--db", str(warehouse_path)]) == 0
    out = capsys.readouterr().out
    assert "tracks (table)" in out and "track_id" in out
    assert "gmm_assignments" not in out


def test_schema_of_an_unknown_table_names_the_ones_there_are(warehouse_path, capsys):
    assert main(["schema", "trakcs", "--db", str(warehouse_path)]) == 2
    error = capsys.readouterr().err
    assert "no table or view 'trakcs'" in error and "tracks" in error and error.count("\n") == 1


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"songmix {version('songmix')}"


def test_ctrl_c_stops_a_long_query_in_one_line_within_seconds(warehouse_path):
    """A join DuckDB runs as long tasks (it looks for Ctrl-C only between them) is interrupted
    at once; one line, status 130."""
    # Ctrl-C as in a terminal: a shell that runs the tests in the background starts them with
    # SIGINT ignored, and Python keeps an inherited SIG_IGN.
    script = ("import signal, sys; from songmix.cli.main import build_parser, main; import songmix.cli.sql; "
              "signal.signal(signal.SIGINT, signal.default_int_handler); "
              "build_parser(); print('ready', flush=True); "
              f"sys.exit(main(['sql', '--db', {str(warehouse_path)!r}, "
              "'select count(*) from range(100000000000) a, range(1000) b']))")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "ready\n"
        time.sleep(1.0)  # the query is running
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
        stopped_after = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 130
    assert stderr == "songmix: interrupted\n"
    assert stopped_after < 5
