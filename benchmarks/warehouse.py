"""Warehouse write and view speed, side by side.

Builds N ``gmm_assignments`` rows as the pipeline does (``records.assignment_table``, Arrow,
22-character track ids like Spotify's), then writes them several ways, each into a fresh file
opened beforehand, timed around the whole write (connection, BEGIN ... COMMIT); rounds
alternate the ways and the median of ``--rounds`` is reported:

* ``Warehouse.write``: delete skipped for a new run, INSERT, checks (values and repeated keys)
  before COMMIT -- the table as migrations 007 and 008 left it: no PRIMARY KEY index, no
  list column;
* references, a bare INSERT without checks: of the same rows; of the same rows in one record
  batch (as_arrow's batches let DuckDB insert on every thread); of the rows with each track's
  k-long ``probabilities`` list, into the table as it was before migration 008 (the list
  column); and before migration 007 (list column and PRIMARY KEY index). All but the one
  batch in the record batches ``Warehouse.write`` hands DuckDB, so only the layout differs.

Then the model rows a run writes for those assignments as one ``Warehouse.write``: the
assignments plus ``gmm_memberships`` (the vectors of the chosen k: one k of the default nine,
so N / 9 rows). Then rewrites a slice of existing keys (the idempotent replace path), and
times ``select * from track_clusters`` over a run of M tracks. Targets (issue 4): >= 1 M
rows/s write, view < 1 s.

    python benchmarks/warehouse.py [--rows 1000000] [--tracks 100000] [--replace-rows 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from songmix.warehouse.connection import connect
from songmix.warehouse.query import run_query
from songmix.warehouse.records import assignment_table, membership_table
from songmix.warehouse.store import Warehouse, as_arrow

K = 8


def membership_probabilities(n_rows: int, *, seed: int = 0) -> np.ndarray:
    """Membership probabilities of ``n_rows`` tracks under a k-component model, (n_rows, K)."""
    return np.random.default_rng(seed).dirichlet(np.ones(K), size=n_rows)


def _key(run_id: str, feature_set: str) -> dict[str, object]:
    return {"run_id": run_id, "feature_set": feature_set, "k": K}


def track_ids(n_rows: int) -> list[str]:
    """``n_rows`` distinct track ids of Spotify's length (22 characters)."""
    return [f"{i:022d}" for i in range(n_rows)]


def assignment_rows(n_rows: int, *, run_id: str, feature_set: str = "spotify", seed: int = 0) -> pa.Table:
    """``gmm_assignments`` rows of one model over ``n_rows`` tracks, as the pipeline builds them."""
    return assignment_table(_key(run_id, feature_set), track_ids(n_rows), membership_probabilities(n_rows, seed=seed))


