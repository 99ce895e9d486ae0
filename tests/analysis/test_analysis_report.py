"""The report, rendered from tables shaped like the stored marts: the headline follows the
evidence, the HTML is self-contained, and bad input (few tracks, one cluster, missing tracks,
no comparison) is said plainly instead of crashing."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest

from songmix.analysis.agreement import agreement_across_k, agreement_with_uncertainty
from songmix.analysis.compare import compare_clusterings, matched_cluster_profiles
from songmix.analysis.features import direct_agreement, feature_agreement
from songmix.analysis.report import DEMO_AUDIO_CAVEAT, REPORT_TABLES, RUN_KINDS, build_report, headline_sentence
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES
from songmix.tasks.compare import Agreement, FeatureMeasures
from songmix.warehouse import records

AUBIO_COLUMNS = ["tempo", "loudness", "onset_rate", "spectral_centroid_mean"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _features(groups: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spotify- and Aubio-like features whose means move with ``groups``."""
    ids = [f"t{i:03d}" for i in range(len(groups))]
    shift = groups[:, None].astype(float)
    spotify = pd.DataFrame(0.2 + 0.2 * shift + 0.05 * rng.standard_normal((len(groups), len(SPOTIFY_CLUSTER_FEATURES))),
                           index=pd.Index(ids, name="track_id"), columns=list(SPOTIFY_CLUSTER_FEATURES))
    spotify["tempo"] = 90 + 20 * groups + rng.standard_normal(len(groups))
    spotify["loudness"] = -12 + 3 * groups + rng.standard_normal(len(groups))
    spotify["key"], spotify["mode"] = groups % 12, groups % 2
    aubio = pd.DataFrame({"tempo": spotify["tempo"] + rng.standard_normal(len(groups)),
                          "loudness": spotify["loudness"] + rng.standard_normal(len(groups)),
                          "onset_rate": 2 + groups + 0.3 * rng.standard_normal(len(groups)),
                          "spectral_centroid_mean": 800 + 100 * groups + 30 * rng.standard_normal(len(groups)),
                          "key": groups % 12, "mode": groups % 2}, index=spotify.index)
    return spotify, aubio


def _model_rows(feature_set: str, frame: pd.DataFrame, labels: np.ndarray, ids: list[str]):
    """Stored-model rows (models, components, assignments) with cluster means and covariances."""
    columns = list(frame.columns)
    scale = frame.std(ddof=0).replace(0.0, 1.0).to_numpy()
    k = int(labels.max()) + 1
    components = []
    for component in range(k):
        members = frame.to_numpy()[labels == component]
        covariance = np.cov(members, rowvar=False) if len(members) > 2 else np.eye(len(columns))
        components.append({"feature_set": feature_set, "k": k, "component": component, "weight": len(members) / len(ids),
                           "mean_original": members.mean(axis=0).tolist() if len(members) else [0.0] * len(columns),
                           "covariance": (np.atleast_2d(covariance) / np.outer(scale, scale) + 1e-6 * np.eye(len(columns))).ravel().tolist()})
    model = {"feature_set": feature_set, "k": k, "covariance_type": "full", "warnings": [],
             "features": columns, "scaler_mean": frame.mean().tolist(),
             "scaler_scale": scale.tolist(), "n_samples": len(ids), "track_ids": ids}
    assignments = pd.DataFrame({"feature_set": feature_set, "track_id": ids, "cluster": labels})
    return model, pd.DataFrame(components), assignments


