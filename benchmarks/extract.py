"""Aubio feature extraction against librosa, side by side, on demo previews.

Renders (once, cached) N demo-catalog previews as MP3, then runs, in one go and with the same
number of worker processes over the same files, in ``--rounds`` rounds whose order rotates (so
that a busy neighbour on a shared machine slows every extractor alike):

* ours: ``songmix.audio.features.extract_file`` (decode + every feature of the table);
* librosa, one STFT: the same decode (``load_mono``), then comparable features all computed
  from one shared STFT -- ``beat_track`` tempo on ``onset_strength``, spectral centroid /
  rolloff / flatness, 13 MFCC, ``chroma_stft`` -- the fastest way to use librosa;
* librosa, per doc: the same features each computed from the samples, as librosa's
  documentation shows them (each recomputes its STFT).

Prints clips per second (wall clock, all workers, median round), realtime factor per core
(audio seconds per CPU second over all rounds, measured in each worker with
``time.process_time``), the ratios (overall and per round), and accuracy against the catalog's
truth: tempo Acc1 / Acc2 (all) and the mean mir_eval key weighted score (ours; librosa has no
key estimator). Decoding (``load_mono``) is part of every extractor's time; it is also timed
alone, and the ratios without it are printed as well. Without the demo renderer it falls back
to ``songmix.audio.synthetic`` songs and says so.

Usage::

    python benchmarks/extract.py [--clips 120] [--workers 2] [--rounds 3]
                                 [--cache-dir .cache/bench-previews]
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
import soundfile  # noqa: E402

from songmix.audio import synthetic  # noqa: E402
from songmix.audio.accuracy import key_weighted_score, tempo_accuracy  # noqa: E402
from songmix.audio.decode import ANALYSIS_SAMPLE_RATE, load_mono  # noqa: E402
from songmix.audio.features import extract_file  # noqa: E402

CHUNK_SIZE = 10
OURS = "aubio (songmix)"
LIBROSA_SHARED = "librosa, one STFT"
LIBROSA_IDIOMATIC = "librosa, per doc"
DECODE_ONLY = "decoding alone"


@dataclass(frozen=True)
class Clip:
    path: Path
    tempo: float
    key: int
    mode: int


@dataclass(frozen=True)
class ClipResult:
    cpu_seconds: float
    audio_seconds: float
    tempo: float
    key: int
    mode: int


def main() -> None:
    arguments = _parse_arguments()
    clips, source = _prepare_clips(arguments.clips, arguments.cache_dir)
    print(f"{len(clips)} clips from {source}; {arguments.workers} worker processes, "
          f"{os.cpu_count()} CPUs visible, load average before: {_load_average()}")
    extractors = ((OURS, _extract_ours), (LIBROSA_SHARED, _extract_librosa_shared),
                  (LIBROSA_IDIOMATIC, _extract_librosa_idiomatic), (DECODE_ONLY, _decode_only))
    rounds: dict[str, list[tuple[list[ClipResult], float]]] = {name: [] for name, _ in extractors}
    for round_index in range(arguments.rounds):
        shift = round_index % len(extractors)
        for name, worker in extractors[shift:] + extractors[:shift]:
            rounds[name].append(_run(worker, clips, workers=arguments.workers))
    _report(clips, rounds)
    print(f"load average after: {_load_average()}")


def _parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=120, help="number of previews (>= 1)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (>= 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over all clips, in rotating order (>= 1)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/bench-previews"),
                        help="where rendered MP3 previews are kept between runs")
    arguments = parser.parse_args()
    if min(arguments.clips, arguments.workers, arguments.rounds) < 1:
        parser.error("--clips, --workers and --rounds must be at least 1")
    return arguments


def _prepare_clips(n_clips: int, cache_dir: Path) -> tuple[list[Clip], str]:
    """MP3 previews with their true tempo, key and mode, rendered once into ``cache_dir``."""
    try:
        from songmix.sources.demo_audio import render_catalog_audio
        from songmix.sources.demo_catalog import generate_catalog
    except ImportError as error:
        print(f"demo renderer unavailable ({error}); using songmix.audio.synthetic songs")
        return _synthetic_clips(n_clips, cache_dir), "songmix.audio.synthetic (fallback)"
    catalog = generate_catalog(n_clips)
    paths = render_catalog_audio(catalog, cache_dir, workers=2)
    truth = catalog.truth
    clips = [Clip(paths[track_id], float(tempo), int(key), int(mode))
             for track_id, tempo, key, mode in zip(truth["track_id"], truth["tempo"],
                                                   truth["key"], truth["mode"])]
    return clips, f"the demo catalog (generate_catalog({n_clips}), default seed and groups)"


def _synthetic_clips(n_clips: int, cache_dir: Path) -> list[Clip]:
    rng = np.random.default_rng(0)
    target = cache_dir / "synthetic"
    target.mkdir(parents=True, exist_ok=True)
    clips = []
    for index in range(n_clips):
        tempo, key, mode = float(rng.uniform(84, 152)), int(rng.integers(12)), int(rng.integers(2))
        path = target / f"{index:04d}.mp3"
        if not path.exists():
            soundfile.write(path, synthetic.song(tempo, key, mode, seed=index),
                            ANALYSIS_SAMPLE_RATE)
        clips.append(Clip(path, tempo, key, mode))
    return clips


def _run(worker, clips: list[Clip], *, workers: int) -> tuple[list[ClipResult], float]:
    """Results of ``worker`` over ``clips`` in ``workers`` processes, and the wall time.

    The clock starts once every worker has started and paid its one-off costs.
    """
    chunks = [clips[i:i + CHUNK_SIZE] for i in range(0, len(clips), CHUNK_SIZE)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                initializer=_warm_up) as pool:
        list(pool.map(time.sleep, [0.5] * workers))  # starts (and warms) every worker
        started = time.perf_counter()
        results = [result for chunk in pool.map(worker, chunks) for result in chunk]
        return results, time.perf_counter() - started


def _warm_up() -> None:
    """Pay one-off costs (imports, numba compilation, filter design) before any timing."""
    from songmix.audio.features import extract_features

    clip = synthetic.song(120.0, 0, 1, seconds=5.0)
    _librosa_shared_stft(clip)
    _librosa_each_from_samples(clip)
    extract_features(clip, ANALYSIS_SAMPLE_RATE)


def _extract_ours(chunk: list[Clip]) -> list[ClipResult]:
    results = []
    for clip in chunk:
        started = time.process_time()
        values = extract_file(clip.path).values
        cpu_seconds = time.process_time() - started
        results.append(ClipResult(cpu_seconds, _duration(clip.path), values["tempo"],
                                  int(values["key"]), int(values["mode"])))
    return results


def _extract_librosa_shared(chunk: list[Clip]) -> list[ClipResult]:
    return _time_decoded(chunk, _librosa_shared_stft)


def _extract_librosa_idiomatic(chunk: list[Clip]) -> list[ClipResult]:
    return _time_decoded(chunk, _librosa_each_from_samples)


def _decode_only(chunk: list[Clip]) -> list[ClipResult]:
    return _time_decoded(chunk, lambda samples: float("nan"))


def _time_decoded(chunk: list[Clip], features) -> list[ClipResult]:
    results = []
    for clip in chunk:
        started = time.process_time()
        tempo = features(load_mono(clip.path))
        cpu_seconds = time.process_time() - started
        results.append(ClipResult(cpu_seconds, _duration(clip.path), tempo, -1, -1))
    return results


def _librosa_shared_stft(samples: np.ndarray) -> float:
    """librosa's counterparts of our features, all from one STFT; returns the tempo."""
    import librosa

    rate = ANALYSIS_SAMPLE_RATE
    magnitudes = np.abs(librosa.stft(samples, n_fft=1024, hop_length=512))
    mel_db = librosa.power_to_db(
        librosa.feature.melspectrogram(S=magnitudes**2, sr=rate, n_mels=40))
    onset_envelope = librosa.onset.onset_strength(S=mel_db, sr=rate, hop_length=512)
    tempo, _ = librosa.beat.beat_track(onset_envelope=onset_envelope, sr=rate, hop_length=512)
    _summarise([
        librosa.feature.spectral_centroid(S=magnitudes, sr=rate),
        librosa.feature.spectral_rolloff(S=magnitudes, sr=rate),
        librosa.feature.spectral_flatness(S=magnitudes),
        librosa.feature.mfcc(S=mel_db, n_mfcc=13),
        librosa.feature.chroma_stft(S=magnitudes**2, sr=rate),
    ])
    return float(np.atleast_1d(tempo)[0])


