"""Aubio feature extraction on real music, beside plain aubio and librosa, in one run.

On the 40 clips of ``realmusic-dev`` (composed pieces with their notated tempo and key; see
its README), runs in ``--rounds`` rounds whose order rotates (so that a busy neighbour on a
shared machine slows every extractor alike), each with the same worker processes:

* songmix: ``songmix.audio.features.extract_file`` -- decode + every feature of the table;
* plain aubio: ``songmix.audio.accuracy.plain_aubio_tempo`` -- decode at 44.1 kHz, then
  ``aubio.tempo("default", 1024, 512)``, BPM from the median beat interval (no key);
* librosa 0.11: the set's README baseline -- decode, resample to 22.05 kHz,
  ``beat.beat_track`` with its defaults, key from the mean ``chroma_cqt`` correlated with
  the 24 rotated Krumhansl-Kessler profiles;
* decoding alone (``load_mono``), which every row above includes.

Prints, per extractor: CPU seconds per clip (``time.process_time`` in the workers), the
realtime factor per core (audio seconds per CPU second, decoding included), wall-clock clips
per second, tempo Acc1 / Acc2 and the mean mir_eval key weighted score; then the ratios and
songmix's target (>= 300x realtime per core, decoding included).

Usage::

    python benchmarks/extract.py [--set ../shared/realmusic-dev] [--workers 2] [--rounds 3]

librosa comes with ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import os

# One thread per worker process, so that "per core" means one core. Must precede numpy.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "NUMBA_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile  # noqa: E402

from songmix.audio.accuracy import extractor_accuracy, plain_aubio_tempo  # noqa: E402
from songmix.audio.decode import load_mono  # noqa: E402
from songmix.audio.features import NO_KEY, extract_file  # noqa: E402
from songmix.audio.folder import TRACK_ID_PREFIX, read_truth  # noqa: E402

DEFAULT_SET = Path(__file__).resolve().parents[2] / "shared" / "realmusic-dev"
TARGET_REALTIME_PER_CORE = 300.0
SONGMIX = "songmix (aubio)"
PLAIN_AUBIO = "plain aubio"
LIBROSA = "librosa"
DECODE_ONLY = "decoding alone"
LIBROSA_RATE = 22050
# Krumhansl & Kessler (1982) probe-tone ratings, index 0 = tonic: the README's baseline.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class ClipResult:
    track_id: str
    cpu_seconds: float
    audio_seconds: float
    tempo: float
    key: int
    mode: int


def main() -> None:
    arguments = _parse_arguments()
    truth = read_truth(arguments.set)
    if truth is None:
        sys.exit(f"{arguments.set} holds no truth.csv; give the realmusic-dev folder with --set")
    track_ids = list(truth.index)
    print(f"{len(track_ids)} clips from {arguments.set}; {arguments.workers} worker processes, "
          f"{os.cpu_count()} CPUs visible, load average before: {_load_average()}")
    extractors = ((SONGMIX, _extract_songmix), (PLAIN_AUBIO, _extract_plain_aubio),
                  (LIBROSA, _extract_librosa), (DECODE_ONLY, _decode_only))
    rounds: dict[str, list[tuple[list[ClipResult], float]]] = {name: [] for name, _ in extractors}
    for round_index in range(arguments.rounds):
        shift = round_index % len(extractors)
        for name, worker in extractors[shift:] + extractors[:shift]:
            rounds[name].append(_run(worker, track_ids, workers=arguments.workers))
    _report(truth, rounds)
    print(f"load average after: {_load_average()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")


def _parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path,
                        default=Path(os.environ.get("SONGMIX_REALMUSIC_DIR", DEFAULT_SET)),
                        help="folder of clips with truth.csv (default: ../shared/realmusic-dev)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (>= 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over all clips, in rotating order (>= 1)")
    arguments = parser.parse_args()
    if min(arguments.workers, arguments.rounds) < 1:
        parser.error("--workers and --rounds must be at least 1")
    return arguments


def _run(worker, track_ids: list[str], *, workers: int) -> tuple[list[ClipResult], float]:
    """Results of ``worker`` over the clips in ``workers`` processes, and the wall time.

    The clock starts once every worker has started and paid its one-off costs.
    """
    chunks = [track_ids[i::workers] for i in range(workers)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                initializer=_warm_up,
                                                initargs=(track_ids[0],)) as pool:
        list(pool.map(time.sleep, [0.5] * workers))  # starts (and warms) every worker
        started = time.perf_counter()
        results = [result for chunk in pool.map(worker, chunks) for result in chunk]
        return results, time.perf_counter() - started


def _warm_up(track_id: str) -> None:
    """Pay one-off costs (imports, numba compilation, filter design) before any timing."""
    _extract_songmix([track_id])
    _extract_plain_aubio([track_id])
    _extract_librosa([track_id])


def _path(track_id: str) -> str:
    return track_id.removeprefix(TRACK_ID_PREFIX)


def _timed(track_id: str, extract) -> ClipResult:
    started = time.process_time()
    tempo, key, mode = extract(_path(track_id))
    return ClipResult(track_id, time.process_time() - started,
                      soundfile.info(_path(track_id)).duration, tempo, key, mode)


def _extract_songmix(track_ids: list[str]) -> list[ClipResult]:
    def extract(path: str) -> tuple[float, int, int]:
        values = extract_file(path).values
        return values["tempo"], int(values["key"]), int(values["mode"])
    return [_timed(track_id, extract) for track_id in track_ids]


def _extract_plain_aubio(track_ids: list[str]) -> list[ClipResult]:
    return [_timed(track_id, lambda path: (plain_aubio_tempo(path), NO_KEY, NO_KEY))
            for track_id in track_ids]


def _extract_librosa(track_ids: list[str]) -> list[ClipResult]:
    import librosa

    def extract(path: str) -> tuple[float, int, int]:
        samples = load_mono(path, sample_rate=LIBROSA_RATE)
        tempo, _ = librosa.beat.beat_track(y=samples, sr=LIBROSA_RATE)
        key, mode = _krumhansl_kessler_key(
            librosa.feature.chroma_cqt(y=samples, sr=LIBROSA_RATE).mean(axis=1))
        return float(np.atleast_1d(tempo)[0]), key, mode
    return [_timed(track_id, extract) for track_id in track_ids]


def _krumhansl_kessler_key(chroma: np.ndarray) -> tuple[int, int]:
    """The key whose rotated Krumhansl-Kessler profile correlates best with the chroma."""
    correlations = [np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
                    for profile in (KK_MAJOR, KK_MINOR) for tonic in range(12)]
    best = int(np.argmax(correlations))
    return best % 12, 1 if best < 12 else 0


def _decode_only(track_ids: list[str]) -> list[ClipResult]:
    def decode(path: str) -> tuple[float, int, int]:
        load_mono(path)
        return 0.0, NO_KEY, NO_KEY
    return [_timed(track_id, decode) for track_id in track_ids]


def _report(truth: pd.DataFrame, rounds: dict[str, list[tuple[list[ClipResult], float]]]) -> None:
    print(f"\n{'extractor':<18}{'CPU ms/clip':>12}{'x realtime/core':>17}{'clips/s':>9}"
          f"{'tempo Acc1':>12}{'Acc2':>7}{'key score':>11}")
    cpu_per_clip = {name: _cpu_per_clip(runs) for name, runs in rounds.items()}
    audio_seconds = np.mean([result.audio_seconds for result in rounds[SONGMIX][0][0]])
    for name, runs in rounds.items():
        wall = float(np.median([wall for _, wall in runs]))
        results = runs[0][0]  # every round computes the same values
        line = (f"{name:<18}{cpu_per_clip[name].mean() * 1000:>12.1f}"
                f"{audio_seconds / cpu_per_clip[name].mean():>17.0f}{len(results) / wall:>9.1f}")
        if name != DECODE_ONLY:
            estimated = pd.DataFrame([(r.track_id, r.tempo, r.key, r.mode) for r in results],
                                     columns=["track_id", "tempo", "key", "mode"]
                                     ).set_index("track_id")
            scores = extractor_accuracy(estimated, truth)
            key = (f"{scores['key_weighted_score']:.3f}" if (estimated["key"] >= 0).any()
                   else "-")
            line += f"{scores['tempo_acc1']:>12.3f}{scores['tempo_acc2']:>7.3f}{key:>11}"
        print(line)
    ours = cpu_per_clip[SONGMIX]
    print(f"\nsongmix per core, decoding included: {audio_seconds / ours.mean():.0f}x realtime "
          f"(rounds: {', '.join(f'{audio_seconds / cpu:.0f}' for cpu in ours)}); target "
          f">= {TARGET_REALTIME_PER_CORE:.0f}x")
    for baseline in (PLAIN_AUBIO, LIBROSA):
        print(f"songmix vs {baseline}, CPU per clip: "
              f"{cpu_per_clip[baseline].mean() / ours.mean():.2f}x as fast")


def _cpu_per_clip(runs: list[tuple[list[ClipResult], float]]) -> np.ndarray:
    """Mean CPU seconds per clip of each round. Shape (n_rounds,)."""
    return np.array([np.mean([result.cpu_seconds for result in results])
                     for results, _ in runs])


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
