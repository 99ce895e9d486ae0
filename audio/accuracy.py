"""Accuracy of extracted tempo and key against ground truth.

Conventions: tempi in beats per minute (0 = no estimate, which never counts as correct);
keys as pitch classes 0-11 (-1 = none), modes 1 major / 0 minor (-1 = none), as in
Spotify's audio features. Scores are fractions in [0, 1].

* Tempo Acc1: estimate within 4 % of the reference. Acc2: within 4 % of the reference times
  1, 2, 3, 1/2 or 1/3 (octave errors forgiven). These are the usual MIR tempo accuracies.
* Key: mir_eval's ``key.weighted_score`` (1 same key, 0.5 fifth, 0.3 relative, 0.2 parallel).

The reference songmix's tempo is measured beside is plain aubio (``plain_aubio_tempo``): its
beat tracker as aubio's own documentation runs it, with no metrical-level choice on top.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from pathlib import Path

import aubio
import mir_eval
import numpy as np
import pandas as pd

from songmix.audio.decode import decode_file
from songmix.sources.schema import PITCH_CLASSES

TEMPO_TOLERANCE = 0.04
TEMPO_FACTORS = (1.0, 2.0, 3.0, 1.0 / 2.0, 1.0 / 3.0)
# Plain aubio: aubio.tempo("default", 1024, 512) at 44.1 kHz, as in aubio's examples.
PLAIN_AUBIO_RATE = 44100
PLAIN_AUBIO_FRAME_SIZE = 1024
PLAIN_AUBIO_HOP_SIZE = 512


class TempoAccuracy(NamedTuple):
    """Fractions of tracks with a correct tempo: ``acc1`` strict, ``acc2`` octave-tolerant."""

    acc1: float
    acc2: float


def tempo_accuracy(
    estimated: np.ndarray, reference: np.ndarray, *, tolerance: float = TEMPO_TOLERANCE
) -> TempoAccuracy:
    """Tempo Acc1 and Acc2 of estimates against references.

    Parameters
    ----------
    estimated : array_like of shape (n_tracks,)
        Estimated tempi in BPM, finite and >= 0 (0 = no estimate).
    reference : array_like of shape (n_tracks,)
        True tempi in BPM, finite and > 0.
    tolerance : float, keyword-only
        Relative tolerance (0.04 = 4 %).

    Returns
    -------
    TempoAccuracy
    """
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance is relative (0.04 = 4 %), got {tolerance!r}")
    estimated = _as_vector(estimated, "estimated")
    reference = _as_vector(reference, "reference")
    _check_same_length(estimated, reference)
    if np.any(estimated < 0):
        raise ValueError("estimated tempi must be >= 0 BPM (0 = no estimate)")
    if np.any(reference <= 0):
        raise ValueError("reference tempi must be > 0 BPM; drop tracks without a true tempo")
    factors = np.asarray(TEMPO_FACTORS)[:, None]
    within = np.abs(estimated - factors * reference) <= tolerance * factors * reference
    return TempoAccuracy(acc1=float(within[0].mean()), acc2=float(within.any(axis=0).mean()))


def key_weighted_score(
    est_key: np.ndarray, est_mode: np.ndarray, ref_key: np.ndarray, ref_mode: np.ndarray
) -> float:
    """Mean of mir_eval's ``key.weighted_score`` over tracks.

    Parameters
    ----------
    est_key, ref_key : array_like of int, shape (n_tracks,)
        Pitch classes 0-11, or -1 for no key (scored as mir_eval's unknown key "X").
    est_mode, ref_mode : array_like of int, shape (n_tracks,)
        1 major, 0 minor; ignored where the key is -1.

    Returns
    -------
    float
        Mean score in [0, 1].
    """
    columns = [_as_vector(values, name) for values, name in (
        (est_key, "est_key"), (est_mode, "est_mode"), (ref_key, "ref_key"), (ref_mode, "ref_mode"))]
    for column in columns[1:]:
        _check_same_length(columns[0], column)
    est_key, est_mode, ref_key, ref_mode = columns
    scores = [
        mir_eval.key.weighted_score(key_string(reference, reference_mode),
                                    key_string(estimate, estimate_mode))
        for estimate, estimate_mode, reference, reference_mode
        in zip(est_key, est_mode, ref_key, ref_mode)
    ]
    return float(np.mean(scores))


def extractor_accuracy(
    estimated: pd.DataFrame, truth: pd.DataFrame, plain_aubio: pd.Series | None = None
) -> dict[str, float]:
    """Tempo Acc1/Acc2 and mean key weighted score of extracted features against truth.

    Parameters
    ----------
    estimated, truth : pandas.DataFrame
        Columns ``tempo``, ``key``, ``mode``, indexed by track; scored on the tracks both
        hold.
    plain_aubio : pandas.Series, optional
        Tempo per track by ``plain_aubio_tempo``; adds the reference's Acc1/Acc2
        (``plain_aubio_tempo_acc1``, ``plain_aubio_tempo_acc2``) on the same tracks.

    Returns
    -------
    dict of str to float
        ``tempo_acc1``, ``tempo_acc2``, ``key_weighted_score`` (and the reference's), and
        ``n_tracks``.
    """
    common = estimated.index.intersection(truth.index)
    ours, reference = estimated.loc[common], truth.loc[common]
    tempo = tempo_accuracy(ours["tempo"].to_numpy(), reference["tempo"].to_numpy())
    key_score = key_weighted_score(
        ours["key"].to_numpy().astype(int), ours["mode"].to_numpy().astype(int),
        reference["key"].to_numpy().astype(int), reference["mode"].to_numpy().astype(int))
    measures = {"tempo_acc1": tempo.acc1, "tempo_acc2": tempo.acc2,
                "key_weighted_score": key_score}
    if plain_aubio is not None:
        plain = tempo_accuracy(plain_aubio.reindex(common).fillna(0.0).to_numpy(),
                               reference["tempo"].to_numpy())
        measures |= {"plain_aubio_tempo_acc1": plain.acc1, "plain_aubio_tempo_acc2": plain.acc2}
    return measures | {"n_tracks": len(common)}


def plain_aubio_tempo(path: str | Path) -> float:
    """The tempo plain aubio reports for an audio file: the reference songmix is measured by.

    ``aubio.tempo("default", 1024, 512, 44100)`` over the whole file (resampled to 44.1 kHz),
    BPM = 60 / the median interval between the beats it reports.

    Parameters
    ----------
    path : str or Path
        An audio file ``songmix.audio.decode.decode_file`` reads.

    Returns
    -------
    float
        Beats per minute, 0.0 when aubio reports fewer than two beats.
    """
    samples = decode_file(path, sample_rate=PLAIN_AUBIO_RATE).samples
    tracker = aubio.tempo("default", PLAIN_AUBIO_FRAME_SIZE, PLAIN_AUBIO_HOP_SIZE,
                          PLAIN_AUBIO_RATE)
    n_hops = len(samples) // PLAIN_AUBIO_HOP_SIZE
    hops = np.ascontiguousarray(samples[: n_hops * PLAIN_AUBIO_HOP_SIZE]).reshape(
        n_hops, PLAIN_AUBIO_HOP_SIZE)
    beats = [tracker.get_last_s() for hop in hops if tracker(hop)[0]]
    intervals = np.diff(beats)
    return float(60.0 / np.median(intervals)) if len(intervals) else 0.0


@cache
def key_score_matrix() -> np.ndarray:
    """mir_eval's weighted key scores of every (reference, estimate) pair of the 24 keys.

    Returns
    -------
    ndarray of shape (24, 24)
        ``[reference, estimate]``, keys indexed ``pitch class + 12 * mode`` (mode 1 major).
    """
    keys = [key_string(pitch, mode) for mode in (0, 1) for pitch in range(12)]
    scores = np.array([[mir_eval.key.weighted_score(reference, estimate) for estimate in keys]
                       for reference in keys])
    scores.flags.writeable = False
    return scores


def key_string(key: float, mode: float) -> str:
    """mir_eval's spelling of a key: ``(0, 1) -> "C major"``, ``(-1, any) -> "X"``."""
    if key == -1:
        return "X"
    if key not in range(12) or mode not in (0, 1):
        raise ValueError(
            f"key must be a pitch class 0-11 (or -1) and mode 1 or 0, got key={key!r}, "
            f"mode={mode!r}"
        )
    return f"{PITCH_CLASSES[int(key)]} {'major' if mode == 1 else 'minor'}"


def _as_vector(values: np.ndarray, name: str) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float64)
    if vector.ndim != 1 or len(vector) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {vector.shape}")
    if not np.isfinite(vector).all():
        raise ValueError(f"{name} contains NaN or infinity; drop those tracks first")
    return vector


def _check_same_length(first: np.ndarray, second: np.ndarray) -> None:
    if len(first) != len(second):
        raise ValueError(
            f"estimates and references must pair up one to one, got {len(first)} and "
            f"{len(second)} values"
        )
