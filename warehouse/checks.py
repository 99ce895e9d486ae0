"""Checks each write must pass before its transaction commits, declared beside each other.

Unique natural keys are the tables' PRIMARY KEYs (DuckDB refuses a duplicate at insert),
except in the tables of :data:`UNIQUE_BY_CHECK`, whose repeated keys are counted here instead;
NOT NULL columns are declared in the DDL. What the DDL cannot say lives here: values a
column may take, ranges, and columns that must be filled when another says so. A failing
check raises :class:`WarehouseError` naming table, column and the number of bad rows, and
the stage's transaction rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from songmix.warehouse.connection import WarehouseError, identifier, literal

FEATURE_SETS = ("spotify", "aubio")
MODEL_TABLES = ("model_selection", "gmm_fits", "gmm_models", "gmm_components", "gmm_assignments",
                "gmm_memberships", "seed_stability")


@dataclass(frozen=True)
class Check:
    """One column rule: ``passes`` is a SQL condition every row must satisfy.

    Attributes
    ----------
    table, column : str
        Where the rule applies (named in the error).
    rule : str
        A short name for the message (``accepted values``, ``in [0, 1]``...).
    passes : str
        SQL boolean over the table's columns; NULL counts as a failure. It is a constant of
        this module, never built from values.
    """

    table: str
    column: str
    rule: str
    passes: str


def _accepted(table: str, column: str, values: tuple[str | int, ...]) -> Check:
    accepted = "(" + ", ".join(literal(value) for value in values) + ")"
    return Check(table, column, f"accepted values {accepted}", f"{identifier(column)} IN {accepted}")


def _within(table: str, column: str, low: float, high: float, *, nullable: bool = False) -> Check:
    condition = f"{identifier(column)} BETWEEN {literal(low)} AND {literal(high)}"
    return Check(table, column, f"in [{low}, {high}]",
                 f"({identifier(column)} IS NULL OR {condition})" if nullable else condition)


CHECKS: tuple[Check, ...] = (
    _accepted("audio_files", "status", ("ok", "failed", "unavailable")),
    Check("audio_files", "sha256", "not null when status = 'ok'",
          "status <> 'ok' OR (sha256 IS NOT NULL AND path IS NOT NULL)"),
    Check("audio_files", "error", "not null when status <> 'ok'", "status = 'ok' OR error IS NOT NULL"),
    _accepted("item_failures", "stage", ("spotify_features", "download", "extraction", "fit", "import")),
    _accepted("spotify_features", "mode", (0, 1)),
    _within("spotify_features", "key", -1, 11),
    *(_accepted(table, "feature_set", FEATURE_SETS)
      for table in MODEL_TABLES),
    *(Check(table, "k", "k >= 1", "k >= 1")
      for table in MODEL_TABLES),
    _accepted("model_selection", "status", ("fitted", "left out", "failed")),
    _accepted("model_selection", "covariance_type", ("full", "tied", "diag", "spherical")),
    _within("gmm_components", "weight", 0, 1),
    Check("gmm_components", "component", "in [0, k)", "component >= 0 AND component < k"),
    Check("gmm_assignments", "cluster", "in [0, k)", "cluster >= 0 AND cluster < k"),
    _within("gmm_assignments", "probability", 0, 1),
    Check("gmm_memberships", "probabilities", "k values in [0, 1]",
          "len(probabilities) = k AND list_min(probabilities) >= 0 AND list_max(probabilities) <= 1"),
    _within("seed_stability", "ari_with_best", -1, 1),
    _within("comparison", "p_value", 0, 1, nullable=True),
)


#: Tables whose natural key has no PRIMARY KEY index, so the checks count repeated keys.
#: gmm_assignments is the largest table, and its index cost half of every write (migration
#: 007). Their keys start with run_id: unique within the runs written means unique.
UNIQUE_BY_CHECK = frozenset({"gmm_assignments", "gmm_memberships"})
#: The SQL function whose distinct values over a key screen it for repeats.
KEY_HASH = "hash"


def check_written(
    connection: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...], run_ids: list[str]
) -> None:
    """Run ``table``'s checks over its rows of the runs just written, in one scan (and a
    second only to confirm a repeated key the first suggests).

    Parameters
    ----------
    table : str
        An allow-listed table name.
    key : tuple of str
        Its natural key (allow-listed column names).
    run_ids : list of str
        The run ids just written (scopes the scan to new rows).

    Raises
    ------
    WarehouseError
        Some rows break a rule or repeat a key; names table, column or key, rule and the
        number of rows.
    """
    checks = [c for c in CHECKS if c.table == table]
    unique_by_check = table in UNIQUE_BY_CHECK
    if not checks and not unique_by_check:
        return
    # (SQL counting the offending rows, where, what they do) for each rule, one scan for all.
    rules = [(f"count(*) FILTER (WHERE NOT coalesce({c.passes}, false))", f"{c.table}.{c.column}",
              f"break {c.rule}") for c in checks]
    scope = f"FROM {identifier(table)} WHERE run_id IN (SELECT unnest($run_ids))"
    if unique_by_check:
        columns = ", ".join(identifier(column) for column in key)
        # Distinct 64-bit hashes of the key cost half of distinct keys; as hashes can collide,
        # a repeat they suggest is recounted on the keys themselves below.
        rules.append((f"count(*) - count(DISTINCT {KEY_HASH}({columns}))", table,
                      f"repeat a key ({', '.join(key)})"))
    parameters = {"run_ids": run_ids}
    counts = ", ".join(sql for sql, _, _ in rules)
    failing = list(connection.execute(f"SELECT {counts} {scope}", parameters).fetchone())
    if unique_by_check and failing[-1]:
        failing[-1] = connection.execute(
            f"SELECT count(*) - count(DISTINCT ({columns})) {scope}", parameters
        ).fetchone()[0]
    broken = [f"{where}: {n} rows {what}" for (_, where, what), n in zip(rules, failing, strict=True) if n]
    if broken:
        raise WarehouseError("check failed, stage not written: " + "; ".join(broken))