def make_tables(
    *, n_tracks: int = 90, aubio_noise: float = 0.1, aubio_k: int = 3, n_missing: int = 0, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """One run's report tables, computed with songmix's own analysis and record functions.

    ``aubio_noise`` is the share of tracks whose Aubio label is redrawn at random (1.0: chance).
    """
    rng = np.random.default_rng(seed)
    spotify_labels = np.arange(n_tracks) % 3
    aubio_labels = np.where(rng.random(n_tracks) < aubio_noise, rng.integers(0, 3, n_tracks), spotify_labels)
    aubio_labels = aubio_labels % aubio_k if aubio_k > 1 else np.zeros(n_tracks, dtype=int)
    spotify, aubio = _features(spotify_labels, rng)
    ids = list(spotify.index)
    tables: dict[str, list[pd.DataFrame]] = {}
    for left, left_labels, right, right_labels in (("spotify", spotify_labels, "aubio", aubio_labels),
                                                   ("spotify", spotify_labels, "truth", spotify_labels)):
        agreement = Agreement(left, right, len(np.unique(left_labels)), len(np.unique(right_labels)),
                              agreement_with_uncertainty(left_labels, right_labels, n_bootstrap=300,
                                                         n_permutations=300, random_state=seed),
                              compare_clusterings(left_labels, right_labels, name_a=left, name_b=right))
        profiles = matched_cluster_profiles(agreement.clusters, left_labels, right_labels,
                                            spotify[list(SPOTIFY_CLUSTER_FEATURES)], name_a=left, name_b=right)
        for rows in (records.agreement_rows("r1", agreement), records.cluster_pair_rows("r1", agreement, profiles)):
            for name, frame in rows.items():
                tables.setdefault(name, []).append(frame)
    merged = {name: pd.concat(frames, ignore_index=True).drop(columns="run_id") for name, frames in tables.items()}
    across = agreement_across_k({2: spotify_labels % 2, 3: spotify_labels}, {2: aubio_labels % 2, 3: aubio_labels},
                                name_a="spotify", name_b="aubio", n_bootstrap=50)
    measures = FeatureMeasures(feature_agreement(spotify, aubio, aubio_columns=AUBIO_COLUMNS),
                               direct_agreement(spotify, aubio))
    models = [_model_rows("spotify", spotify[list(SPOTIFY_CLUSTER_FEATURES)], spotify_labels, ids),
              _model_rows("aubio", aubio[AUBIO_COLUMNS], aubio_labels, ids)]
    coverage = pd.DataFrame({"track_id": ids, "name": [f"Song {i}" for i in range(n_tracks)], "artists": "Band",
                             "has_spotify": True, "has_aubio": True, "reasons": None})
    missing = pd.DataFrame({"track_id": [f"gone{i}" for i in range(n_missing)], "name": "Lost <b>song</b>",
                            "artists": "Nobody", "has_spotify": True, "has_aubio": False,
                            "reasons": "download: no preview"})
    fits = pd.DataFrame([{"feature_set": side, "k": k, "seed": s, "bic": 1000.0 - 50 * k + s, "aic": 900.0 - 40 * k}
                         for side in ("spotify", "aubio") for k in (2, 3) for s in (0, 1)])
    selection = pd.DataFrame([
        {"feature_set": side, "covariance_type": covariance_type, "k": k,
         "status": "left out" if (covariance_type, k) == ("full", 3) else "fitted",
         "reason": "each full covariance has 45 free parameters" if (covariance_type, k) == ("full", 3) else None,
         "bic": None if (covariance_type, k) == ("full", 3) else 1000.0 - 50 * k + len(covariance_type),
         "aic": 900.0, "chosen": (covariance_type, k) == ("diag", 3), "n_samples": n_tracks, "prior": False}
        for side in ("spotify", "aubio") for covariance_type in ("full", "diag") for k in (2, 3)])
    return {
        **merged,
        "run": pd.DataFrame([{"run_id": "r1", "source": "demo", "parameters": json.dumps({"n_tracks": n_tracks}),
                              "code_version": "test", "started_at": "2026-01-01", "finished_at": None,
                              "status": "completed"}]),
        "agreement_by_k": across,
        "feature_agreement": records.feature_agreement_rows("r1", measures).drop(columns="run_id"),
        "extractor_accuracy": pd.DataFrame({"metric": ["tempo_acc1"], "value": [0.9], "n_tracks": [n_tracks]}),
        "fit_curves": fits,
        "model_selection": selection,
        "models": pd.DataFrame([m for m, _, _ in models]),
        "components": pd.concat([c for _, c, _ in models], ignore_index=True),
        "assignments": pd.concat([a for _, _, a in models], ignore_index=True),
        "spotify_features": spotify.reset_index(),
        "aubio_features": aubio.reset_index(),
        "track_coverage": pd.concat([coverage, missing], ignore_index=True),
    }


def _spotify_vs_aubio(tables, metric="ari") -> pd.Series:
    comparison = tables["comparison"]
    return comparison[(comparison["left_set"] == "spotify") & (comparison["right_set"] == "aubio")
                      & (comparison["metric"] == metric)].iloc[0]


@pytest.fixture(scope="module")
def agreeing():
    """Tables of a run whose clusterings mostly agree (3 tracks lack Aubio features), and its
    report (rendering the plots is the slow part: done once)."""
    tables = make_tables(aubio_noise=0.1, n_missing=3)
    return tables, build_report(tables, plot_folder="report-plots")


def test_agreeing_clusterings_get_a_headline_with_their_interval_and_null(agreeing):
    tables, report = agreeing
    row = _spotify_vs_aubio(tables)
    assert row["ci_low"] > row["null_upper"]
    assert "more than chance" in report.headline
    assert f"{row['value']:.3f}" in report.headline
    assert f"{row['ci_low']:.3f}–{row['ci_high']:.3f}" in report.headline
    assert report.headline in report.html.replace("&#x27;", "'")
    assert report.headline in report.markdown


def test_unrelated_clusterings_are_reported_as_chance():
    tables = make_tables(aubio_noise=1.0, seed=3)
    row = _spotify_vs_aubio(tables)
    assert row["p_value"] >= 0.05 and row["ci_low"] <= row["null_mean"] <= row["ci_high"]
    assert "indistinguishable from chance" in headline_sentence(tables["comparison"], RUN_KINDS["demo"])


def test_the_page_is_self_contained_and_embeds_every_plot_as_png(agreeing):
    _, report = agreeing
    names = {figure.name for figure in report.figures}
    assert names == {"spotify_clusters", "aubio_clusters", "information_criteria", "contingency",
                     "feature_agreement", "agreement_vs_k"}
    sources = re.findall(r'src="([^"]*)"', report.html)
    assert len(sources) == len(names)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == PNG_MAGIC
    assert not re.search(r"(href|src)=\"(?!data:)", report.html)
    assert "<link" not in report.html and "<script" not in report.html
    assert all(f"report-plots/{name}.png" in report.markdown for name in names)


def test_matched_pairs_show_both_cluster_names(agreeing):
    tables, report = agreeing
    pairs = tables["cluster_pairs"]
    first = pairs[pairs["right_set"] == "aubio"].iloc[0]
    assert f"{first['left_cluster']}: {first['left_name']}" in report.markdown
    assert f"{first['right_cluster']}: {first['right_name']}" in report.markdown


def test_missing_tracks_are_counted_listed_and_escaped(agreeing):
    _, report = agreeing
    assert any(note.startswith("3 of 93 tracks were not clustered") for note in report.notes)
    assert "Tracks left out (3)" in report.markdown
    assert all(f"gone{i}" in report.markdown for i in range(3))
    assert "Lost &lt;b&gt;song&lt;/b&gt;" in report.html and "<b>song</b>" not in report.html


HOSTILE = ('Lost <b>song</b> <img src="http://evil.example/p.png"> ![x](http://evil.example/q.png) '
           '[click](http://evil.example/) *loud* | cell')


def test_text_from_the_data_adds_no_tag_link_or_remote_image_to_either_page():
    tables = make_tables(n_tracks=30, n_missing=1)
    tables["track_coverage"].loc[tables["track_coverage"]["track_id"] == "gone0", "name"] = HOSTILE
    tables["run"] = tables["run"].assign(source="csv:<script>alert(1)</script>![y](http://evil.example/r.png)")
    report = build_report(tables, plot_folder="report-plots")
    for page in (report.markdown, report.html):
        assert "<b>" not in page and "<img src=\"http" not in page and "<script>" not in page
    assert not re.search(r"(?<!\\)\]\(http", report.markdown)  # no Markdown link or image from the data
    assert re.findall(r"!\[[^\]]*\]\(([^)]*)\)", report.markdown) == [
        f"report-plots/{figure.name}.png" for figure in report.figures]  # only the local plots
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'<img [^>]*src="([^"]*)"', report.html))
    assert "Lost &lt;b&gt;song&lt;/b&gt;" in report.markdown and "*loud* \\| cell" in report.markdown


