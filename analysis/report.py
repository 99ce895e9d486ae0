"""The comparison report: one self-contained HTML page and a Markdown version of one run.

Conventions: the input is the stored tables of one run, by name, exactly as
:func:`songmix.warehouse.report_reads.report_tables` returns them (``run``, ``comparison``,
``agreement_by_k``, ``cluster_pairs``, ``cluster_profiles``, ``contingency``,
``feature_agreement``, ``extractor_accuracy``, ``fit_curves``, ``models``, ``components``,
``assignments``, ``spotify_features``, ``aubio_features``, ``track_coverage``). Nothing is
refitted: plots are redrawn from the stored components, assignments and features. Any table
may be empty (a failed fit, a source without truth, too few tracks); the report then says
what is missing and shows the rest. Plots are PNG bytes, embedded in the HTML as data URIs;
the Markdown refers to them as files under ``plot_folder`` (the caller writes them).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from songmix.analysis.labels import MIN_TRACKS_FOR_INFERENCE
from songmix.analysis.plots import (
    plot_agreement_vs_k,
    plot_cluster_scatter,
    plot_contingency_heatmap,
    plot_feature_agreement,
    plot_information_criteria,
)

#: The two features each model's scatter plot shows (the notebook plotted acousticness
#: against energy); the first two model features stand in when these were not fitted.
SCATTER_FEATURES = {"spotify": ("acousticness", "energy"), "aubio": ("spectral_centroid_mean", "loudness")}

#: The metric the headline sentence is about. ARI is the most widely read agreement score;
#: AMI and NMI follow in the same paragraph.
HEADLINE_METRIC = "ari"

#: Below this p-value an agreement counts as more than chance.
SIGNIFICANCE = 0.05

#: What every demo result says first: the demo renders each track's audio from its own
#: Spotify-style features, so the two sides agree by construction.
DEMO_AUDIO_CAVEAT = ("demo run: each track's audio is synthesised from its own features, so "
                     "agreement here checks the machinery, not music. Real music is measured on "
                     "realmusic-dev (songmix run --audio-dir) and on your own data.")

REPORT_TABLES = (
    "run", "comparison", "agreement_by_k", "cluster_pairs", "cluster_profiles", "contingency",
    "feature_agreement", "extractor_accuracy", "fit_curves", "models", "components",
    "assignments", "spotify_features", "aubio_features", "track_coverage",
)

_NOTHING = "Nothing stored for this run."

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #1d2330; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #d8dce4; }
.headline { font-size: 1.2rem; background: #eef4ff; border-left: 5px solid #3a6fd8;
            padding: .8rem 1rem; margin: 1rem 0; }
.notes { background: #fff6e0; border-left: 5px solid #e0a100; padding: .5rem 1rem; }
.meta { color: #5b6475; font-size: .9rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .88rem; }
th, td { border: 1px solid #d8dce4; padding: .25rem .55rem; text-align: right; }
th { background: #f3f5f9; } td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; } .scroll { overflow-x: auto; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; border: 1px solid #e3e6ec; }
figcaption { color: #5b6475; font-size: .9rem; }
"""


@dataclass(frozen=True)
class Figure:
    """One plot of the report."""

    name: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Report:
    """A rendered report.

    Attributes
    ----------
    run_id : str
    headline : str
        The answer in one sentence (or why there is none).
    notes : tuple of str
        Plain-language caveats: too few tracks, one-cluster models, missing tracks, plots
        that could not be drawn.
    figures : tuple of Figure
    html : str
        The self-contained page (inline CSS, plots as data URIs, no external reference).
    markdown : str
        The same content; plots referenced as ``<plot_folder>/<name>.png``.
    """

    run_id: str
    headline: str
    notes: tuple[str, ...]
    figures: tuple[Figure, ...]
    html: str
    markdown: str


# ------------------------------------------------------------------------------ formatting


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or pd.isna(value):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    # "+ 0.0" turns a rounded "-0.000" into "0.000".
    return f"{round(float(value), digits) + 0.0:.{digits}f}"