def _librosa_each_from_samples(samples: np.ndarray) -> float:
    """The same features as the librosa documentation computes them: each from the samples."""
    import librosa

    rate = ANALYSIS_SAMPLE_RATE
    tempo, _ = librosa.beat.beat_track(y=samples, sr=rate)
    _summarise([
        librosa.onset.onset_strength(y=samples, sr=rate)[None, :],
        librosa.feature.spectral_centroid(y=samples, sr=rate),
        librosa.feature.spectral_rolloff(y=samples, sr=rate),
        librosa.feature.spectral_flatness(y=samples),
        librosa.feature.mfcc(y=samples, sr=rate, n_mfcc=13),
        librosa.feature.chroma_stft(y=samples, sr=rate),
    ])
    return float(np.atleast_1d(tempo)[0])


def _summarise(per_frame_features: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mean and standard deviation over frames, as our summaries; shapes (n_features,)."""
    return [(feature.mean(axis=1), feature.std(axis=1)) for feature in per_frame_features]


def _duration(path: Path) -> float:
    return soundfile.info(path).duration


def _report(clips: list[Clip], rounds: dict[str, list[tuple[list[ClipResult], float]]]) -> None:
    reference_tempo = np.array([clip.tempo for clip in clips])
    print(f"\n{'extractor':<20}{'wall s':>8}{'clips/s':>9}{'CPU s/clip':>12}"
          f"{'x realtime/core':>17}{'tempo Acc1':>12}{'Acc2':>7}{'key score':>11}")
    cpu_per_clip = {name: _cpu_per_clip(runs) for name, runs in rounds.items()}
    audio_per_clip = np.mean([clip_result.audio_seconds for clip_result in rounds[OURS][0][0]])
    for name, runs in rounds.items():
        if name == DECODE_ONLY:
            continue
        wall = float(np.median([wall for _, wall in runs]))
        clip_results = runs[0][0]  # every round computes the same values
        accuracy = tempo_accuracy([result.tempo for result in clip_results], reference_tempo)
        print(f"{name:<20}{wall:>8.1f}{len(clips) / wall:>9.1f}{cpu_per_clip[name].mean():>12.4f}"
              f"{audio_per_clip / cpu_per_clip[name].mean():>17.0f}{accuracy.acc1:>12.3f}"
              f"{accuracy.acc2:>7.3f}{_key_score(clips, clip_results):>11}")
    decode = cpu_per_clip[DECODE_ONLY]
    print(f"\n{DECODE_ONLY} (load_mono, included in every row above): "
          f"{decode.mean() * 1000:.1f} ms CPU per clip")
    for baseline in (LIBROSA_SHARED, LIBROSA_IDIOMATIC):
        per_round = cpu_per_clip[baseline] / cpu_per_clip[OURS]
        overall = cpu_per_clip[baseline].mean() / cpu_per_clip[OURS].mean()
        without_decode = ((cpu_per_clip[baseline] - decode).mean()
                          / (cpu_per_clip[OURS] - decode).mean())
        print(f"ours vs {baseline}, per core: {overall:.2f}x as fast (rounds: "
              f"{', '.join(f'{ratio:.2f}' for ratio in per_round)}); without decoding: "
              f"{without_decode:.2f}x")
    print(f"\ncommand: {' '.join([Path(sys.executable).name, *sys.argv])}")


def _cpu_per_clip(runs: list[tuple[list[ClipResult], float]]) -> np.ndarray:
    """Mean CPU seconds per clip of each round. Shape (n_rounds,)."""
    return np.array([np.mean([result.cpu_seconds for result in clip_results])
                     for clip_results, _ in runs])


def _key_score(clips: list[Clip], clip_results: list[ClipResult]) -> str:
    """Mean key weighted score, or "-" for an extractor that estimates no key."""
    if all(result.key < 0 for result in clip_results):
        return "-"
    score = key_weighted_score([result.key for result in clip_results],
                               [result.mode for result in clip_results],
                               [clip.key for clip in clips], [clip.mode for clip in clips])
    return f"{score:.3f}"


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
