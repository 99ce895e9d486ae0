"""A folder of the user's audio: files found and hashed, truth.csv parsed and checked, and the
rule that keeps placeholder rows out of the mixture."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from songmix.audio.features import UNFIT_FOR_CLUSTERING, unfit_for_clustering
from songmix.audio.folder import list_audio_files, parse_key, parse_mode, read_truth, track_id_of


def test_audio_files_are_found_recursively_sorted_and_hashed(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/two.FLAC", "one.mp3", "three.ogg", "four.wav"):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "truth.csv").write_text("file,tempo,key,mode\n")

    files = list_audio_files(tmp_path)

    assert [f.path.relative_to(tmp_path).as_posix() for f in files] == [
        "b/two.FLAC", "four.wav", "one.mp3", "three.ogg"]
    assert files[0].sha256 == hashlib.sha256(b"b/two.FLAC").hexdigest()
    assert files[0].n_bytes == len("b/two.FLAC")
    assert files[0].track_id == "file:" + (tmp_path / "b/two.FLAC").resolve().as_posix()


def test_a_folder_without_audio_is_refused_with_advice(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no MP3/WAV/FLAC/OGG"):
        list_audio_files(tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        list_audio_files(tmp_path / "missing")


def test_truth_csv_is_typed_and_keyed_like_the_files(tmp_path):
    (tmp_path / "truth.csv").write_text(
        "File, Tempo, Key, Mode, Genre\n"
        "a.mp3,120,C#,major,rock\n"
        "sub/b.wav,98.5,Bb,minor,\n"
        "c.flac,,9,0,jazz\n"
        "d.ogg,100,,,\n")

    truth = read_truth(tmp_path)

    assert list(truth.index) == [track_id_of(tmp_path / name) for name in
                                 ("a.mp3", "sub/b.wav", "c.flac", "d.ogg")]
    assert truth["key"].tolist() == [1, 10, 9, -1]
    assert truth["mode"].tolist() == [1, 0, 0, -1]
    assert truth["tempo"].iloc[:2].tolist() == [120.0, 98.5] and np.isnan(truth["tempo"].iloc[2])
    assert truth["group"].tolist() == ["rock", None, "jazz", None]


def test_truth_csv_may_name_the_tempo_column_tempo_bpm(tmp_path):
    # realmusic-dev's truth.csv: file,title,tempo_bpm,key,mode,... with extra columns
    (tmp_path / "truth.csv").write_text(
        "file,title,tempo_bpm,key,mode,time_signature\n"
        "clip01.mp3,\"Air, with a comma\",162.0,F,minor,3/4\n")

    truth = read_truth(tmp_path)

    assert truth.loc[track_id_of(tmp_path / "clip01.mp3"), ["tempo", "key", "mode"]].tolist() == [
        162.0, 5, 0]


def test_no_truth_csv_means_no_truth(tmp_path):
    assert read_truth(tmp_path) is None


@pytest.mark.parametrize(("content", "match"), [
    ("file,tempo,key\na.mp3,120,C\n", r"lacks the columns \['mode'\]"),
    ("file,tempo,key,mode\na.mp3,fast,C,major\n", "line 2: tempo 'fast' is not a number"),
    ("file,tempo,key,mode\na.mp3,-3,C,major\n", "line 2: tempo '-3' must be a positive"),
    ("file,tempo,key,mode\na.mp3,120,H,major\n", "line 2: key 'H' is not a pitch class"),
    ("file,tempo,key,mode\na.mp3,120,C,dorian\n", "line 2: mode 'dorian' must be"),
    ("file,tempo,key,mode\na.mp3,120,C,major\na.mp3,121,C,major\n", "more than once"),
    ("file,tempo,key,mode\n,120,C,major\n", "line 2: the file column is empty"),
])
def test_bad_truth_csv_names_the_problem(tmp_path, content, match):
    (tmp_path / "truth.csv").write_text(content)
    with pytest.raises(ValueError, match=match):
        read_truth(tmp_path)


@pytest.mark.parametrize(("text", "key"), [("C", 0), ("c#", 1), ("Db", 1), ("B", 11), ("Cb", 11),
                                           ("11", 11), (" ", -1)])
def test_keys_are_read_with_sharps_flats_or_numbers(text, key):
    assert parse_key(text) == key


@pytest.mark.parametrize(("text", "mode"), [("Major", 1), ("min", 0), ("1", 1), ("0", 0), ("", -1)])
def test_modes_are_read_by_name_or_number(text, mode):
    assert parse_mode(text) == mode


def test_only_rows_without_a_tempo_are_kept_out_of_the_fit():
    reasons = unfit_for_clustering({"a": 120.0, "b": 0.0, "c": 0.5})
    assert reasons == {"b": UNFIT_FOR_CLUSTERING}
    assert "no_beat" in UNFIT_FOR_CLUSTERING


def _folder_with_links(tmp_path):
    """music/ with one song, a link to a file outside, a link to its own song, a link to a
    folder outside; outside/ holds a password-like file and a song."""
    music, outside = tmp_path / "music", tmp_path / "outside"
    music.mkdir(), outside.mkdir()
    (music / "song.mp3").write_bytes(b"inside")
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (outside / "far.mp3").write_bytes(b"outside")
    (music / "stolen.mp3").symlink_to(outside / "passwd")
    (music / "again.mp3").symlink_to(music / "song.mp3")
    (music / "elsewhere").symlink_to(outside, target_is_directory=True)
    return music, outside


def test_links_never_lead_out_of_the_folder_and_a_file_counts_once(tmp_path, caplog):
    music, _ = _folder_with_links(tmp_path)
    files = list_audio_files(music)
    assert [f.path for f in files] == [(music / "song.mp3").resolve()]
    assert "skipped 2 link(s) leading out of" in caplog.text  # stolen.mp3 and elsewhere/


def test_following_links_is_a_choice(tmp_path):
    music, outside = _folder_with_links(tmp_path)
    (outside / "loop").symlink_to(outside, target_is_directory=True)  # entered once, not forever
    files = list_audio_files(music, follow_links=True)
    # a link counts by what it points at: stolen.mp3 is a file named passwd, not audio
    assert sorted(f.path for f in files) == sorted([(outside / "far.mp3").resolve(),
                                                    (music / "song.mp3").resolve()])


def test_a_truth_csv_linked_from_outside_is_refused(tmp_path):
    music, outside = _folder_with_links(tmp_path)
    (outside / "truth.csv").write_text("file,tempo,key,mode\nsong.mp3,120,C,major\n")
    (music / "truth.csv").symlink_to(outside / "truth.csv")
    with pytest.raises(ValueError, match="link leading out of"):
        read_truth(music)


def test_a_folder_1100_levels_deep_is_listed(tmp_path):
    deepest = tmp_path
    for _ in range(1100):  # one by one: mkdir(parents=True) itself recurses too deep
        deepest = deepest / "d"
        deepest.mkdir()
    (deepest / "song.wav").write_bytes(b"deep")
    try:
        assert [f.path for f in list_audio_files(tmp_path)] == [deepest.resolve() / "song.wav"]
    finally:  # one by one again: shutil.rmtree, which cleans tmp_path up, recurses too
        (deepest / "song.wav").unlink()
        while deepest != tmp_path:
            deepest.rmdir()
            deepest = deepest.parent


def test_a_folder_of_20000_files_is_listed_whole(tmp_path):
    for group in range(20):
        (tmp_path / f"g{group:02d}").mkdir()
        for index in range(1000):
            (tmp_path / f"g{group:02d}" / f"{index:04d}.mp3").touch()
    files = list_audio_files(tmp_path)
    assert len(files) == 20_000 and len({f.track_id for f in files}) == 20_000
    assert files[0].path.relative_to(tmp_path).as_posix() == "g00/0000.mp3"
    assert files[0].sha256 == hashlib.sha256(b"").hexdigest() and files[0].n_bytes == 0