def _p_value(value) -> str:
    if value is None or pd.isna(value):
        return "–"
    return "< 0.001" if value < 0.001 else f"{float(value):.3g}"


def _p_text(value) -> str:
    """``"< 0.001"`` or ``"= 0.23"``: a p-value after the letter p."""
    shown = _p_value(value)
    return shown if shown.startswith("<") else f"= {shown}"


#: Comparisons in the order the report shows them; others follow alphabetically.
COMPARISON_ORDER = ("spotify vs aubio", "spotify vs truth", "aubio vs truth",
                    "notebook_k2 vs aubio", "notebook_k2 vs truth")
_METRIC_ORDER = {"ari": 0, "ami": 1, "nmi": 2}


def _in_report_order(frame: pd.DataFrame, names: pd.Series, *then: str) -> pd.DataFrame:
    """``frame`` sorted by comparison (:data:`COMPARISON_ORDER`), then by ``then`` columns."""
    rank = names.map(lambda name: (COMPARISON_ORDER.index(name) if name in COMPARISON_ORDER
                                   else len(COMPARISON_ORDER), name))
    keys = pd.DataFrame({"_rank": rank.values}, index=frame.index)
    ordered = frame.assign(_rank=keys["_rank"]).sort_values(["_rank", *then], kind="stable")
    return ordered.drop(columns="_rank")


