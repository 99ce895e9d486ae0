"""Test-wide isolation: no test touches the user's Prefect home, cache or warehouse."""

from __future__ import annotations

import logging
import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(autouse=True)
def _restore_spotipy_logging():
    """``songmix.cli.main`` quiets spotipy's logger for the process; later tests need it back."""
    logger = logging.getLogger("spotipy")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """A throwaway Prefect API and result store shared by every flow test (~10 s once)."""
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect-results")
    previous = os.environ.get("PREFECT_LOCAL_STORAGE_PATH")
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(storage)
    with prefect_test_harness(server_startup_timeout=120):
        yield
    if previous is None:
        os.environ.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    else:
        os.environ["PREFECT_LOCAL_STORAGE_PATH"] = previous


@pytest.fixture
def latest_task_run_states(prefect_harness):
    """``states(name, n)``: the state names of the ``n`` newest task runs whose name contains
    ``name`` in the test Prefect API, newest first."""
    from prefect import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName
    from prefect.client.schemas.sorting import TaskRunSort

    def states(name: str, n: int) -> list[str]:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=name)),
                                         sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=n)
        return [run.state.name for run in runs]

    return states
