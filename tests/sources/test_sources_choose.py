"""The one Source interface: ``--source`` forms, what each source says it can give, and the
batches a CSV, a folder and a stored run list (no Prefect, no warehouse)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from songmix.sources import files
from songmix.sources.catalogs import DemoSource, SpotifySource
from songmix.sources.choose import parse_source
from songmix.sources.files import CsvSource, FolderSource
from songmix.sources.stored import StoredRunSource
from test_sources_csv import KAGGLE_HEADER, kaggle_rows


def test_each_form_names_its_source_and_what_it_can_fetch(tmp_path):
    demo, spotify = parse_source("demo", n_tracks=50), parse_source("spotify", year=2021)
    assert isinstance(demo, DemoSource) and demo.name == "demo" and demo.run_name() == "demo-50"
    assert isinstance(spotify, SpotifySource) and spotify.parameters()["year"] == 2021
    data_set = parse_source(f"csv:{tmp_path / 'kaggle.csv'}", dataset="tracks")
    assert isinstance(data_set, CsvSource) and data_set.name == "csv:tracks"
    assert parse_source(f"csv:{tmp_path / 'kaggle.csv'}").name == "csv:kaggle"
    folder = parse_source(f"dir:{tmp_path}")
    assert isinstance(folder, FolderSource) and folder.name == "audio-dir"
    assert isinstance(parse_source("run:latest"), StoredRunSource)
    assert (demo.fetches_features, demo.fetches_audio) == (True, True)
    assert (data_set.fetches_features, data_set.fetches_audio) == (False, False)
    assert (folder.fetches_features, folder.fetches_audio) == (False, False)


@pytest.mark.parametrize(("spec", "options", "message"), [
    ("deezer", {}, "unknown source 'deezer'"),
    ("csv:", {}, "unknown source 'csv:'"),
    ("demo", {"playlist": "x"}, "--playlist needs --source spotify"),
    ("demo", {"dataset": "x"}, "--name names a CSV data set"),
])
def test_an_unknown_form_or_a_misplaced_option_is_one_clear_error(spec, options, message):
    with pytest.raises(ValueError, match=message):
        parse_source(spec, **options)


@pytest.mark.parametrize(("source", "message"), [
    (SpotifySource(playlist="not a playlist"), "is not a Spotify playlist"),
    (FolderSource(path=Path("/no/such/folder")), "is not a folder"),
])
def test_check_refuses_settings_before_anything_runs(source, message):
    with pytest.raises(ValueError, match=message):
        source.check()


def test_a_csv_is_listed_in_batches_with_its_features_and_genres(tmp_path, monkeypatch):
    path = tmp_path / "kaggle.csv"
    pd.DataFrame(kaggle_rows(25), columns=KAGGLE_HEADER).to_csv(path, index=False)
    monkeypatch.setattr(files, "CSV_BATCH_ROWS", 10)
    batches = list(CsvSource(path=path).track_batches(listing=None))
    assert batches[0]["rejected_rows"].empty
    assert [len(batch["tracks"]) for batch in batches[1:]] == [10, 10, 5]
    for batch in batches[1:]:
        assert list(batch["spotify_features"]["track_id"]) == list(batch["tracks"]["track_id"])
        assert set(batch["spotify_features"]["provider"]) == {"csv:kaggle"}
        assert list(batch["csv_genres"]["track_id"]) == list(batch["tracks"]["track_id"])


def test_a_folders_truth_keeps_unknown_cells_unknown(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "b.wav").write_bytes(b"RIFF2")
    (tmp_path / "truth.csv").write_text("file,tempo,key,mode,genre\na.wav,120,A,minor,house\nb.wav,,,,\n")
    batches = list(FolderSource(path=tmp_path).track_batches(listing=None))
    assert list(batches[0]["tracks"]["name"]) == ["a", "b"]
    assert set(batches[0]["audio_files"]["status"]) == {"ok"}
    truth = batches[-1]["demo_truth"].set_index("track_id")
    row_a, row_b = truth.iloc[0], truth.iloc[1]
    assert (row_a["group_name"], row_a["tempo"], row_a["key"], row_a["mode"]) == ("house", 120.0, 9, 0)
    assert pd.isna(row_b["group_name"]) and pd.isna(row_b["tempo"]) and pd.isna(row_b["key"])


class _Stored:
    def latest_completed_run(self):
        return "r2"

    def run_source(self, run_id):
        return {"r1": "demo", "r2": "csv:kaggle"}[run_id]

    def run_tracks(self, run_id):
        return pd.DataFrame({"track_id": ["a", "b"], "name": "n", "artists": "x"})


def test_a_stored_run_resolves_to_its_runs_source_and_lists_its_tracks():
    resolved = StoredRunSource().resolved(_Stored())
    assert (resolved.from_run, resolved.name) == ("r2", "csv:kaggle")
    assert resolved.parameters() == {"reclustered_from": "r2"}
    assert StoredRunSource(from_run="r1").resolved(_Stored()).name == "demo"
    [batch] = resolved.track_batches(_Stored())
    assert list(batch["tracks"]["track_id"]) == ["a", "b"]
