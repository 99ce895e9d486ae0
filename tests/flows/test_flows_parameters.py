"""The one check of run parameters, as flows (deployments, API calls) and the CLI use it."""

from __future__ import annotations

import pytest

from songmix.flows.parameters import (
    MAX_K,
    parse_ks,
    validate_fit_parameters,
    validate_parameters,
)


@pytest.mark.parametrize(("text", "ks"), [
    ("2-10", list(range(2, 11))), ("2,4,8", [2, 4, 8]), ("8,4,4", [4, 8]), (" 3 - 4 ", [3, 4]),
    ("5", [5]), (f"1-{MAX_K}", list(range(1, MAX_K + 1)))])
def test_k_ranges_and_lists_parse(text, ks):
    assert parse_ks(text) == ks


@pytest.mark.parametrize(("text", "message"), [
    ("10-2", "goes down"), ("2-30000000", "from 1 to 100"), ("0-4", "(got 0)"), ("-3", "(got -3)"),
    ("2-", "a range like 2-10"), ("", "a range like 2-10"), ("2,,3", "a range like 2-10")])
def test_bad_k_ranges_are_refused_in_one_line(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as refused:
        parse_ks(text)
    assert "\n" not in str(refused.value)


def test_a_folder_or_data_set_may_hold_more_tracks_than_a_search_collects():
    """--tracks bounds what a search collects; an audio folder of 20 000 files or a re-clustered
    data set of 114 000 rows is bounded by nothing but its size (k must fit in it)."""
    validate_fit_parameters(k=None, ks=[2, 3], n_seeds=10, n_samples=114_000)
    validate_fit_parameters(k=8, ks=[2, 3], n_seeds=10, n_samples=20_000)
    with pytest.raises(ValueError, match="more clusters than there are tracks"):
        validate_fit_parameters(k=8, ks=[2, 3], n_seeds=10, n_samples=5)
    with pytest.raises(ValueError, match="--tracks"):
        validate_parameters(n_tracks=20_000, k=None, ks=[2], n_seeds=10)


@pytest.mark.parametrize("parameters", [
    dict(ks=[2, 10**7]), dict(ks=[]), dict(n_seeds=0), dict(n_seeds=10**6), dict(k=0), dict(k=2.5),
    dict(year=-1), dict(year=10**30), dict(demo_groups=0), dict(n_tracks=True)])
def test_a_deployment_cannot_pass_what_the_command_line_refuses(parameters):
    given = dict(n_tracks=100, k=None, ks=[2, 3], n_seeds=10, demo_groups=6, year=2020) | parameters
    with pytest.raises(ValueError):
        validate_parameters(**given)


@pytest.mark.parametrize(("source", "options", "message"), [
    ("demo", dict(n_tracks=0), "--tracks must be a whole number from 1 to"),
    ("demo", dict(demo_groups=9), "--demo-groups must be a whole number from 1 to 8"),
    ("spotify", dict(playlist="not a playlist"), "is not a Spotify playlist"),
    ("dir:/no/such/folder", {}, "is not a folder"),
])
def test_the_pipeline_refuses_a_sources_settings_before_anything_runs(tmp_path, source, options, message):
    from songmix.flows.pipeline import source_of, validate_run

    parameters = dict(source=source, n_tracks=100, demo_groups=6) | options
    with pytest.raises(ValueError, match=message):
        validate_run(source_of(parameters), k=None, ks=[2, 3], n_seeds=10,
                     demo_groups=parameters["demo_groups"], year=2020, out_dir=tmp_path)
