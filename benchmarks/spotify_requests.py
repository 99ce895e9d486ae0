"""Requests a Spotify run makes, per host and endpoint, and time lost waiting out 429s.

    python benchmarks/spotify_requests.py [--tracks 1000]

Starts the loopback fakes of ``tests/sources/fakes.py`` on one server (Spotify accounts and
Web API, whose audio-features answer 403 as for apps created after 2024-11-27; ReccoBeats;
Deezer; the preview CDN of the few tracks that list one) and points songmix at them only
through ``SONGMIX_*_URL`` and ``SPOTIPY_CLIENT_ID`` / ``SPOTIPY_CLIENT_SECRET``. Then, in this
process, with ``songmix.cli.main.main``:

1. cold: ``songmix run --source spotify --tracks N`` on a fresh warehouse and audio cache;
2. warm: the same command again on the same warehouse and cache;
3. faults: the cold run again on a fresh warehouse, with 429s (``Retry-After``), 5xx and
   Deezer's quota error scripted on every host; prints, per stage, the seconds the retry
   policy waited on 429s (``Retry-After``; Deezer sends none, so its quota error waits one
   5 s window) and on the backoff of failures that named no wait, against the stage's wall time with and without faults.

Requests are counted by the fakes themselves. Deezer's quota (50 requests per 5 s) is lifted
in this process to keep the benchmark short; the line about it says what it would add. The
fits are kept small (``--ks 2,3 --seeds 2``): they make no requests. Each run starts with no
Spotify client, as a new process would (so each asks for one token).
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

N_BASE_CLIPS = 6
CATALOG_SIZE = 1000  # what the fake search finds: one query's worth (Spotify stops at offset 1000)


@dataclass
class StageClock:
    """A progress listener that keeps each stage's start and end (``time.perf_counter``)."""

    started: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)

    def stage_started(self, stage: str, total: int) -> None:
        self.started[stage] = time.perf_counter()

    def stage_advanced(self, stage: str, done: int, total: int) -> None:
        pass

    def stage_finished(self, stage: str, summary: str) -> None:
        self.finished[stage] = time.perf_counter()

    def elapsed(self, stage: str) -> float:
        return self.finished[stage] - self.started[stage]

    def stage_at(self, moment: float) -> str | None:
        return next((stage for stage, start in self.started.items()
                     if start <= moment <= self.finished.get(stage, math.inf)), None)


class RetryWaits(logging.Handler):
    """Collects, as ``(when, seconds)``, the waits the retry policy logs
    (``songmix.sources.http``: "...; waiting 1.0 s before the retry (Retry-After)"): a 429's
    ``Retry-After``, or the backoff after a failure that named no wait."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.retry_after: list[tuple[float, float]] = []
        self.backoff: list[tuple[float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != "songmix.sources.http" or "waiting" not in str(record.msg):
            return
        *_, seconds, why = record.args
        waits = self.retry_after if why == "Retry-After" else self.backoff
        waits.append((time.perf_counter(), float(seconds)))


@dataclass(frozen=True)
class Measured:
    requests: Counter[tuple[str, str]]
    wall_s: float
    clock: StageClock
    waits: RetryWaits


def _songmix_run(world, tracks: int, root: Path, *, db: Path) -> Measured:
    """One in-process ``songmix run --source spotify`` with its data under ``root`` (warehouse
    ``db``); the requests it made and its timings."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from songmix.cli.main import main
    from songmix.flows.progress import listening
    from songmix.sources.http import RateLimiter
    from songmix.tasks import previews, spotify

    spotify._authorized_client.cache_clear()  # no client, no token: as in a new process
    previews.DEEZER_RATE_LIMITER = RateLimiter(10_000, 5.0)
    before = world.requests()
    clock, waits = StageClock(), RetryWaits()
    # Prefect's result store (its task cache) lives beside the warehouse: a fresh `root` is cold.
    with (temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: root / "results"}), listening(clock),
          _logged_to(waits, "songmix.sources.http"), redirect_stdout(io.StringIO())):
        started = time.perf_counter()
        status = main(["run", "--source", "spotify", "--tracks", str(tracks), "--ks", "2,3", "--seeds", "2",
                       "--quiet", "--db", str(db), "--data-dir", str(root / "data"), "--out", str(root / "out")])
        wall_s = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"songmix run exited with {status}")
    return Measured(world.requests() - before, wall_s, clock, waits)