def _timed(action) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of ``action()``: on a shared machine the CPU time
    shows the work done when the wall clock mostly shows waiting for a core."""
    started, cpu_started = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - started, time.process_time() - cpu_started


def warehouse_writer(path: Path, tables: dict[str, pa.Table]):
    """``Warehouse.write(tables)`` into a warehouse opened (and migrated) here, untimed."""
    warehouse = Warehouse(path)
    return lambda: warehouse.write(tables)


def insert_writer(path: Path, table: pa.Table, *, indexed: bool = False):
    """A bare INSERT of ``table`` (no delete, no checks) into a copy of gmm_assignments with
    its columns: with ``probabilities`` it is the layout before migration 008, and with
    ``indexed`` (its PRIMARY KEY index) the one before 007.

    The warehouse and the table are made here; the returned callable does the timed part.
    """
    Warehouse(path)
    with connect(path, read_only=False) as connection:
        connection.execute("CREATE TABLE layout AS FROM gmm_assignments LIMIT 0")
        if "probabilities" in table.column_names:
            connection.execute("ALTER TABLE layout ADD COLUMN probabilities DOUBLE[]")
        if indexed:
            connection.execute("ALTER TABLE layout ADD PRIMARY KEY (run_id, feature_set, k, track_id)")

    def write() -> None:
        with connect(path, read_only=False) as connection:
            connection.register("incoming_rows", table)
            connection.execute("BEGIN TRANSACTION")
            connection.execute("INSERT INTO layout SELECT * FROM incoming_rows")
            connection.execute("COMMIT")

    return write


def view_fixture(warehouse: Warehouse, n_tracks: int) -> None:
    """A completed run of ``n_tracks`` tracks with chosen models on both feature sets."""
    run_id = "bench-view"
    warehouse.start_run(run_id, source="demo", parameters={}, code_version="bench", flow_run_id=None)
    ids = track_ids(n_tracks)
    models = pd.DataFrame([{
        "run_id": run_id, "feature_set": feature_set, "k": K, "covariance_type": "full",
        "chosen": True, "features": ["x"], "scaler_mean": [0.0], "scaler_scale": [1.0],
        "log_likelihood": 0.0, "bic": 0.0, "aic": 0.0, "n_samples": n_tracks, "track_ids": ids,
    } for feature_set in ("spotify", "aubio")])
    warehouse.write({
        "tracks": pd.DataFrame({"track_id": ids, "name": "song", "artists": "someone", "run_id": run_id}),
        "run_tracks": pd.DataFrame({"run_id": run_id, "track_id": ids, "position": np.arange(n_tracks)}),
        "gmm_models": models,
        "gmm_assignments": pa.concat_tables([assignment_rows(n_tracks, run_id=run_id, feature_set=s, seed=i)
                                             for i, s in enumerate(("spotify", "aubio"))]),
        "gmm_memberships": pa.concat_tables([
            membership_table(_key(run_id, s), ids, membership_probabilities(n_tracks, seed=i))
            for i, s in enumerate(("spotify", "aubio"))]),
    })
    warehouse.finish_run(run_id, status="completed", counts={})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--replace-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="writes per variant (median reported)")
    args = parser.parse_args()
    ids, probabilities = track_ids(args.rows), membership_probabilities(args.rows)
    built = {}
    spent, _ = _timed(lambda: built.setdefault("rows", assignment_table(_key("bench", "spotify"), ids, probabilities)))
    rows = built["rows"]
    memberships = membership_table(_key("bench", "spotify"), ids, probabilities)
    # In the record batches Warehouse.write hands DuckDB, so only the table layout differs.
    wide = as_arrow(rows.append_column("probabilities", memberships.column("probabilities")))
    print(f"duckdb {duckdb.__version__}, {duckdb.connect().execute('select current_setting(?)', ['threads']).fetchone()[0]} threads; "
          f"{args.rows:,} gmm_assignments rows, k = {K} (built as Arrow in {spent:.2f} s, not counted below)")
    chosen = args.rows // 9
    run_tables = {"gmm_assignments": rows, "gmm_memberships": memberships.slice(0, chosen)}
    variants = {
        "Warehouse.write": lambda path: warehouse_writer(path, {"gmm_assignments": rows}),
        "INSERT only, this layout": lambda path: insert_writer(path, as_arrow(rows)),
        # The same rows in one record batch, which DuckDB inserts on one thread.
        "INSERT only, one batch": lambda path: insert_writer(path, rows.combine_chunks()),
        "INSERT only, before 008": lambda path: insert_writer(path, wide),
        "INSERT only, before 007": lambda path: insert_writer(path, wide, indexed=True),
        "as a run": lambda path: warehouse_writer(path, run_tables),
    }
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        # Rounds alternate the variants, so load from elsewhere hits all; each writes a fresh
        # file whose warehouse is opened (and migrated) before the clock starts.
        seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for round_index in range(args.rounds):
            for name, writer in variants.items():
                seconds[name].append(_timed(writer(folder / f"{name}-{round_index}.duckdb")))
        median = {name: np.median(times, axis=0) for name, times in seconds.items()}
        ours = median["Warehouse.write"][0]
        for name in list(variants)[:5]:
            (spent, cpu), walls = median[name], [wall for wall, _ in seconds[name]]
            print(f"  {name:<26} {spent:7.2f} s  {args.rows / spent:>12,.0f} rows/s  "
                  f"({spent / ours:4.1f}x Warehouse.write's time; CPU {cpu:.2f} s; "
                  f"rounds {min(walls):.2f}-{max(walls):.2f} s)")
        print(f"  target >= 1,000,000 rows/s (median of {args.rounds}): "
              f"{'ok' if args.rows / ours >= 1e6 else 'SHORT'}")
        spent, cpu = median["as a run"]
        print(f"  write as a run does: {args.rows:,} assignments + {chosen:,} gmm_memberships rows "
              f"(chosen k of 9) in one Warehouse.write: {spent:.2f} s, "
              f"{args.rows / spent:,.0f} assignment rows/s (CPU {cpu:.2f} s)")

        replace = rows.slice(0, args.replace_rows)
        warehouse = Warehouse(folder / "Warehouse.write-0.duckdb")
        spent, cpu = _timed(lambda: warehouse.write({"gmm_assignments": replace}))
        print(f"  replace {len(replace):,} of its keys in a table holding {args.rows:,} "
              f"(Warehouse.write): {spent:.2f} s, {len(replace) / spent:,.0f} rows/s (CPU {cpu:.2f} s)")

        view_path = folder / "view.duckdb"
        warehouse = Warehouse(view_path)
        view_fixture(warehouse, args.tracks)
        for attempt in ("first", "second"):
            frame = None

            def query():
                nonlocal frame
                frame = run_query(view_path, "select * from track_clusters")

            spent, cpu = _timed(query)
            assert len(frame) == args.tracks and frame["aubio_cluster"].notna().all()
            print(f"  select * from track_clusters, {args.tracks:,} tracks ({attempt}, open + query "
                  f"+ DataFrame): {spent:.2f} s (CPU {cpu:.2f} s)")


if __name__ == "__main__":
    main()