def test_a_single_cluster_model_gives_no_answer_but_a_report():
    tables = make_tables(aubio_k=1)
    report = build_report(tables)
    assert "one cluster" in report.headline and "No answer" in report.headline
    assert any("single cluster" in note for note in report.notes)
    assert "Matched cluster pairs" in report.html


def test_few_tracks_are_flagged_and_still_reported():
    report = build_report(make_tables(n_tracks=12))
    assert any("only 12 tracks were clustered" in note for note in report.notes)
    assert "too few to rely on" in report.headline


def test_a_run_without_any_comparison_still_renders():
    tables = {name: frame.iloc[0:0] for name, frame in make_tables().items()}
    tables["run"] = make_tables()["run"]
    report = build_report(tables)
    assert report.headline.startswith("No answer")
    assert report.figures == ()
    assert any("no spotify model" in note for note in report.notes)


def test_headline_of_an_absent_comparison_says_so():
    comparison = make_tables()["comparison"]
    assert "No answer" in headline_sentence(comparison[comparison["right_set"] != "aubio"], RUN_KINDS["spotify"])


def test_missing_tables_are_refused_with_the_reader_to_use():
    tables = make_tables()
    del tables["fit_curves"]
    with pytest.raises(ValueError, match="report_tables"):
        build_report(tables)
    assert "fit_curves" in REPORT_TABLES