@contextmanager
def _logged_to(handler: logging.Handler, *names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _inject_faults(world, fakes) -> None:
    """Every host rate-limits once (Retry-After 1 or 2 s) and fails once with a 5xx."""
    world.spotify.inject("token", fakes.Fault.rate_limited(1))
    world.spotify.inject("search", fakes.Fault.rate_limited(1), fakes.Fault.server_error(503))
    world.spotify.inject("audio-features", fakes.Fault.rate_limited(2))
    world.reccobeats.inject("audio-features", fakes.Fault.rate_limited(2), fakes.Fault.server_error(502))
    world.deezer.inject("track", fakes.DEEZER_QUOTA, fakes.Fault.rate_limited(1))
    world.deezer.inject("preview", fakes.Fault.server_error(503))


def _print_requests(tracks: int, cold: Measured, warm: Measured) -> None:
    per_1000 = 1000 / tracks
    print(f"requests per 1000 tracks (songmix run --source spotify --tracks {tracks}, measured by the fakes)")
    print(f"  {'host':<24} {'endpoint':<16} {'cold':>7} {'warm':>7}")
    for host, endpoint in sorted(cold.requests.keys() | warm.requests.keys()):
        print(f"  {host:<24} {endpoint:<16} {cold.requests[host, endpoint] * per_1000:7.0f} "
              f"{warm.requests[host, endpoint] * per_1000:7.0f}")
    print(f"  {'total':<41} {cold.requests.total() * per_1000:7.0f} {warm.requests.total() * per_1000:7.0f}")
    print(f"  wall time: cold {cold.wall_s:.1f} s (with the start of Prefect's temporary server), "
          f"warm {warm.wall_s:.1f} s")
    from songmix.sources.fallbacks import DEEZER_MAX_CALLS, DEEZER_PERIOD_S

    lookups = cold.requests["api.deezer.com", "track"]
    quota_s = max(0, lookups - DEEZER_MAX_CALLS) * DEEZER_PERIOD_S / DEEZER_MAX_CALLS
    print(f"  Deezer's quota was lifted here; the cold run's {lookups} Deezer lookups at "
          f"{DEEZER_MAX_CALLS} / {DEEZER_PERIOD_S:g} s would need at least {quota_s:.0f} s")


def _print_waits(tracks: int, cold: Measured, faults: Measured) -> None:
    print(f"\nfault run (fresh warehouse, {tracks} tracks; each host rate-limits once and fails once): "
          f"{faults.wall_s:.1f} s, {faults.requests.total()} requests")
    print(f"  {'stage':<18} {'cold':>6} {'faults':>7} {'429 waits':>10} {'Retry-After':>12} "
          f"{'backoffs':>9} {'backoff':>8}")
    by_stage = {kind: _by_stage(faults.clock, getattr(faults.waits, kind)) for kind in ("retry_after", "backoff")}
    for stage, start in faults.clock.started.items():
        if stage in by_stage["retry_after"] or stage in by_stage["backoff"]:
            (n_429, waited), (n_backoffs, backed_off) = (by_stage[kind].get(stage, (0, 0.0)) for kind in by_stage)
            print(f"  {stage:<18} {cold.clock.elapsed(stage):5.1f}s {faults.clock.elapsed(stage):6.1f}s "
                  f"{n_429:10d} {waited:11.1f}s {n_backoffs:9d} {backed_off:7.1f}s")
    waited = sum(seconds for _, seconds in faults.waits.retry_after)
    backed_off = sum(seconds for _, seconds in faults.waits.backoff)
    print(f"  the run: {waited:.1f} s waiting on Retry-After and {backed_off:.1f} s of backoff, "
          f"{faults.wall_s:.1f} s in all ({cold.wall_s:.1f} s cold without faults)")
    print("  (waits are summed over a stage's concurrent tasks, so they can exceed what the stage lost)")


def _by_stage(clock: StageClock, waits: list[tuple[float, float]]) -> dict[str, tuple[int, float]]:
    """Number and total seconds of ``waits`` per stage they happened in."""
    totals: dict[str, tuple[int, float]] = {}
    for moment, seconds in waits:
        stage = clock.stage_at(moment) or "(between stages)"
        count, total = totals.get(stage, (0, 0.0))
        totals[stage] = (count + 1, total + seconds)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1000)
    args = parser.parse_args()
    if not 1 <= args.tracks <= CATALOG_SIZE:
        parser.error(f"--tracks must be between 1 and {CATALOG_SIZE}: the fake search finds {CATALOG_SIZE} tracks")
    root = Path(tempfile.mkdtemp(prefix="songmix-spotify-bench-"))
    # Before Prefect is imported: its home and temporary server stay in `root`, its console quiet.
    os.environ.pop("PREFECT_API_URL", None)
    os.environ |= {"PREFECT_HOME": str(root / "prefect"), "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
                   "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sources"))
    import fakes
    from pytest_httpserver import HTTPServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        world = fakes.start_spotify_world(
            server, catalog_size=CATALOG_SIZE, clips=fakes.render_base_clips(N_BASE_CLIPS),
            not_in_reccobeats={i for i in range(args.tracks) if i % 37 == 5},
            not_on_deezer={i for i in range(args.tracks) if i % 41 == 7},
            listed_preview={i for i in range(args.tracks) if i % 50 == 3})
        os.environ |= world.environment
        cold = _songmix_run(world, args.tracks, root / "a", db=root / "a.duckdb")
        warm = _songmix_run(world, args.tracks, root / "a", db=root / "a.duckdb")
        _inject_faults(world, fakes)
        faults = _songmix_run(world, args.tracks, root / "b", db=root / "b.duckdb")
    finally:
        server.clear()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    _print_requests(args.tracks, cold, warm)
    _print_waits(args.tracks, cold, faults)


if __name__ == "__main__":
    main()
