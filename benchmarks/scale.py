"""Scale: ``songmix import-csv`` on data sets the size users bring, import + fit + compare.

Generates two Spotify-schema CSV files (once; reused from ``--work-dir`` afterwards):

* 114 000 rows in the schema of Kaggle's "Spotify Tracks Dataset" (an unnamed index column,
  ``track_id, artists, album_name, track_name, popularity, duration_ms, explicit``, the
  eleven audio features, ``time_signature, track_genre``; 114 genres of 1000 rows, artists
  separated by ``;``, and a share of track ids listed under a second genre, as in the real
  file, which the import rejects as repeats);
* 1 200 000 rows in the schema of the "1.2M songs" ``tracks_features.csv`` (``id, name,
  album, album_id, artists, artist_ids, track_number, disc_number, explicit``, the features,
  ``duration_ms, time_signature, year, release_date``; artists as ``['A', 'B']``; no genre).

Features are drawn from genre-like Gaussian prototypes, clipped to Spotify's ranges. Each file
is then imported by a ``songmix import-csv`` process of its own (k = 2..10, 10 seeds, a fresh
warehouse and Prefect home), and the script prints the wall time of every stage (from the
run's plain progress lines), the total against its target, and the peak resident memory of
the process tree's largest process against its target.

Run on a quiet machine (it takes ~15 minutes, most of it the 1.2M-row run)::

    python benchmarks/scale.py [--sizes 114000,1200000] [--work-dir /tmp/songmix-scale]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: (rows, target seconds, target peak RSS in GB or None) per data set size.
TARGETS = {114_000: (120.0, None), 1_200_000: (600.0, 6.0)}
N_GENRES = 114
#: Share of rows of the Tracks Dataset whose id repeats an earlier row's (the real file:
#: 114 000 rows, 89 741 distinct ids).
REPEATED_ID_SHARE = 0.21
FEATURES = ("danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
            "instrumentalness", "liveness", "valence", "tempo")
_STAGE_LINE = re.compile(r"songmix: (?P<stage>[^:]+): done in (?P<seconds>\d+) s")


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    alphabet = np.array(list(string.digits + string.ascii_letters))
    return np.array(["".join(row) for row in alphabet[rng.integers(0, 62, size=(n, 22))]])


def _features(rng: np.random.Generator, genres: np.ndarray, n_genres: int) -> pd.DataFrame:
    """Spotify-style features of tracks of ``genres``, drawn around per-genre prototypes."""
    prototype = rng.uniform(0.1, 0.9, size=(n_genres, 9))
    unit = np.clip(prototype[genres] + rng.normal(0, 0.12, size=(len(genres), 9)), 0, 1)
    return pd.DataFrame({
        "danceability": unit[:, 0].round(3), "energy": unit[:, 1].round(3),
        "key": rng.integers(0, 12, len(genres)), "loudness": (-30 + 28 * unit[:, 2]).round(3),
        "mode": rng.integers(0, 2, len(genres)), "speechiness": (0.4 * unit[:, 3]).round(4),
        "acousticness": unit[:, 4].round(4), "instrumentalness": (unit[:, 5] ** 3).round(5),
        "liveness": (0.05 + 0.6 * unit[:, 6]).round(4), "valence": unit[:, 7].round(3),
        "tempo": (70 + 110 * unit[:, 8]).round(3),
    })


def tracks_dataset(n_rows: int, path: Path, *, seed: int = 0) -> None:
    """The Kaggle "Spotify Tracks Dataset" schema, with ``track_genre``."""
    rng = np.random.default_rng(seed)
    genres = np.repeat(np.arange(N_GENRES), -(-n_rows // N_GENRES))[:n_rows]
    ids = _ids(rng, n_rows)
    repeated = rng.random(n_rows) < REPEATED_ID_SHARE
    ids[repeated] = ids[rng.integers(0, n_rows, repeated.sum())]
    words = np.array(["night", "blue", "heart", "fire", "rain", "gold", "river", "dream"])
    names = [" ".join(pair) for pair in words[rng.integers(0, len(words), size=(n_rows, 2))]]
    frame = pd.DataFrame({
        "track_id": ids, "artists": [f"Artist {a};Artist {b}" for a, b in rng.integers(0, 20_000, (n_rows, 2))],
        "album_name": [f"Album {a}" for a in rng.integers(0, 40_000, n_rows)], "track_name": names,
        "popularity": rng.integers(0, 100, n_rows), "duration_ms": rng.integers(60_000, 400_000, n_rows),
        "explicit": rng.random(n_rows) < 0.1, **_features(rng, genres, N_GENRES),
        "time_signature": 4, "track_genre": [f"genre-{g}" for g in genres],
    })
    frame[["track_id", "artists", "album_name", "track_name", "popularity", "duration_ms", "explicit",
           *FEATURES, "time_signature", "track_genre"]].to_csv(path)


def million_songs(n_rows: int, path: Path, *, seed: int = 1) -> None:
    """The "1.2M songs" ``tracks_features.csv`` schema (no genre)."""
    rng = np.random.default_rng(seed)
    hidden_genres = rng.integers(0, 40, n_rows)
    artist_ids = _ids(rng, 50_000)
    artists = rng.integers(0, 50_000, n_rows)
    years = rng.integers(1950, 2021, n_rows)
    frame = pd.DataFrame({
        "id": _ids(rng, n_rows), "name": [f"Song {i}" for i in range(n_rows)],
        "album": [f"Album {a}" for a in rng.integers(0, 200_000, n_rows)],
        "album_id": _ids(rng, n_rows), "artists": [f"['Artist {a}']" for a in artists],
        "artist_ids": [f"['{artist_ids[a]}']" for a in artists],
        "track_number": rng.integers(1, 15, n_rows), "disc_number": 1,
        "explicit": rng.random(n_rows) < 0.1, **_features(rng, hidden_genres, 40),
        "duration_ms": rng.integers(60_000, 400_000, n_rows), "time_signature": 4.0,
        "year": years, "release_date": [f"{y}-01-01" for y in years],
    })
    order = ["id", "name", "album", "album_id", "artists", "artist_ids", "track_number", "disc_number",
             "explicit", "danceability", "energy", "key", "loudness", "mode", "speechiness",
             "acousticness", "instrumentalness", "liveness", "valence", "tempo", "duration_ms",
             "time_signature", "year", "release_date"]
    frame[order].to_csv(path, index=False)


def _data_set(n_rows: int, work_dir: Path) -> Path:
    path = work_dir / f"spotify-{n_rows}.csv"
    if not path.is_file():
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        (tracks_dataset if n_rows < 1_000_000 else million_songs)(n_rows, partial)
        partial.replace(path)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s")
    return path


def import_once(csv_path: Path, work_dir: Path) -> tuple[float, float, float, dict[str, tuple[int, float]], str]:
    """Wall seconds, CPU seconds, peak RSS (GB) of the largest process, seconds and peak RSS
    (GB) of the run's process per stage, and the output of one ``songmix import-csv`` process
    on a fresh warehouse and Prefect home."""
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    environment |= {"PREFECT_HOME": str(run_dir / "prefect"), "DO_NOT_TRACK": "1",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "SONGMIX_DATA_DIR": str(run_dir / "data")}
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "songmix.cli.main", "import-csv", str(csv_path), "--db", str(run_dir / "w.duckdb"),
         "--out", str(run_dir / "out"), "--ks", "2-10", "--seeds", "10"],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    current, peaks = ["start"], {}
    sampler = threading.Thread(target=_sample_rss, args=(process, current, peaks), daemon=True)
    sampler.start()
    lines = []
    for line in process.stderr:
        lines.append(line)
        if (match := re.match(r"songmix: (?P<stage>[^:]+): started", line)):
            current[0] = match["stage"]
    output = process.stdout.read()
    process.wait()
    seconds = time.perf_counter() - started
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"import-csv failed ({process.returncode}):\n{''.join(lines)[-3000:]}")
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    stages = {m["stage"]: (int(m["seconds"]), peaks.get(m["stage"], 0.0))
              for m in _STAGE_LINE.finditer("".join(lines))}
    return seconds, _children_cpu_s() - cpu_before, peak_gb, stages, output


def _sample_rss(process: subprocess.Popen, current: list[str], peaks: dict[str, float]) -> None:
    """Peak resident memory of ``process`` per stage (``current[0]``), sampled every 0.2 s."""
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            break
        rss = re.search(r"VmRSS:\s+(\d+)", status)
        if rss is None:  # a process that has exited but not been waited for has no memory left
            break
        rss_gb = int(rss[1]) / 1024 ** 2
        peaks[current[0]] = max(peaks.get(current[0], 0.0), rss_gb)
        time.sleep(0.2)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="114000,1200000", help="rows per data set, comma-separated")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "songmix-scale")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    for n_rows in (int(size) for size in args.sizes.split(",")):
        csv_path = _data_set(n_rows, args.work_dir)
        load = os.getloadavg()[0]
        seconds, cpu_s, peak_gb, stages, output = import_once(csv_path, args.work_dir)
        target_s, target_gb = TARGETS.get(n_rows, (None, None))
        print(f"\n{n_rows} rows ({csv_path.name}): import + fit + compare, k = 2..10 x 10 seeds")
        for stage, (stage_s, stage_gb) in stages.items():
            print(f"  {stage:<18} {stage_s:>5} s   peak RSS of the run's process {stage_gb:.2f} GB")
        print(f"  total              {seconds:>5.0f} s" + (f"  (target {target_s:.0f} s: {seconds / target_s:.2f} of it)" if target_s else ""))
        print(f"  CPU time           {cpu_s:>5.0f} s  (user + system of the run's processes; load average "
              f"{load:.1f} before, {os.getloadavg()[0]:.1f} after: on a busy machine the wall time "
              "stretches, the CPU time much less)")
        print(f"  peak RSS           {peak_gb:>5.2f} GB" + (f" (target {target_gb:.0f} GB: {peak_gb / target_gb:.2f} of it)" if target_gb else "")
              + " (largest process so far in this script)")
        print("  " + "\n  ".join(output.strip().splitlines()[:4]))


if __name__ == "__main__":
    main()