# -- one report per kind of run -------------------------------------------------------------

SPOTIFY_ONLY_SECTIONS = ("Agreement across k", "Matched cluster pairs", "Cluster profiles",
                         "Feature agreement", "Features both sides measure")


def _as_single_side_run(tables, *, source: str, side: str) -> dict[str, pd.DataFrame]:
    """The tables of a run that clusters one feature set and compares it with its truth: a
    CSV data set (spotify vs its genres) or an audio folder (aubio vs truth.csv)."""
    other = "aubio" if side == "spotify" else "spotify"
    run = tables["run"].assign(source=source)
    comparison = tables["comparison"]
    truth_rows = comparison[(comparison["left_set"] == "spotify") & (comparison["right_set"] == "truth")]
    contingency = tables["contingency"]
    contingency = contingency[(contingency["left_set"] == "spotify") & (contingency["right_set"] == "truth")]
    empty = {name: frame.iloc[0:0] for name, frame in tables.items()}
    return {
        **empty, "run": run,
        "comparison": truth_rows.assign(left_set=side), "contingency": contingency.assign(left_set=side),
        "models": tables["models"][tables["models"]["feature_set"] == side],
        "components": tables["components"][tables["components"]["feature_set"] == side],
        "assignments": tables["assignments"][tables["assignments"]["feature_set"] == side],
        "model_selection": tables["model_selection"][tables["model_selection"]["feature_set"] == side],
        f"{side}_features": tables[f"{side}_features"],
        "extractor_accuracy": tables["extractor_accuracy"] if side == "aubio" else empty["extractor_accuracy"],
        "track_coverage": tables["track_coverage"].assign(**{f"has_{other}": False}),
    }


def _sections(report) -> list[str]:
    return re.findall(r"^## (.+)$", report.markdown, flags=re.MULTILINE)


