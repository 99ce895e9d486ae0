"""Helpers shared by the audio tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

SONG_BPM = 124.0
SONG_KEY = 9  # A
SONG_MODE = 0  # minor


def write_audio(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write samples (shape (n,) or (n, channels)) in the format the suffix names."""
    soundfile.write(path, samples, sample_rate)
    return path
