"""Dask for real: the download and extraction stages of 60 short clips run on a
``distributed.LocalCluster`` of two single-threaded worker processes, through
``SONGMIX_EXECUTOR=dask`` and ``SONGMIX_DASK_ADDRESS``; the work runs in the workers'
processes, and the warehouse ends as it does when the same stages run in this process."""

from __future__ import annotations

import io
import os

import pandas as pd
import pytest
import soundfile
from distributed import Client, LocalCluster, get_task_stream
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

from songmix.audio import synthetic
from songmix.flows.stages import collect_audio, extract_features
from songmix.sources.base import SpotifyApi
from songmix.sources.catalogs import SpotifySource
from songmix.sources.spotify import SpotifyEndpoints
from songmix.warehouse import reads, records
from songmix.warehouse.store import Warehouse

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

N_CLIPS = 60
SECONDS = 2.0
RATE = 22050


@pytest.fixture(scope="module")
def clips() -> list[bytes]:
    """Distinct short WAV clips (tempo and key vary), as a preview server would send them."""
    rendered = []
    for i in range(N_CLIPS):
        buffer = io.BytesIO()
        soundfile.write(buffer, synthetic.song(80 + i, i % 12, i % 2, seconds=SECONDS, seed=i), RATE,
                        format="WAV")
        rendered.append(buffer.getvalue())
    return rendered


def _stages(db, audio_dir, base_url: str) -> pd.DataFrame:
    """Tracks listing the clips, then the download and extraction stages; the features stored.
    Every task computes: nothing is taken from the other run's cache."""
    warehouse = Warehouse(db)
    warehouse.write(records.track_rows("run", pd.DataFrame({
        "track_id": [f"track-{i:02d}" for i in range(N_CLIPS)], "name": "clip", "artists": "synth",
        "preview_url": [f"{base_url}/clip-{i}.wav" for i in range(N_CLIPS)]})))
    # The clips' server is the source's API origin: the one loopback address downloads may reach.
    source = SpotifySource(api=SpotifyApi(SpotifyEndpoints(api_url=f"{base_url}/v1", accounts_url=base_url),
                                          "spotify", "clips"))
    with temporary_settings(updates={PREFECT_TASKS_REFRESH_CACHE: True}):
        collect_audio("run", db, source, audio_dir)
        extract_features("run", db)
    return reads.aubio_feature_frame(warehouse, "run").sort_index()


def test_downloads_and_extraction_run_on_the_dask_workers_and_match_a_local_run(
        clips, httpserver, tmp_path, monkeypatch):
    for i, clip in enumerate(clips):
        httpserver.expect_request(f"/clip-{i}.wav").respond_with_data(clip, content_type="audio/wav")
    base_url = httpserver.url_for("").rstrip("/")
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
          Client(cluster) as client):
        worker_pids = client.run(os.getpid)
        monkeypatch.setenv("SONGMIX_EXECUTOR", "dask")
        monkeypatch.setenv("SONGMIX_DASK_ADDRESS", cluster.scheduler_address)
        with get_task_stream(client) as stream:
            on_dask = _stages(tmp_path / "dask.duckdb", tmp_path / "audio-dask", base_url)
    monkeypatch.setenv("SONGMIX_EXECUTOR", "threads")
    local = _stages(tmp_path / "local.duckdb", tmp_path / "audio-local", base_url)

    ran = pd.DataFrame([{"task": record["key"], "worker": record["worker"]} for record in stream.data])
    # Two chunks of downloads and two of extraction, every one on a worker process of the cluster.
    assert ran["task"].str.startswith("download_previews").sum() == 2
    assert ran["task"].str.startswith("extract_aubio_features").sum() == 2
    assert set(ran["worker"]) <= set(worker_pids) and os.getpid() not in worker_pids.values()
    assert ran["worker"].nunique() == 2, "both workers took chunks"
    assert len(on_dask) == N_CLIPS
    pd.testing.assert_frame_equal(on_dask, local)