def test_a_demo_report_has_every_section_and_its_plots_follow_the_headline(agreeing):
    _, report = agreeing
    assert report.kind.name == "demo"
    assert _sections(report) == [
        "Agreement per comparison", "Model selection", "Agreement across k", "Matched cluster pairs",
        "Cluster profiles (Spotify vs Aubio)", "Feature agreement", "Features both sides measure",
        "Extractor accuracy against the demo's generating groups", "Tracks left out (3)"]
    headline_at = report.html.index('class="headline"')
    assert headline_at < report.html.index("<figure") < report.html.index("Read with care") < report.html.index("<h2>")
    markdown_headline = report.markdown.index(f"**{report.headline}**")
    assert markdown_headline < report.markdown.index("![") < report.markdown.index("## ")


def test_a_csv_run_answers_whether_its_genres_are_found_without_aubio_sections():
    tables = _as_single_side_run(make_tables(n_missing=2), source="csv:kaggle", side="spotify")
    report = build_report(tables)
    assert report.kind.name == "csv"
    assert report.headline.startswith("Spotify's clustering agrees with the data set's genres more than chance")
    assert report.markdown.startswith("# How closely does clustering Spotify's features recover the data set's genres?")
    assert _sections(report) == ["Agreement per comparison", "Model selection", "Tracks left out (2)"]
    text = report.markdown + report.html
    assert not any(word in text for word in ("Aubio's", "aubio vs", "demo", "Extractor accuracy", "notebook_k2"))
    assert {figure.name for figure in report.figures} == {"spotify_clusters", "information_criteria", "contingency"}
    # A data set's rows are never "left out" for lacking Aubio features it cannot have.
    assert "Aubio features" not in report.markdown and "lack" not in " ".join(report.notes)


def test_an_audio_folder_run_answers_against_truth_csv_without_spotify_sections():
    tables = _as_single_side_run(make_tables(), source="audio-dir", side="aubio")
    report = build_report(tables)
    assert report.headline.startswith("Aubio's clustering agrees with truth.csv's groups more than chance")
    assert _sections(report) == ["Agreement per comparison", "Model selection",
                                 "Extractor accuracy against truth.csv's groups", "Tracks left out (0)"]
    text = report.markdown + report.html
    assert not any(word in text for word in ("Spotify features", "Spotify's", "spotify vs", "demo", "notebook_k2"))
    assert {figure.name for figure in report.figures} == {"aubio_clusters", "information_criteria", "contingency"}


def test_a_folder_without_truth_says_what_is_missing():
    tables = _as_single_side_run(make_tables(), source="audio-dir", side="aubio")
    tables["comparison"] = tables["comparison"].iloc[0:0]
    report = build_report(tables)
    assert report.headline.startswith("No answer for this run: Aubio's clustering was not compared with "
                                      "truth.csv's groups (the folder has no truth.csv")


def test_model_selection_shows_every_pair_the_left_out_ones_and_the_warnings(agreeing):
    tables = make_tables()
    tables["models"] = tables["models"].assign(warnings=[["k = 3 is the largest k tried"], []])
    report = build_report(tables)
    section = report.markdown.split("## Model selection")[1].split("## ")[0]
    assert "spotify · full, k = 3: left out, each full covariance has 45 free parameters" in section
    assert re.search(r"\| spotify · diag \| [\d.]+ \| [\d.]+ \* \|", section)
    assert "| spotify · full | " in section and " left out |" in section
    assert "the spotify model: k = 3 is the largest k tried." in report.notes


def test_a_demo_run_says_first_that_its_audio_is_synthesised(agreeing):
    _, report = agreeing
    assert report.notes[0] == DEMO_AUDIO_CAVEAT
    assert report.markdown.index("synthesised from its own features") < report.markdown.index(
        "Agreement per comparison")


def test_a_run_on_real_audio_carries_no_demo_caveat():
    tables = make_tables()
    tables["run"] = tables["run"].assign(source="csv:kaggle")
    assert DEMO_AUDIO_CAVEAT not in build_report(tables).notes
