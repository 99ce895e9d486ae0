"""Run settings: heartbeats stay on for a real Prefect server, off for a temporary one."""

from __future__ import annotations

from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from songmix.flows.settings import local_run_settings


def test_a_temporary_server_gets_no_flow_heartbeats():
    with temporary_settings(updates={PREFECT_API_URL: None}):
        assert get_current_settings().flows.heartbeat_frequency is not None
        with local_run_settings():
            assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().flows.heartbeat_frequency is not None


def test_a_configured_server_keeps_heartbeats_to_spot_crashed_runs():
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        before = get_current_settings().flows.heartbeat_frequency
        with local_run_settings():
            assert get_current_settings().flows.heartbeat_frequency == before is not None
