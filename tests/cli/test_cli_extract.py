"""``songmix extract FILE...``: one row per file with tempo, key and mode by name; a bad file
prints its reason, the others still print, and the exit status says something failed."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import soundfile

from songmix.audio import synthetic
from songmix.audio.features import AUBIO_FEATURE_COLUMNS
from songmix.cli.main import main

RATE = 22050


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("extract")
    soundfile.write(folder / "a_minor.wav", synthetic.song(124.0, 9, 0, seconds=8.0), RATE)
    soundfile.write(folder / "d_major.flac", synthetic.song(96.0, 2, 1, seconds=8.0), RATE)
    soundfile.write(folder / "silence.wav", np.zeros(RATE * 2, dtype=np.float32), RATE)
    (folder / "not_audio.mp3").write_text("<html>error</html>")
    return folder


def test_csv_rows_name_key_and_mode(songs, capsys):
    status = main(["extract", str(songs / "a_minor.wav"), str(songs / "d_major.flac")])

    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert status == 0
    assert [(row["key"], row["mode"]) for row in rows] == [("A", "minor"), ("D", "major")]
    assert float(rows[0]["tempo"]) == pytest.approx(124.0, rel=0.04)
    assert float(rows[1]["tempo"]) == pytest.approx(96.0, rel=0.04)
    assert set(AUBIO_FEATURE_COLUMNS) <= set(rows[0])


def test_a_bad_file_prints_its_reason_and_the_others_still_print(songs, capsys):
    status = main(["extract", "--format", "json", str(songs / "not_audio.mp3"),
                   str(songs / "silence.wav"), str(songs / "a_minor.wav")])

    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert status == 1
    assert [row["file"] for row in rows] == [str(songs / "silence.wav"), str(songs / "a_minor.wav")]
    assert rows[0]["key"] == rows[0]["mode"] == "none" and "silent" in rows[0]["flags"]
    assert all(np.isfinite(value) for row in rows for name, value in row.items()
               if name in AUBIO_FEATURE_COLUMNS and name not in ("key", "mode"))
    assert "not_audio.mp3: not_audio:" in captured.err


def test_an_unknown_format_is_a_usage_error(songs):
    with pytest.raises(SystemExit) as raised:
        main(["extract", "--format", "xml", str(songs / "a_minor.wav")])
    assert raised.value.code == 2
