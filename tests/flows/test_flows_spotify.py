"""``songmix run --source spotify`` against loopback fakes of Spotify, ReccoBeats and Deezer:
fallbacks fill the warehouse, every missing track is explained, the client secret leaks
nowhere, interrupted searches resume, and the retry policy waits out 429s and backs off 5xx
but not 4xx."""

from __future__ import annotations

import base64
import logging
import math
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "sources"))
from fakes import (  # noqa: E402, F401  (loopback, loopback_server: fixtures)
    FakeSpotify,
    Fault,
    SpotifyWorld,
    loopback,
    loopback_server,
    make_track,
    make_track_id,
    render_base_clips,
    start_spotify_world,
)

from songmix.cli.main import main  # noqa: E402
from songmix.flows.stages import collect_spotify_features, collect_tracks  # noqa: E402
from songmix.sources.base import SpotifyApi  # noqa: E402
from songmix.sources.catalogs import SpotifySource  # noqa: E402
from songmix.sources.http import RateLimiter  # noqa: E402
from songmix.tasks import previews, spotify  # noqa: E402
from songmix.warehouse import reads, records  # noqa: E402
from songmix.warehouse.store import Warehouse  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

CLIENT_ID = "songmix-test-client"
CLIENT_SECRET = "s3cr3t-7f1c9a2e-never-leaks"
N_TRACKS = 300  # the figure; 6 short base clips keep the audio side fast
N_BASE_CLIPS = 6
CATALOG_SIZE = 400  # what the fake search finds for year:2020
# Which of the catalog's tracks each fallback lacks (or lists), by index.
NOT_IN_RECCOBEATS = {i for i in range(N_TRACKS) if i % 37 == 5}
NOT_ON_DEEZER = {i for i in range(N_TRACKS) if i % 41 == 7}
LISTED_PREVIEW = {i for i in range(N_TRACKS) if i % 50 == 3}


@pytest.fixture(scope="module")
def base_clips():
    return render_base_clips(N_BASE_CLIPS)


