"""Wall time of whole `songmix run`s on the demo catalog, measured side by side.

    python benchmarks/pipeline.py [--tracks 1000]

1. cold, rendering the demo audio: empty data folder, warehouse and Prefect result store;
2. cold, demo audio already rendered: the same, but the rendered previews are kept
   (everything else — downloads, extraction, fits, comparison — runs again);
3. warm rerun: run 2's warehouse and caches as they are.

Each run is a fresh process with no PREFECT_API_URL, so each pays the temporary Prefect
server's start (as a user's first `songmix run` does). Targets (issue 2, 2 cores): cold
≤ 180 s, warm ≤ 20 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLD_TARGET_S = 180.0
WARM_TARGET_S = 20.0


def _run(tracks: int, *, db: Path, data_dir: Path, results: Path, out: Path) -> float:
    environment = os.environ | {"PREFECT_LOCAL_STORAGE_PATH": str(results),
                                "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    environment.pop("PREFECT_API_URL", None)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "songmix.cli.main", "run", "--quiet", "--tracks", str(tracks),
         "--db", str(db), "--data-dir", str(data_dir), "--out", str(out)],
        check=True, env=environment, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="songmix-bench-"))
    try:
        cold_render = _run(args.tracks, db=root / "a.duckdb", data_dir=root / "data-a",
                           results=root / "results-a", out=root / "out")
        # Keep only the rendered previews: downloads, extraction and fits start over.
        (root / "data-b").mkdir()
        shutil.copytree(root / "data-a" / "demo-previews", root / "data-b" / "demo-previews")
        cold = _run(args.tracks, db=root / "b.duckdb", data_dir=root / "data-b",
                    results=root / "results-b", out=root / "out")
        warm = _run(args.tracks, db=root / "b.duckdb", data_dir=root / "data-b",
                    results=root / "results-b", out=root / "out")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"songmix run --tracks {args.tracks} on {os.cpu_count()} cores")
    print(f"  cold, rendering demo audio : {cold_render:7.1f} s   ({cold_render / COLD_TARGET_S:.2f} of the {COLD_TARGET_S:.0f} s target)")
    print(f"  cold, audio already rendered: {cold:7.1f} s   ({cold / COLD_TARGET_S:.2f} of the {COLD_TARGET_S:.0f} s target)")
    print(f"  warm rerun                  : {warm:7.1f} s   ({warm / WARM_TARGET_S:.2f} of the {WARM_TARGET_S:.0f} s target)")
    print(f"  rendering costs {cold_render - cold:.1f} s; a warm rerun is {cold / warm:.1f}x faster than cold")


if __name__ == "__main__":
    main()