def _interval(low, high) -> str:
    if pd.isna(low) or pd.isna(high):
        return "–"
    # "-0.05–0.14" reads like a range of negatives: spell the separator out then.
    return f"{_number(low)}{' to ' if low < 0 else '–'}{_number(high)}"


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` (with its index when named) as a GitHub-flavoured Markdown table of strings."""
    shown = frame.reset_index() if frame.index.name else frame
    escape = lambda value: str(value).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(escape, shown.columns)) + " |", "|" + " --- |" * shown.shape[1]]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines)


def _html_table(frame: pd.DataFrame) -> str:
    shown = frame.reset_index() if frame.index.name else frame
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td{"" if _is_numeric_text(v) else " class=text"}>{html.escape(str(v))}</td>' for v in row
        ) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>'


def _is_numeric_text(value) -> bool:
    text = str(value).replace("–", "").replace(".", "").replace("-", "").replace(" ", "")
    return text.isdigit() or text == ""


# ------------------------------------------------------------------------------- headline


def _verdict(row: pd.Series) -> str:
    """Plain words for one metric's evidence against chance."""
    if pd.isna(row["p_value"]):
        return "no null computed"
    if row["p_value"] >= SIGNIFICANCE:
        return "indistinguishable from chance"
    if pd.notna(row.get("null_upper")) and pd.notna(row["ci_low"]) and row["ci_low"] <= row["null_upper"]:
        return "above chance, but the interval reaches chance level"
    return "more than chance"


def headline_sentence(comparison: pd.DataFrame, *, left: str = "spotify", right: str = "aubio") -> str:
    """The answer in one sentence: the headline metric with its interval and null.

    Parameters
    ----------
    comparison : DataFrame
        The run's ``comparison`` rows (columns left_set, right_set, left_k, right_k, metric,
        value, ci_low, ci_high, null_mean, null_upper, p_value, n_tracks).
    left, right : str
        The comparison to state.

    Returns
    -------
    str
    """
    rows = comparison[(comparison["left_set"] == left) & (comparison["right_set"] == right)]
    if rows.empty:
        return (f"No answer for this run: there is no {right}-vs-{left} comparison (a clustering "
                f"could not be fitted; see the notes).")
    metrics = rows.set_index("metric")
    first = metrics.iloc[0]
    n_tracks, left_k, right_k = int(first["n_tracks"]), int(first["left_k"]), int(first["right_k"])
    if min(left_k, right_k) < 2:
        single = right.capitalize() if right_k < 2 else left.capitalize()
        return (f"No answer for this run: {single}'s clustering puts all {n_tracks} tracks in one "
                f"cluster, so agreement between the two clusterings carries no information.")
    main = metrics.loc[HEADLINE_METRIC]
    caution = (f" Only {n_tracks} tracks: too few to rely on." if n_tracks < MIN_TRACKS_FOR_INFERENCE else "")
    candidate, reference = right.capitalize(), left.capitalize()
    opening = {
        "more than chance": f"{candidate}'s clustering agrees with {reference}'s more than chance",
        "indistinguishable from chance": f"The agreement of {candidate}'s clustering with "
                                         f"{reference}'s is indistinguishable from chance",
    }.get(_verdict(main), f"{candidate}'s clustering agrees with {reference}'s {_verdict(main)}")
    return (f"{opening}: "
            f"{HEADLINE_METRIC.upper()} {_number(main['value'])} (95% interval "
            f"{_interval(main['ci_low'], main['ci_high'])}; chance {_number(main['null_mean'])}, "
            f"p {_p_text(main['p_value'])}) over {n_tracks} tracks, k = {left_k} and {right_k}."
            + caution)


def _supporting_sentence(comparison: pd.DataFrame, *, left: str = "spotify", right: str = "aubio") -> str:
    rows = comparison[(comparison["left_set"] == left) & (comparison["right_set"] == right)]
    if rows.empty or rows["left_k"].min() < 2 or rows["right_k"].min() < 2:
        return ""
    metrics = rows.set_index("metric")
    ami, nmi = metrics.loc["ami"], metrics.loc["nmi"]
    return (f"AMI {_number(ami['value'])} (interval {_interval(ami['ci_low'], ami['ci_high'])}, "
            f"chance {_number(ami['null_mean'])}); NMI {_number(nmi['value'])} against "
            f"{_number(nmi['null_mean'])} for shuffled labels (NMI is not corrected for chance, so "
            f"it is read against that null, not against 0).")


# ---------------------------------------------------------------------------- tables


def agreement_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """One row per (comparison, metric) with interval, chance level, p-value and verdict."""
    if comparison.empty:
        return pd.DataFrame()
    ordered = _in_report_order(comparison.assign(_metric=comparison["metric"].map(_METRIC_ORDER)),
                               comparison["left_set"] + " vs " + comparison["right_set"], "_metric")
    rows = []
    for row in ordered.drop(columns="_metric").itertuples(index=False):
        series = pd.Series(row._asdict())
        rows.append({
            "comparison": f"{row.left_set} (k={row.left_k}) vs {row.right_set} (k={row.right_k})",
            "metric": row.metric.upper(), "value": _number(row.value),
            "95% interval": _interval(row.ci_low, row.ci_high),
            "chance (mean)": _number(row.null_mean),
            "chance (95th pct)": _number(series.get("null_upper")),
            "p": _p_value(row.p_value), "verdict": _verdict(series), "tracks": int(row.n_tracks),
        })
    return pd.DataFrame(rows)


def across_k_table(agreement_by_k: pd.DataFrame) -> pd.DataFrame:
    """Agreement per comparison and k, each metric with its interval."""
    if agreement_by_k.empty:
        return pd.DataFrame()
    agreement_by_k = _in_report_order(agreement_by_k, agreement_by_k["comparison"], "k")
    return pd.DataFrame([{
        "comparison": row.comparison, "k": int(row.k),
        **{f"{m.upper()} (interval)": f"{_number(getattr(row, m))} ({_interval(getattr(row, m + '_ci_low'), getattr(row, m + '_ci_high'))})"
           for m in ("ari", "ami")},
        "NMI": _number(row.nmi), "one cluster": "yes" if row.degenerate else "",
    } for row in agreement_by_k.itertuples(index=False)])


def pairs_table(cluster_pairs: pd.DataFrame) -> pd.DataFrame:
    """Matched cluster pairs with their names, sizes and overlap scores."""
    if cluster_pairs.empty:
        return pd.DataFrame()
    cluster_pairs = _in_report_order(cluster_pairs, cluster_pairs["left_set"] + " vs " + cluster_pairs["right_set"], "pair")
    return pd.DataFrame([{
        "comparison": f"{row.left_set} vs {row.right_set}", "pair": int(row.pair),
        "left cluster": f"{row.left_cluster}: {row.left_name}",
        "right cluster": f"{row.right_cluster}: {row.right_name}",
        "sizes": f"{row.left_size} / {row.right_size}", "overlap": int(row.overlap),
        "precision": _number(row.precision), "recall": _number(row.recall),
        "Jaccard": _number(row.jaccard),
    } for row in cluster_pairs.itertuples(index=False)])


def profiles_table(cluster_profiles: pd.DataFrame, *, left: str = "spotify", right: str = "aubio") -> pd.DataFrame:
    """Mean Spotify features per cluster of both sides of one comparison, wide."""
    rows = cluster_profiles[(cluster_profiles["left_set"] == left) & (cluster_profiles["right_set"] == right)]
    if rows.empty:
        return pd.DataFrame()
    identity = ["pair", "side", "cluster", "cluster_name", "n_tracks"]
    wide = (rows.assign(pair=rows["pair"].astype("Float64").fillna(np.inf))
            .pivot(index=identity, columns="feature", values="mean").reset_index())
    wide.columns.name = None
    # Matched pairs in order (left side first), unmatched clusters last.
    order = np.lexsort((wide["side"].map({left: 0, right: 1}).to_numpy(),
                        wide["pair"].to_numpy(dtype=float)))
    wide = wide.iloc[order]
    wide["pair"] = wide["pair"].map(lambda p: "–" if not np.isfinite(p) else str(int(p)))
    features = [c for c in wide.columns if c not in ("pair", "side", "cluster", "cluster_name", "n_tracks")]
    wide[features] = wide[features].map(lambda v: _number(v, 2))
    return wide.rename(columns={"cluster_name": "name", "n_tracks": "tracks"})


def feature_prediction_frame(feature_agreement: pd.DataFrame) -> pd.DataFrame:
    """Per Spotify feature: cross-validated R² and the best single Aubio feature (index:
    Spotify feature; columns cv_r2, best_aubio_feature, best_pearson_r, n_tracks), the shape
    :func:`~songmix.analysis.plots.plot_feature_agreement` takes."""
    cv = feature_agreement[feature_agreement["measure"] == "cv_r2"].set_index("spotify_feature")
    best = feature_agreement[feature_agreement["measure"] == "best_r"].set_index("spotify_feature")
    if cv.empty:
        return pd.DataFrame(columns=["cv_r2", "best_aubio_feature", "best_pearson_r", "n_tracks"])
    frame = pd.DataFrame({"cv_r2": cv["value"].astype(float),
                          "best_aubio_feature": best["aubio_feature"].reindex(cv.index),
                          "best_pearson_r": best["value"].reindex(cv.index).astype(float),
                          "n_tracks": cv["n_tracks"]})
    frame.index.name = "spotify feature"
    return frame


def _feature_tables(feature_agreement: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    predicted = feature_prediction_frame(feature_agreement)
    shown = pd.DataFrame({
        "cross-validated R²": predicted["cv_r2"].map(_number),
        "best single Aubio feature": predicted["best_aubio_feature"].fillna("–"),
        "its Pearson r": predicted["best_pearson_r"].map(_number),
        "tracks": predicted["n_tracks"],
    }, index=predicted.index)
    direct = feature_agreement[~feature_agreement["measure"].isin(["cv_r2", "best_r"])]
    direct_shown = pd.DataFrame({"measure": direct["measure"], "value": direct["value"].map(_number),
                                 "tracks": direct["n_tracks"]})
    return shown, direct_shown


def missing_tracks(track_coverage: pd.DataFrame) -> pd.DataFrame:
    """The run's tracks lacking Spotify or Aubio features, with what is missing and why."""
    lacking = track_coverage[~(track_coverage["has_spotify"] & track_coverage["has_aubio"])]
    return pd.DataFrame({
        "track": lacking["track_id"],
        "name": (lacking["name"].fillna("?") + " — " + lacking["artists"].fillna("?")),
        "missing": [", ".join(side for side, has in (("Spotify features", s), ("Aubio features", a)) if not has)
                    for s, a in zip(lacking["has_spotify"], lacking["has_aubio"])],
        "why": lacking["reasons"].fillna("not recorded"),
    })


# ------------------------------------------------------------------------------ plots


def _scatter_figures(tables: Mapping[str, pd.DataFrame]) -> list[Figure]:
    """Each chosen model's clusters on two features, redrawn from stored components."""
    figures = []
    names = tables["cluster_profiles"]
    names = names[(names["left_set"] == "spotify") & (names["right_set"] == "aubio")]
    for model in tables["models"].itertuples(index=False):
        feature_names = list(model.features)
        frame = tables[f"{model.feature_set}_features"].set_index("track_id")
        assigned = tables["assignments"]
        assigned = assigned[assigned["feature_set"] == model.feature_set].set_index("track_id")["cluster"]
        track_ids = [t for t in model.track_ids if t in frame.index and t in assigned.index]
        components = tables["components"]
        components = components[components["feature_set"] == model.feature_set].sort_values("component")
        scale = np.asarray(model.scaler_scale, dtype=float)
        d = len(feature_names)
        covariances = np.stack([np.asarray(c, dtype=float).reshape(d, d) * np.outer(scale, scale)
                                for c in components["covariance"]])
        x_feature, y_feature = SCATTER_FEATURES.get(model.feature_set, ("", ""))
        if not {x_feature, y_feature} <= set(feature_names):
            x_feature, y_feature = feature_names[:2]
        side_names = names[names["side"] == model.feature_set].drop_duplicates("cluster").set_index("cluster")
        cluster_names = [f"{c}: {side_names['cluster_name'].get(c, 'unnamed')}" for c in range(int(model.k))]
        png = plot_cluster_scatter(
            frame.loc[track_ids, feature_names].to_numpy(dtype=float),
            assigned.loc[track_ids].to_numpy(dtype=int),
            np.stack(components["mean_original"].map(np.asarray)), covariances,
            feature_names=feature_names, x_feature=x_feature, y_feature=y_feature,
            cluster_names=cluster_names,
            title=f"{model.feature_set.capitalize()} features, k={model.k} mixture")
        figures.append(Figure(f"{model.feature_set}_clusters",
                              f"{model.feature_set.capitalize()} model: clusters on {x_feature} and "
                              f"{y_feature}, with each component's 2-sigma ellipse.", png))
    return figures


def _contingency_figure(tables: Mapping[str, pd.DataFrame]) -> list[Figure]:
    counts = tables["contingency"]
    counts = counts[(counts["left_set"] == "spotify") & (counts["right_set"] == "aubio")]
    if counts.empty:
        return []
    table = counts.pivot(index="left_cluster", columns="right_cluster", values="n_tracks").fillna(0)
    pairs = tables["cluster_pairs"]
    pairs = pairs[(pairs["left_set"] == "spotify") & (pairs["right_set"] == "aubio")].sort_values("pair")
    rows = [*pairs["left_cluster"], *(c for c in table.index if c not in set(pairs["left_cluster"]))]
    cols = [*pairs["right_cluster"], *(c for c in table.columns if c not in set(pairs["right_cluster"]))]
    matched = table.loc[rows, cols].astype(int)
    matched.index.name, matched.columns.name = "Spotify", "Aubio"
    png = plot_contingency_heatmap(matched, title="Spotify clusters (rows) vs Aubio clusters (columns)")
    return [Figure("contingency", "Tracks per pair of clusters; matched pairs on the outlined diagonal.", png)]


def _figures(tables: Mapping[str, pd.DataFrame]) -> tuple[list[Figure], list[str]]:
    """Every plot the tables allow; a plot that cannot be drawn becomes a note, not a crash."""
    drawers: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("cluster scatter", lambda: _scatter_figures(tables)),
        ("BIC curves", lambda: [Figure(
            "information_criteria", "BIC and AIC per k (best seed); the star marks the k each side used.",
            plot_information_criteria(tables["fit_curves"], chosen_k=dict(
                zip(tables["models"]["feature_set"], tables["models"]["k"].astype(int)))))]
            if not tables["fit_curves"].empty else []),
        ("contingency heatmap", lambda: _contingency_figure(tables)),
        ("feature agreement", lambda: [Figure(
            "feature_agreement", "How well all Aubio features together predict each Spotify feature "
            "(ridge regression, cross-validated), and the best single Aubio feature.",
            plot_feature_agreement(feature_prediction_frame(tables["feature_agreement"])))]
            if (tables["feature_agreement"]["measure"] == "cv_r2").any() else []),
        ("agreement vs k", lambda: [Figure(
            "agreement_vs_k", "Agreement at each k fitted on both sides (bands: 95% half-sample intervals).",
            plot_agreement_vs_k(tables["agreement_by_k"], metrics=("ari", "ami")))]
            if not tables["agreement_by_k"].empty else []),
    ]
    figures, notes = [], []
    for name, draw in drawers:
        try:
            figures += draw()
        except (ValueError, KeyError, IndexError) as error:
            notes.append(f"the {name} plot could not be drawn from the stored tables: {error}")
    return figures, notes


# ---------------------------------------------------------------------------- notes


def report_notes(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Plain-language caveats: demo audio, few tracks, one-cluster models, missing tracks,
    missing stages."""
    notes = [DEMO_AUDIO_CAVEAT] if tables["run"]["source"].eq("demo").any() else []
    coverage = tables["track_coverage"]
    both = int((coverage["has_spotify"] & coverage["has_aubio"]).sum()) if not coverage.empty else 0
    if both < MIN_TRACKS_FOR_INFERENCE:
        notes.append(f"only {both} tracks have both Spotify and Aubio features (fewer than "
                     f"{MIN_TRACKS_FOR_INFERENCE}): intervals and p-values are too coarse to rely on.")
    lacking = len(coverage) - both
    if lacking:
        notes.append(f"{lacking} of {len(coverage)} tracks lack Spotify or Aubio features and are "
                     f"left out of every comparison (listed at the end).")
    for model in tables["models"].itertuples(index=False):
        if int(model.k) < 2:
            notes.append(f"the {model.feature_set} model has a single cluster: every agreement with it "
                         f"is a convention (0, or 1 against another single cluster) and carries no "
                         f"information.")
    fitted = set(tables["models"]["feature_set"])
    notes += [f"no {side} model was fitted for this run, so it is left out of the comparison."
              for side in ("spotify", "aubio") if side not in fitted]
    if tables["feature_agreement"].empty:
        notes.append("feature agreement was not computed (fewer than 10 tracks with both feature sets).")
    return notes


# ---------------------------------------------------------------------------- render


def _check_tables(tables: Mapping[str, pd.DataFrame]) -> None:
    missing = [name for name in REPORT_TABLES if name not in tables]
    if missing:
        raise ValueError(f"the report needs the tables {missing}; read them with "
                         f"songmix.warehouse.report_reads.report_tables(path, run_id)")


def build_report(tables: Mapping[str, pd.DataFrame], *, plot_folder: str = "plots") -> Report:
    """Render one run's report from its stored tables.

    Parameters
    ----------
    tables : dict of str to DataFrame
        All of :data:`REPORT_TABLES` (empty frames allowed, except ``run``: one row).
    plot_folder : str, default "plots"
        Folder, relative to the Markdown file, the caller writes ``<name>.png`` plots into.

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        A table is absent or ``run`` is not one row.
    """
    _check_tables(tables)
    if len(tables["run"]) != 1:
        raise ValueError(f"tables['run'] must be the one row of the run, got {len(tables['run'])} rows")
    run = tables["run"].iloc[0]
    comparison = tables["comparison"]
    headline = headline_sentence(comparison)
    figures, plot_notes = _figures(tables)
    notes = tuple(report_notes(tables) + plot_notes)
    parameters = json.loads(run["parameters"]) if isinstance(run["parameters"], str) else dict(run["parameters"])
    meta = (f"run {run['run_id']} · source {run['source']} · status {run['status']} · started "
            f"{run['started_at']} · songmix {run['code_version']} · parameters "
            + ", ".join(f"{k}={v}" for k, v in parameters.items()))
    predicted, direct = _feature_tables(tables["feature_agreement"])
    accuracy = tables["extractor_accuracy"].assign(value=lambda f: f["value"].map(_number))
    missing = missing_tracks(tables["track_coverage"])
    sections = [
        ("Agreement per comparison",
         "Half-sample 95% intervals (half the tracks drawn without replacement) and a permutation "
         "null (one side's labels shuffled). notebook_k2 is the seed notebook's model: k=2 on "
         "acousticness and energy only.", agreement_table(comparison)),
        ("Agreement across k", "Each side's best model at every k fitted on both.",
         across_k_table(tables["agreement_by_k"])),
        ("Matched cluster pairs", "Clusters paired by the Hungarian method; names come from each "
         "cluster's most unusual mean Spotify features. Precision: share of the right cluster inside "
         "the left one; recall: share of the left cluster recovered.", pairs_table(tables["cluster_pairs"])),
        ("Cluster profiles (Spotify vs Aubio)", "Mean Spotify features of every cluster of both models.",
         profiles_table(tables["cluster_profiles"])),
        ("Feature agreement", "How well Aubio's features predict each Spotify feature.", predicted),
        ("Features both sides measure", "Tempo within 4 % (acc1) and up to octave errors (acc2); key "
         "and mode agreement; loudness correlation.", direct),
        ("Extractor accuracy against the demo's ground truth", "", accuracy),
        (f"Tracks left out ({len(missing)})", "Tracks of the run without both feature sets.", missing),
    ]
    empty_text = {sections[-1][0]: "None: every track of the run has both feature sets."}
    supporting = _supporting_sentence(comparison)
    return Report(
        run_id=str(run["run_id"]), headline=headline, notes=notes, figures=tuple(figures),
        html=_render_html(headline, supporting, meta, notes, sections, figures, empty_text),
        markdown=_render_markdown(headline, supporting, meta, notes, sections, figures, plot_folder,
                                  empty_text),
    )


def _render_html(headline, supporting, meta, notes, sections, figures, empty_text) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>songmix: how closely Aubio's clustering mimics Spotify's</title>",
             f"<style>{_STYLE}</style></head><body>",
             "<h1>How closely does Aubio's clustering mimic Spotify's?</h1>",
             f'<p class="meta">{html.escape(meta)}</p>',
             f'<p class="headline">{html.escape(headline)}</p>']
    if supporting:
        parts.append(f"<p>{html.escape(supporting)}</p>")
    if notes:
        parts.append('<div class="notes"><strong>Read with care:</strong><ul>'
                     + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul></div>")
    for title, text, frame in sections[:4]:
        parts.append(_html_section(title, text, frame, empty_text.get(title, _NOTHING)))
    parts.append("<h2>Plots</h2>")
    for figure in figures:
        uri = "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")
        parts.append(f'<figure><img alt="{html.escape(figure.name)}" src="{uri}">'
                     f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>")
    for title, text, frame in sections[4:]:
        parts.append(_html_section(title, text, frame, empty_text.get(title, _NOTHING)))
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_section(title: str, text: str, frame: pd.DataFrame, empty: str) -> str:
    body = _html_table(frame) if not frame.empty else f"<p><em>{html.escape(empty)}</em></p>"
    intro = f"<p>{html.escape(text)}</p>" if text else ""
    return f"<h2>{html.escape(title)}</h2>{intro}{body}"


def _render_markdown(headline, supporting, meta, notes, sections, figures, plot_folder, empty_text) -> str:
    parts = ["# How closely does Aubio's clustering mimic Spotify's?", "", f"_{meta}_", "",
             f"**{headline}**", ""]
    if supporting:
        parts += [supporting, ""]
    if notes:
        parts += ["Read with care:", "", *(f"- {note}" for note in notes), ""]
    for title, text, frame in sections:
        parts += [f"## {title}", ""]
        if text:
            parts += [text, ""]
        parts += [markdown_table(frame) if not frame.empty else f"_{empty_text.get(title, _NOTHING)}_", ""]
    parts += ["## Plots", ""]
    for figure in figures:
        parts += [f"![{figure.name}]({plot_folder}/{figure.name}.png)", "", f"_{figure.caption}_", ""]
    return "\n".join(parts)
