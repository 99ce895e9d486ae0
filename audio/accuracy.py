"""Accuracy of extracted tempo and key against ground truth.

Conventions: tempi in beats per minute (0 = no estimate, which never counts as correct);
keys as pitch classes 0-11 (-1 = none), modes 1 major / 0 minor (-1 = none), as in
Spotify's audio features. Scores are fractions in [0, 1].

* Tempo Acc1: estimate within 4 % of the reference. Acc2: within 4 % of the reference times
  1, 2, 3, 1/2 or 1/3 (octave errors forgiven). These are the usual MIR tempo accuracies.
* Key: mir_eval's ``key.weighted_score`` (1 same key, 0.5 fifth, 0.3 relative, 0.2 parallel).
"""

from __future__ import annotations

from typing import NamedTuple

import mir_eval
import numpy as np

from songmix.sources.schema import PITCH_CLASSES

TEMPO_TOLERANCE = 0.04
TEMPO_FACTORS = (1.0, 2.0, 3.0, 1.0 / 2.0, 1.0 / 3.0)


class TempoAccuracy(NamedTuple):
    """Fractions of tracks with a correct tempo: ``acc1`` strict, ``acc2`` octave-tolerant."""

    acc1: float
    acc2: float


def tempo_accuracy(estimated: np.ndarray, reference: np.ndarray) -> TempoAccuracy:
    """Tempo Acc1 and Acc2 of estimates against references.

    Parameters
    ----------
    estimated : array_like of shape (n_tracks,)
        Estimated tempi in BPM, finite and >= 0 (0 = no estimate).
    reference : array_like of shape (n_tracks,)
        True tempi in BPM, finite and > 0.

    Returns
    -------
    TempoAccuracy
    """
    estimated = _as_vector(estimated, "estimated")
    reference = _as_vector(reference, "reference")
    _check_same_length(estimated, reference)
    if np.any(estimated < 0):
        raise ValueError("estimated tempi must be >= 0 BPM (0 = no estimate)")
    if np.any(reference <= 0):
        raise ValueError("reference tempi must be > 0 BPM; drop tracks without a true tempo")
    factors = np.asarray(TEMPO_FACTORS)[:, None]
    within = np.abs(estimated - factors * reference) <= TEMPO_TOLERANCE * factors * reference
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