@pytest.fixture
def world(loopback, monkeypatch, base_clips) -> SpotifyWorld:
    """Spotify (audio-features 403), ReccoBeats and Deezer fakes, configured through the env."""
    world = start_spotify_world(loopback, catalog_size=CATALOG_SIZE, clips=base_clips,
                                not_in_reccobeats=NOT_IN_RECCOBEATS, not_on_deezer=NOT_ON_DEEZER,
                                listed_preview=LISTED_PREVIEW, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    for name, value in world.environment.items():
        monkeypatch.setenv(name, value)
    # Deezer's real quota (50 / 5 s) would add 30 s to 300 lookups; the limiter is unit-tested.
    monkeypatch.setattr(previews, "DEEZER_RATE_LIMITER", RateLimiter(10_000, 5.0))
    spotify._authorized_client.cache_clear()  # a client of an earlier test holds a token this fake never issued
    yield world
    spotify._authorized_client.cache_clear()


def _rows(db: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def test_songmix_run_completes_on_the_fallbacks_and_explains_every_missing_track(
        world, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "w.duckdb"
    started = time.perf_counter()
    status = main(["run", "--source", "spotify", "--tracks", str(N_TRACKS), "--ks", "2,3", "--seeds", "2",
                   "--quiet", "--db", str(db), "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert status == 0
    [(run,)] = _rows(db, "select run_id from runs")
    assert out.startswith(f"run {run} (spotify): ")  # the summary counts only tracks both clusterings saw
    print(f"\nsongmix run --source spotify --tracks {N_TRACKS} on the fakes: {elapsed:.1f} s")
    assert _rows(db, "select status from runs where run_id = ?", run) == [("completed",)]
    assert _rows(db, "select count(*) from run_tracks where run_id = ?", run) == [(N_TRACKS,)]
    # Features: Spotify refused (403) once per batch of 100, ReccoBeats answered 40 at a time.
    assert _rows(db, "select provider, count(*) from spotify_features group by 1") == \
        [("reccobeats", N_TRACKS - len(NOT_IN_RECCOBEATS))]
    assert world.spotify.calls["token"] == 1  # one client per process, its token shared by the threads
    assert world.spotify.calls["audio-features"] == math.ceil(N_TRACKS / 100)
    assert world.reccobeats.calls["audio-features"] == sum(
        math.ceil(min(100, N_TRACKS - start) / 40) for start in range(0, N_TRACKS, 100))
    # Previews: the listed ones where listed, Deezer for the rest, unavailable with a reason.
    providers = dict(_rows(db, "select coalesce(provider, status), count(*) from audio_files group by 1"))
    assert providers == {"listed": len(LISTED_PREVIEW), "deezer": N_TRACKS - len(LISTED_PREVIEW | NOT_ON_DEEZER),
                         "unavailable": len(NOT_ON_DEEZER - LISTED_PREVIEW)}
    assert world.listed.calls["preview"] == len(LISTED_PREVIEW)
    assert world.deezer.calls["track"] == N_TRACKS - len(LISTED_PREVIEW)
    # Every track without features, and every one without audio, is in failed_items with its reason.
    missing = _rows(db, """
        select r.track_id, 'spotify_features' as stage from run_tracks r left join spotify_features s using (track_id)
        where r.run_id = $1 and s.track_id is null
        union all
        select r.track_id, 'download' from run_tracks r left join audio_files a using (track_id)
        where r.run_id = $1 and coalesce(a.status, 'none') <> 'ok'
        """, run)
    assert len(missing) == len(NOT_IN_RECCOBEATS) + len(NOT_ON_DEEZER - LISTED_PREVIEW)
    explained = set(_rows(db, "select item_id, stage from failed_items where run_id = ? and reason <> ''", run))
    assert set(missing) <= explained
    reasons = dict(_rows(db, "select stage, any_value(reason) from failed_items where run_id = ? "
                             "and stage in ('spotify_features', 'download') group by 1", run))
    assert "reccobeats" in reasons["spotify_features"] and "Deezer has no track" in reasons["download"]
    # Each side is compared at its chosen k, the k of its lowest BIC.
    best_k = dict(_rows(db, "select feature_set, arg_min(k, bic) from model_selection "
                            "where run_id = ? and status = 'fitted' group by 1", run))
    assert _rows(db, "select distinct left_k, right_k from comparison "
                     "where run_id = ? and left_set = 'spotify' and right_set = 'aubio'", run) == [
        (best_k["spotify"], best_k["aubio"])]
    _assert_secret_nowhere(db, caplog, run)


def _assert_secret_nowhere(db: Path, caplog, run_id: str) -> None:
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    forms = (CLIENT_SECRET, basic)
    assert caplog.records, "the run logged something, so the scan below means something"
    for record in caplog.records:
        text = record.getMessage() + str(record.args or "")
        assert not any(form in text for form in forms), record.name
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        parameters = [str(flow_run.parameters) for flow_run in client.read_flow_runs()]
    assert parameters and not any(form in text for text in parameters for form in forms)
    columns = _rows(db, "select table_name, column_name from duckdb_columns() "
                        "where data_type in ('VARCHAR', 'JSON') and not internal")
    assert ("runs", "parameters") in columns
    for table, column in columns:
        leaked = _rows(db, f'select count(*) from "{table}" where cast("{column}" as varchar) like ?',
                       f"%{CLIENT_SECRET}%")
        assert leaked == [(0,)], f"{table}.{column}"
    storage = Path(__import__("os").environ["PREFECT_LOCAL_STORAGE_PATH"])
    for path in (p for p in storage.rglob("*") if p.is_file()):
        content = path.read_bytes()
        assert not any(form.encode() in content for form in forms), path


def _spotify_source(fake_spotify: FakeSpotify, n_tracks: int, *, playlist: str | None = None) -> SpotifySource:
    return SpotifySource(n_tracks=n_tracks, playlist=playlist,
                         api=SpotifyApi(fake_spotify.endpoints, "spotify", "spotify"))


def _run_track_ids(warehouse: Warehouse, run_id: str) -> list[str]:
    return list(reads.run_tracks(warehouse, run_id)["track_id"])


def test_an_interrupted_search_resumes_without_refetching_its_pages(world, tmp_path):
    fake_spotify = world.spotify
    warehouse = Warehouse(tmp_path / "w.duckdb")
    n_tracks = 200  # 20 pages in two tasks of 10
    # A 404 is never retried: the first page asked for fails its task, the other task's pages land.
    fake_spotify.inject("search", Fault.json({"error": {"status": 404, "message": "gone"}}, status=404))
    with pytest.raises(Exception, match="404"):
        collect_tracks("first", warehouse.path, _spotify_source(fake_spotify, n_tracks))
    stored_first = _rows(warehouse.path, "select count(*) from search_pages where run_id = 'first'")[0][0]
    assert stored_first == 10
    before = fake_spotify.calls["search"]
    collect_tracks("second", warehouse.path, _spotify_source(fake_spotify, n_tracks))
    tracks = _run_track_ids(warehouse, "second")
    assert len(tracks) == n_tracks and len(set(tracks)) == n_tracks
    assert fake_spotify.calls["search"] - before == 20 - stored_first
    assert _rows(warehouse.path, "select count(*) from search_pages where run_id = 'second'") == [(20,)]
    # A warm rerun the same day asks for nothing.
    collect_tracks("third", warehouse.path, _spotify_source(fake_spotify, n_tracks))
    assert fake_spotify.calls["search"] - before == 20 - stored_first


def test_more_than_1000_tracks_come_from_genre_partitions_deduplicated(loopback, monkeypatch, tmp_path):
    catalog = [make_track(i) for i in range(1800)]
    fake_spotify = FakeSpotify(loopback, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, search_results={
        'genre:"pop" year:2020': catalog[:1000], 'genre:"rock" year:2020': catalog[800:1800]})
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", CLIENT_SECRET)
    spotify._authorized_client.cache_clear()
    warehouse = Warehouse(tmp_path / "w.duckdb")
    collect_tracks("big", warehouse.path, _spotify_source(fake_spotify, 1500))
    spotify._authorized_client.cache_clear()
    assert _run_track_ids(warehouse, "big") == [make_track_id(i) for i in range(1500)]
    # pop: 100 pages; rock: 50 pages for the 500 still wanted (200 were repeats), then 20 more.
    assert fake_spotify.calls["search"] == 170


def test_a_playlist_replaces_the_year_search(world, tmp_path):
    fake_spotify = world.spotify
    playlist = f"https://open.spotify.com/playlist/{make_track_id(9999)}?si=abc"
    from songmix.sources.spotify import playlist_id_from_ref

    warehouse = Warehouse(tmp_path / "w.duckdb")
    collect_tracks("pl", warehouse.path, _spotify_source(fake_spotify, 1000, playlist=playlist))
    assert _run_track_ids(warehouse, "pl") == [make_track_id(i) for i in range(25)]
    assert fake_spotify.calls["search"] == 0 and fake_spotify.calls["playlist-items"] == 1


def test_retries_wait_out_429_back_off_5xx_and_give_up_on_4xx(world, tmp_path, caplog):
    """ReccoBeats answers 429 (Retry-After 1 s) then 503, then serves; a 400 on search is final."""
    fake_spotify, reccobeats = world.spotify, world.reccobeats
    caplog.set_level(logging.INFO, logger="songmix.sources.http")
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ids = [make_track_id(i) for i in range(30)]
    warehouse.write(records.track_rows("faults", pd.DataFrame({"track_id": ids, "name": "n", "artists": "a"})))
    reccobeats.inject("audio-features", Fault.rate_limited(1), Fault.server_error(503))
    started = time.perf_counter()
    collect_spotify_features("faults", warehouse.path, _spotify_source(fake_spotify, 30))
    elapsed = time.perf_counter() - started
    stored = _rows(warehouse.path, "select count(*) from spotify_features where run_id = 'faults'")[0][0]
    assert stored == len([i for i in range(30) if i not in NOT_IN_RECCOBEATS])
    assert reccobeats.calls["audio-features"] == 3  # 429, 503, then the answer
    waits = {record.args[-1]: record.args[-2] for record in caplog.records if "waiting" in record.getMessage()}
    assert waits.keys() == {"Retry-After", "backoff"} and waits["Retry-After"] == 1.0  # the 429, then the 503
    print(f"\n429 wait {waits['Retry-After']:.1f} s, 503 backoff {waits['backoff']:.1f} s, of {elapsed:.1f} s in the stage")
    fake_spotify.inject("search", Fault.json({"error": {"status": 400, "message": "bad"}}, status=400))
    before = fake_spotify.calls["search"]
    with pytest.raises(Exception, match="400"):
        collect_tracks("bad", warehouse.path, _spotify_source(fake_spotify, 10))
    assert fake_spotify.calls["search"] - before == 1


def test_a_spotify_run_without_credentials_stops_with_one_line(world, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("SPOTIPY_CLIENT_ID")
    monkeypatch.delenv("SPOTIPY_CLIENT_SECRET")
    assert main(["run", "--source", "spotify", "--tracks", "20", "--quiet", "--db", str(tmp_path / "w.duckdb"),
                 "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("songmix: error: Spotify credentials not found") and error.count("\n") == 1
    assert "SPOTIPY_CLIENT_SECRET" in error and "spotify-client-secret" in error
    assert world.spotify.calls["search"] == 0
