"""Reading Spotify-schema CSV data sets: column aliases, one error for missing columns, and
bad rows rejected with their reasons while the rest load."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from songmix.sources.csv_import import (
    CsvReadError,
    CsvSchemaError,
    match_columns,
    read_csv_header,
    read_spotify_csv,
)
from songmix.sources.schema import SPOTIFY_FEATURE_COLUMNS

# The header of Kaggle's "Spotify Tracks Dataset" (114k tracks, 114 genres), index column included.
KAGGLE_HEADER = ["", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms",
                 "explicit", "danceability", "energy", "key", "loudness", "mode", "speechiness",
                 "acousticness", "instrumentalness", "liveness", "valence", "tempo", "time_signature",
                 "track_genre"]


def kaggle_rows(n: int, *, seed: int = 0) -> list[dict]:
    """Rows shaped like the Kaggle file; features drawn per genre so genres are separable."""
    rng = random.Random(seed)
    genres = {"acoustic": (0.2, 0.9, 90), "edm": (0.9, 0.05, 128), "hip-hop": (0.6, 0.2, 95)}
    rows = []
    for i in range(n):
        genre = list(genres)[i % 3]
        energy, acoustic, tempo = genres[genre]
        rows.append({"": str(i), "track_id": f"{i:022d}".replace("0", "A", 3), "artists": f"Artist {i};Guest {i % 4}",
                     "album_name": f"Album {i // 4}", "track_name": f"Song, {i}", "popularity": "50",
                     "duration_ms": str(180000 + i), "explicit": "False",
                     "danceability": f"{rng.uniform(0.3, 0.9):.3f}", "energy": f"{energy + rng.uniform(-0.05, 0.05):.3f}",
                     "key": str(i % 12), "loudness": f"{-20 + 15 * energy + rng.uniform(-1, 1):.2f}", "mode": str(i % 2),
                     "speechiness": f"{0.3 if genre == 'hip-hop' else 0.05:.3f}",
                     "acousticness": f"{acoustic + rng.uniform(-0.04, 0.04):.3f}",
                     "instrumentalness": f"{0.8 if genre == 'edm' else 0.01:.3f}", "liveness": f"{rng.uniform(0.05, 0.3):.3f}",
                     "valence": f"{rng.uniform(0.2, 0.8):.3f}", "tempo": f"{tempo + rng.uniform(-3, 3):.2f}",
                     "time_signature": "4", "track_genre": genre})
    return rows


BAD_ROWS = {  # row index -> (column, value written) -> expected words in the reason
    3: ("energy", "abc", "energy 'abc' is not a number"),
    7: ("danceability", "1.7", "danceability 1.7 is outside 0..1"),
    11: ("key", "5.5", "key 5.5 is not a whole number"),
    13: ("tempo", "", "tempo is empty"),
}


def write_kaggle_csv(path, n: int = 60) -> dict[int, str]:
    """A Kaggle-shaped CSV with the bad rows above and a repeated id; returns line -> reason words."""
    rows = kaggle_rows(n)
    expected = {}
    for index, (column, value, words) in BAD_ROWS.items():
        rows[index][column] = value
        expected[index + 2] = words
    rows.append(dict(rows[0], **{"": str(n)}))  # the same track again, as the Kaggle file has
    expected[n + 2] = f"repeats track id {rows[0]['track_id']} first seen on line 2"
    pd.DataFrame(rows, columns=KAGGLE_HEADER).to_csv(path, index=False)
    return expected


def test_a_kaggle_shaped_file_loads_its_good_rows_and_rejects_the_bad_with_reasons(tmp_path):
    path = tmp_path / "dataset.csv"
    expected = write_kaggle_csv(path, n=60)
    dataset = read_spotify_csv(path)
    assert len(dataset.tracks) == 60 - len(BAD_ROWS)
    assert list(dataset.features.columns) == list(SPOTIFY_FEATURE_COLUMNS)
    assert list(dataset.features.index) == list(dataset.tracks["track_id"])
    reasons = dict(zip(dataset.rejected["line_number"], dataset.rejected["reason"]))
    assert set(reasons) == set(expected)
    for line, words in expected.items():
        assert words in reasons[line]
    assert json.loads(dataset.rejected["row"].iloc[0])["track_name"].startswith("Song")
    assert dataset.tracks["artists"].iloc[0] == "Artist 0, Guest 0"
    assert dataset.tracks["album"].iloc[0] == "Album 0" and dataset.tracks["duration_ms"].iloc[0] == 180000
    assert set(dataset.genres) == {"acoustic", "edm", "hip-hop"}
    assert set(dataset.genres.index) == set(dataset.tracks["track_id"])
    assert dataset.column_map["name"] == "track_name" and dataset.column_map["genre"] == "track_genre"


def test_columns_match_case_insensitively_through_aliases():
    header = ["ID", "Name", "Artists", "Year", *(c.upper() for c in SPOTIFY_FEATURE_COLUMNS)]
    found = match_columns(header)
    assert found["track_id"] == "ID" and found["name"] == "Name" and found["year"] == "Year"
    assert found["tempo"] == "TEMPO" and "genre" not in found


def test_missing_required_columns_are_listed_in_one_error_and_nothing_is_read(tmp_path):
    path = tmp_path / "thin.csv"
    pd.DataFrame({"id": ["x"], "energy": ["0.5"], "tempo": ["120"]}).to_csv(path, index=False)
    with pytest.raises(CsvSchemaError) as caught:
        read_csv_header(path)
    message = str(caught.value)
    for column in ("name (as track_name or name", "artists", "danceability", "valence", "key", "mode"):
        assert column in message
    assert "energy" not in message.split("its columns")[0] and "tempo" not in message.split("its columns")[0]
    with pytest.raises(CsvSchemaError):
        read_spotify_csv(path)


def test_artists_written_as_a_list_become_one_text():
    from songmix.sources.csv_import import _artists

    assert _artists("['Queen', 'David Bowie']") == "Queen, David Bowie"
    assert _artists("Queen;David Bowie") == "Queen, David Bowie"
    assert _artists("[not a list") == "[not a list"


def test_spotify_uris_are_reduced_to_ids(tmp_path):
    rows = kaggle_rows(3)
    rows[0]["track_id"] = "spotify:track:" + rows[0]["track_id"]
    path = tmp_path / "uris.csv"
    pd.DataFrame(rows, columns=KAGGLE_HEADER).to_csv(path, index=False)
    assert read_spotify_csv(path).tracks["track_id"].iloc[0] == kaggle_rows(3)[0]["track_id"]


def test_a_clean_file_gives_an_empty_but_typed_rejected_frame(tmp_path):
    path = tmp_path / "clean.csv"
    pd.DataFrame(kaggle_rows(12), columns=KAGGLE_HEADER).to_csv(path, index=False)
    rejected = read_spotify_csv(path).rejected
    assert rejected.empty and list(rejected.columns) == ["line_number", "track_id", "reason", "row"]
    assert rejected["reason"].str.split("; ").str[0].value_counts().to_dict() == {}


ODD_OPTIONAL_VALUES = {  # row index -> (column, value written, words of the reason)
    1: ("duration_ms", "inf", "duration_ms 'inf' is not a number"),
    2: ("duration_ms", "-5", "duration_ms -5 is outside 1..86400000"),
    3: ("duration_ms", "1e30", "duration_ms 1e+30 is outside 1..86400000"),
    4: ("duration_ms", "1500.5", "duration_ms 1500.5 is not a whole number"),
    5: ("year", "1e30", "year 1e+30 is outside 1900.."),
    6: ("year", "-1", "year -1 is outside 1900.."),
    7: ("year", "nan", "year 'nan' is not a number"),
    8: ("year", "soon", "year 'soon' is not a number"),
    9: ("danceability", "inf", "danceability 'inf' is not a number"),
}


def test_optional_numbers_out_of_any_plausible_range_reject_their_row(tmp_path):
    rows = [dict(row, year="2020") for row in kaggle_rows(14)]
    for index, (column, value, _) in ODD_OPTIONAL_VALUES.items():
        rows[index][column] = value
    rows[10]["year"] = rows[11]["duration_ms"] = ""  # unknown is fine
    path = tmp_path / "odd.csv"
    pd.DataFrame(rows, columns=[*KAGGLE_HEADER, "year"]).to_csv(path, index=False)
    dataset = read_spotify_csv(path)
    reasons = dict(zip(dataset.rejected["line_number"], dataset.rejected["reason"]))
    assert set(reasons) == {index + 2 for index in ODD_OPTIONAL_VALUES}
    for index, (_, _, words) in ODD_OPTIONAL_VALUES.items():
        assert reasons[index + 2].startswith(words)
    tracks = dataset.tracks
    assert len(tracks) == 14 - len(ODD_OPTIONAL_VALUES)
    assert pd.isna(tracks["year"].iloc[1]) and pd.isna(tracks["duration_ms"].iloc[2])
    assert tracks["year"].iloc[0] == 2020 and tracks["duration_ms"].iloc[0] == 180000


def test_a_file_that_is_not_utf8_is_refused_in_one_line_naming_it(tmp_path):
    rows = kaggle_rows(5)
    rows[3]["track_name"] = "Café Olé"
    path = tmp_path / "latin1.csv"
    pd.DataFrame(rows, columns=KAGGLE_HEADER).to_csv(path, index=False, encoding="latin-1")
    for read in (read_csv_header, read_spotify_csv):  # the header alone is ASCII: all is read
        with pytest.raises(CsvReadError, match="not UTF-8") as refused:
            read(path)
        assert str(path) in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(("content", "words"), [(b"", "is empty"), (b'a,"b\n1,2,3,4\n', "cannot be read as CSV")])
def test_an_empty_or_broken_file_is_refused_naming_it(tmp_path, content, words):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(CsvReadError, match=words) as refused:
        read_spotify_csv(path)
    assert str(path) in str(refused.value)
