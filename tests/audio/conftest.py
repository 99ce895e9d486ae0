"""Audio files for the audio tests, synthesised with songmix.audio.synthetic.

MP3 encoding costs ~0.3 s a clip, so the MP3 fixture is session-scoped and shared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_files import SONG_BPM, SONG_KEY, SONG_MODE, write_audio

from songmix.audio import synthetic


@pytest.fixture(scope="session")
def song_mp3(tmp_path_factory) -> Path:
    """A 20 s song at SONG_BPM in SONG_KEY/SONG_MODE, 44.1 kHz stereo MP3 like real previews."""
    mono = synthetic.song(SONG_BPM, SONG_KEY, SONG_MODE, seconds=20.0, sample_rate=44100)
    stereo = np.stack([mono, 0.8 * mono], axis=1)
    return write_audio(tmp_path_factory.mktemp("mp3") / "song.mp3", stereo, 44100)
