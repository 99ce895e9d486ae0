"""Done-when for the report: on the demo, Aubio's clustering agrees with Spotify's and the
interval excludes chance; on the demo whose previews are rendered from other tracks'
features, the agreement is indistinguishable from chance. Both read back from the warehouse
alone, through `songmix report`."""

from __future__ import annotations

import os
import re

import pytest

from songmix.cli.main import main as songmix
from songmix.cli.predict import predict_song
from songmix.flows.pipeline import pipeline
from songmix.sources.demo_catalog import generate_catalog
from songmix.warehouse.connection import WarehouseError
from songmix.warehouse.reads import report_tables
from songmix.warehouse.store import Warehouse

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

N_TRACKS, N_GROUPS = 60, 3


def _share_rendered_previews(data_dir, mismatch_data_dir) -> None:
    """Seed the mismatched catalog's render cache with the matched catalog's files.

    A mismatched preview is rendered from another track's features with that track's render
    seed, so it is byte for byte the matched catalog's preview of that other track: linking
    saves rendering the same clips twice. (Tied to the demo's cache layout,
    ``<data_dir>/demo-previews/<fingerprint>/<track_id>.mp3``; if that changes, the run just
    renders them.)
    """
    matched = generate_catalog(N_TRACKS, n_groups=N_GROUPS)
    mismatched = generate_catalog(N_TRACKS, n_groups=N_GROUPS, audio_mismatch=True)
    source_dir = data_dir / "demo-previews" / matched.fingerprint
    target_dir = mismatch_data_dir / "demo-previews" / mismatched.fingerprint
    target_dir.mkdir(parents=True)
    for track_id, audio_id in zip(mismatched.truth["track_id"], mismatched.truth["audio_track_id"]):
        if (source_dir / f"{audio_id}.mp3").is_file():
            os.link(source_dir / f"{audio_id}.mp3", target_dir / f"{track_id}.mp3")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The 60-track, 3-group demo and its audio-mismatch variant, each in its own warehouse."""
    root = tmp_path_factory.mktemp("report")
    options = dict(source="demo", n_tracks=N_TRACKS, demo_groups=N_GROUPS, ks=[2, 3, 4], n_seeds=3)
    demo = pipeline(**options, db_path=root / "demo.duckdb", data_dir=root / "data", out_dir=root / "out")
    _share_rendered_previews(root / "data", root / "data-mismatch")
    mismatch = pipeline(**options, demo_audio_mismatch=True, db_path=root / "mismatch.duckdb",
                        data_dir=root / "data-mismatch", out_dir=root / "out-mismatch")
    return root, demo, mismatch


def _agreement(tables, metric: str = "ari"):
    comparison = tables["comparison"]
    return comparison[(comparison["left_set"] == "spotify") & (comparison["right_set"] == "aubio")
                      & (comparison["metric"] == metric)].iloc[0]


def _report(root, name: str, capsys) -> tuple[str, str, str]:
    """`songmix report` on one warehouse: (what it printed, the HTML, the Markdown)."""
    out = root / f"report-{name}"
    assert songmix(["report", "--db", str(root / f"{name}.duckdb"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    return printed, (out / "report.html").read_text(), (out / "report.md").read_text()


def test_on_the_demo_the_interval_excludes_chance(runs, capsys):
    root, demo, _ = runs
    tables = report_tables(root / "demo.duckdb", demo.run_id)
    ari = _agreement(tables)
    assert ari["ci_low"] > ari["null_upper"] and ari["p_value"] < 0.01
    assert ari["interval_method"] == "half-sample" and ari["n_resamples"] == 1000
    printed, page, markdown = _report(root, "demo", capsys)
    assert "agrees with Spotify's more than chance" in printed
    assert f"{ari['ci_low']:.3f}–{ari['ci_high']:.3f}" in printed
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 6
    assert "Tracks left out (0)" in markdown


def test_with_mismatched_audio_the_agreement_is_chance(runs, capsys):
    root, _, mismatch = runs
    tables = report_tables(root / "mismatch.duckdb", mismatch.run_id)
    for metric in ("ari", "ami"):
        row = _agreement(tables, metric)
        assert row["ci_low"] <= row["null_mean"] <= row["ci_high"]
        assert row["p_value"] >= 0.05
    printed, _, _ = _report(root, "mismatch", capsys)
    assert "indistinguishable from chance" in printed


def test_the_marts_hold_pairs_names_profiles_k_and_the_notebook_model(runs):
    root, demo, _ = runs
    tables = report_tables(root / "demo.duckdb", demo.run_id)
    pairs = tables["cluster_pairs"]
    spotify_aubio = pairs[(pairs["left_set"] == "spotify") & (pairs["right_set"] == "aubio")]
    assert len(spotify_aubio) == min(demo.chosen_k.values())
    assert spotify_aubio["overlap"].sum() <= N_TRACKS and (spotify_aubio["left_name"] != "").all()
    profiles = tables["cluster_profiles"]
    assert set(profiles["side"]) >= {"spotify", "aubio", "truth", "notebook_k2"}
    by_k = tables["agreement_by_k"]
    assert sorted(by_k.loc[by_k["comparison"] == "spotify vs aubio", "k"]) == [2, 3, 4]
    assert by_k["ari_ci_low"].notna().all()
    notebook = tables["comparison"][tables["comparison"]["left_set"] == "notebook_k2"]
    assert set(notebook["right_set"]) == {"aubio", "truth"} and (notebook["left_k"] == 2).all()


def test_predict_names_the_matched_clusters_of_both_models(runs):
    root, demo, _ = runs
    tables = report_tables(root / "demo.duckdb", demo.run_id)
    text = predict_song(root / "demo.duckdb", tables["spotify_features"]["track_id"].iloc[0]).as_text()
    names = set(tables["cluster_pairs"]["left_name"]) | set(tables["cluster_pairs"]["right_name"])
    assert re.search(r"spotify +cluster \d+ \((.+?)\)", text).group(1) in names
    assert re.search(r"aubio +cluster \d+ \((.+?)\)", text).group(1) in names


def test_a_warehouse_without_a_comparison_is_refused_plainly(tmp_path):
    Warehouse(tmp_path / "empty.duckdb")
    with pytest.raises(WarehouseError, match="no run .* has fitted models"):
        report_tables(tmp_path / "empty.duckdb")
    with pytest.raises(WarehouseError, match="no run 'nope'"):
        report_tables(tmp_path / "empty.duckdb", "nope")
