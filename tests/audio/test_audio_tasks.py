"""The extraction task's per-file records: a file that cannot be analysed gets a readable
reason instead of failing the chunk."""

from __future__ import annotations

import numpy as np
import soundfile

from songmix.tasks.audio import extract_aubio_features


def test_a_file_that_cannot_be_analysed_gets_an_error_row(tmp_path):
    good, empty = tmp_path / "good.wav", tmp_path / "empty.mp3"
    soundfile.write(good, np.zeros(22050, dtype=np.float32), 22050)
    empty.write_bytes(b"")

    rows = extract_aubio_features.fn(["a" * 64, "b" * 64], [str(good), str(empty)], "v1",
                                     chunk="1/1")

    assert "error" not in rows[0] and rows[0]["flags"].startswith("silent")
    assert rows[1]["error"].startswith("empty_file: ")
    assert rows[1]["sha256"] == "b" * 64 and rows[1]["extractor_version"] == "v1"
