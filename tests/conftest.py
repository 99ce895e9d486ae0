"""Test-wide isolation: no test touches the user's Prefect home, cache or warehouse."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


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
