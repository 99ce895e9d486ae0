"""The report of one run: a self-contained HTML page and a Markdown version.

Conventions: the input is the stored tables of one run, by name, exactly as
:func:`songmix.warehouse.reads.report_tables` returns them (:data:`REPORT_TABLES`).
Nothing is refitted: plots are redrawn from the stored components, assignments and features.
Any table may be empty (a failed fit, a source without truth, too few tracks); the report then
says what is missing and shows the rest.

Every kind of run asks its own question (:data:`RUN_KINDS`): the demo and a Spotify run
whether Aubio's clustering reproduces Spotify's, a CSV data set whether Spotify's features
recover its genres, a folder of audio whether Aubio's features recover its ``truth.csv``
groups. The headline answers that question, the plots follow it, and only the sections that
apply to the kind are shown. Figures are assembled here only (:func:`figure_specs`): the
pipeline renders the same specs (cached) and this module renders them for ``songmix report``.
Plots are PNG bytes, embedded in the HTML as data URIs; the Markdown refers to them as files
under ``plot_folder`` (the caller writes them).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

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
#: Most points a cluster scatter draws (beyond that a scatter is a blot): a seeded sample.
MAX_SCATTER_POINTS = 20_000

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
    "feature_agreement", "extractor_accuracy", "model_selection", "fit_curves", "models",
    "components", "assignments", "spotify_features", "aubio_features", "track_coverage",
)

_NOTHING = "Nothing stored for this run."
#: Characters of Markdown syntax that could turn text into a link, an image or code, or end a
#: table cell (emphasis is left alone: it cannot fetch or hide anything).
_MARKDOWN_SYNTAX = re.compile(r"([\\`\[\]|])")

#: Folder beside the Markdown file that holds its plots.
REPORT_PLOTS = "report-plots"


@dataclass(frozen=True)
class RunKind:
    """What one kind of run asks, and which parts of the report answer it.

    Attributes
    ----------
    name : str
        ``demo``, ``spotify``, ``csv`` or ``audio-dir``.
    question : str
        The page's title.
    answer : tuple of (str, str)
        The comparison (left set, right set) the headline states.
    subject, reference : str
        How the headline names the right and the left side of that comparison.
    sides : tuple of str
        The feature sets the run clusters.
    truth : str or None
        What the ``truth`` labels are for this kind (None: it has none).
    no_answer : str
        Why the answer may be missing, for the headline.
    sections : frozenset of str
        The report sections that apply (keys of the section builders).
    """

    name: str
    question: str
    answer: tuple[str, str]
    subject: str
    reference: str
    sides: tuple[str, ...]
    truth: str | None
    no_answer: str
    sections: frozenset[str]


_BOTH_SIDES = frozenset({"agreement", "model_selection", "across_k", "pairs", "profiles",
                         "feature_agreement", "direct", "left_out"})
_SPOTIFY_QUESTION = "How closely does Aubio's clustering mimic Spotify's?"
RUN_KINDS: dict[str, RunKind] = {
    "demo": RunKind("demo", _SPOTIFY_QUESTION, ("spotify", "aubio"), "Aubio's clustering", "Spotify's",
                    ("spotify", "aubio"), "the demo's generating groups",
                    "a clustering could not be fitted; see the notes", _BOTH_SIDES | {"accuracy"}),
    "spotify": RunKind("spotify", _SPOTIFY_QUESTION, ("spotify", "aubio"), "Aubio's clustering", "Spotify's",
                       ("spotify", "aubio"), None, "a clustering could not be fitted; see the notes",
                       _BOTH_SIDES),
    "csv": RunKind("csv", "How closely does clustering Spotify's features recover the data set's genres?",
                   ("spotify", "truth"), "Spotify's clustering", "the data set's genres", ("spotify",),
                   "the data set's genres",
                   "the data set has no genre column, or its clustering could not be fitted",
                   frozenset({"agreement", "model_selection", "left_out"})),
    "audio-dir": RunKind("audio-dir", "How closely does clustering the files' Aubio features recover "
                         "truth.csv's groups?", ("aubio", "truth"), "Aubio's clustering",
                         "truth.csv's groups", ("aubio",), "truth.csv's groups",
                         "the folder has no truth.csv with groups, or its clustering could not be fitted",
                         frozenset({"agreement", "model_selection", "accuracy", "left_out"})),
}


def run_kind(source: str) -> RunKind:
    """The kind of a run from its ``runs.source`` (``csv:<name>`` is a CSV data set)."""
    if source.startswith("csv:"):
        return RUN_KINDS["csv"]
    return RUN_KINDS.get(source, RUN_KINDS["demo"])


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
    kind : RunKind
    headline : str
        The answer to the kind's question in one sentence (or why there is none).
    notes : tuple of str
        Plain-language caveats: too few tracks, one-cluster models, missing tracks, plots
        that could not be drawn.
    figures : tuple of Figure
    html : str
        The self-contained page (inline CSS, plots as data URIs, no external reference).
    markdown : str
        The same content; plots referenced as ``<plot_folder>/<name>.png``.
    embedded_markdown : str
        The same Markdown with the plots embedded as data URIs (for the Prefect artifact).
    """

    run_id: str
    kind: RunKind
    headline: str
    notes: tuple[str, ...]
    figures: tuple[Figure, ...]
    html: str
    markdown: str
    embedded_markdown: str

    def save(self, out_dir: Path) -> WrittenReport:
        """Write ``report.html``, ``report.md`` and the Markdown's plots (rendered with
        ``plot_folder=REPORT_PLOTS``) into ``out_dir``."""
        written = WrittenReport(self, out_dir / "report.html", out_dir / "report.md", out_dir / REPORT_PLOTS)
        written.plots.mkdir(parents=True, exist_ok=True)
        for figure in self.figures:
            (written.plots / f"{figure.name}.png").write_bytes(figure.png)
        written.html.write_text(self.html, encoding="utf-8")
        written.markdown.write_text(self.markdown, encoding="utf-8")
        return written


@dataclass(frozen=True)
class WrittenReport:
    """A report and where it was written."""

    report: Report
    html: Path
    markdown: Path
    plots: Path


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


def markdown_text(value) -> str:
    """``value`` as literal Markdown text: HTML made inert (``&lt;img ...&gt;``), line breaks
    flattened and the characters of links, images, code and cells escaped, so that text from
    the data (a track name, an error, a data set's name) cannot add a tag, a link or a remote
    image."""
    text = html.escape(str(value), quote=False)
    return _MARKDOWN_SYNTAX.sub(r"\\\1", " ".join(text.splitlines()))


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` (with its index when named) as a GitHub-flavoured Markdown table of literal text."""
    shown = frame.reset_index() if frame.index.name else frame
    lines = ["| " + " | ".join(map(markdown_text, shown.columns)) + " |", "|" + " --- |" * shown.shape[1]]
    lines += ["| " + " | ".join(map(markdown_text, row)) + " |" for row in shown.itertuples(index=False)]
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


def _rows_of(comparison: pd.DataFrame, pair: tuple[str, str]) -> pd.DataFrame:
    left, right = pair
    return comparison[(comparison["left_set"] == left) & (comparison["right_set"] == right)]


def headline_sentence(comparison: pd.DataFrame, kind: RunKind = RUN_KINDS["demo"]) -> str:
    """The answer to ``kind``'s question in one sentence: the headline metric of its
    comparison, with its interval and null.

    Parameters
    ----------
    comparison : DataFrame
        The run's ``comparison`` rows (columns left_set, right_set, left_k, right_k, metric,
        value, ci_low, ci_high, null_mean, null_upper, p_value, n_tracks).
    kind : RunKind
        Which comparison answers the run's question, and how to name its sides.

    Returns
    -------
    str
    """
    rows = _rows_of(comparison, kind.answer)
    if rows.empty:
        return (f"No answer for this run: {kind.subject} was not compared with {kind.reference} "
                f"({kind.no_answer}).")
    metrics = rows.set_index("metric")
    first = metrics.iloc[0]
    n_tracks, left_k, right_k = int(first["n_tracks"]), int(first["left_k"]), int(first["right_k"])
    if min(left_k, right_k) < 2:
        single = kind.subject if right_k < 2 else kind.reference
        return (f"No answer for this run: {single} puts all {n_tracks} tracks in one cluster, so "
                f"agreement with it carries no information.")
    main = metrics.loc[HEADLINE_METRIC]
    caution = (f" Only {n_tracks} tracks: too few to rely on." if n_tracks < MIN_TRACKS_FOR_INFERENCE else "")
    verdict = _verdict(main)
    opening = {
        "more than chance": f"{kind.subject} agrees with {kind.reference} more than chance",
        "indistinguishable from chance": f"The agreement of {kind.subject} with {kind.reference} "
                                         "is indistinguishable from chance",
    }.get(verdict, f"{kind.subject} agrees with {kind.reference} {verdict}")
    return (f"{opening}: "
            f"{HEADLINE_METRIC.upper()} {_number(main['value'])} (95% interval "
            f"{_interval(main['ci_low'], main['ci_high'])}; chance {_number(main['null_mean'])}, "
            f"p {_p_text(main['p_value'])}) over {n_tracks} tracks, k = {left_k} and {right_k}."
            + caution)


def _supporting_sentence(comparison: pd.DataFrame, kind: RunKind) -> str:
    rows = _rows_of(comparison, kind.answer)
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


def missing_tracks(track_coverage: pd.DataFrame, fitted: set[str], kind: RunKind) -> pd.DataFrame:
    """The run's tracks its models were not fitted on, with what they lack and why.

    Parameters
    ----------
    track_coverage : DataFrame
        ``track_coverage`` rows (has_spotify, has_aubio, reasons).
    fitted : set of str
        The tracks the run's models were fitted on.
    kind : RunKind
        Only the feature sets the kind clusters count as lacking.
    """
    lacking = track_coverage[~track_coverage["track_id"].isin(fitted)]
    columns = {"spotify": "has_spotify", "aubio": "has_aubio"}
    names = {"spotify": "Spotify features", "aubio": "Aubio features"}
    return pd.DataFrame({
        "track": lacking["track_id"],
        "name": (lacking["name"].fillna("?") + " — " + lacking["artists"].fillna("?")),
        "missing": [", ".join(names[side] for side in kind.sides if not row[columns[side]]) or "not fitted"
                    for _, row in lacking.iterrows()],
        "why": lacking["reasons"].fillna("not recorded"),
    })


def _fitted_tracks(tables: Mapping[str, pd.DataFrame]) -> set[str]:
    return {track for ids in tables["models"]["track_ids"] for track in ids}


def model_selection_table(model_selection: pd.DataFrame) -> pd.DataFrame:
    """BIC per feature set and covariance type (rows) and k (columns); the chosen pair starred,
    pairs left out or failed named so."""
    if model_selection.empty:
        return pd.DataFrame()
    cell = model_selection.apply(
        lambda row: (f"{_number(row['bic'], 1)}{' *' if row['chosen'] else ''}" if row["status"] == "fitted"
                     else row["status"]), axis=1)
    wide = (model_selection.assign(cell=cell, model=model_selection["feature_set"] + " · "
                                   + model_selection["covariance_type"])
            .pivot(index="model", columns="k", values="cell").fillna("–"))
    wide.columns = [f"k={k}" for k in wide.columns]
    wide.index.name = "model"
    return wide


def _left_out_reasons(model_selection: pd.DataFrame) -> list[str]:
    """One line per feature set and covariance type with pairs left out or failed: which k, why."""
    skipped = model_selection[model_selection["status"] != "fitted"]
    return [f"{feature_set} · {covariance_type}, k = {', '.join(str(k) for k in rows['k'])}: "
            f"{rows['status'].iloc[0]}, {rows['reason'].iloc[0]}"
            for (feature_set, covariance_type), rows in skipped.groupby(["feature_set", "covariance_type"])]


# ------------------------------------------------------------------------------ plots


#: Plot functions the figure specs name (plain names keep a spec hashable by content).
PLOTTERS = {plotter.__name__: plotter for plotter in (
    plot_cluster_scatter, plot_information_criteria, plot_contingency_heatmap,
    plot_feature_agreement, plot_agreement_vs_k)}


@dataclass(frozen=True)
class FigureSpec:
    """What one figure draws: a plot function of :data:`PLOTTERS` and its plain arguments."""

    name: str
    caption: str
    plotter: str
    arguments: dict

    def render(self) -> bytes:
        return PLOTTERS[self.plotter](**self.arguments)


def _scatter_specs(tables: Mapping[str, pd.DataFrame]) -> list[FigureSpec]:
    """Each chosen model's clusters on two features, from stored components."""
    specs = []
    names = tables["cluster_profiles"]
    names = names[(names["left_set"] == "spotify") & (names["right_set"] == "aubio")]
    for model in tables["models"].itertuples(index=False):
        feature_names = list(model.features)
        frame = tables[f"{model.feature_set}_features"].set_index("track_id")
        assigned = tables["assignments"]
        assigned = assigned[assigned["feature_set"] == model.feature_set].set_index("track_id")["cluster"]
        track_ids = [t for t in model.track_ids if t in frame.index and t in assigned.index]
        track_ids = [track_ids[position] for position in _scatter_sample(len(track_ids))]
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
        covariance_type = getattr(model, "covariance_type", None)
        described = f"k={model.k}" + (f" {covariance_type}" if covariance_type else "")
        specs.append(FigureSpec(
            f"{model.feature_set}_clusters",
            f"{model.feature_set.capitalize()} model: clusters on {x_feature} and {y_feature}, with "
            "each component's 2-sigma ellipse.", "plot_cluster_scatter", {
                "features": frame.loc[track_ids, feature_names].to_numpy(dtype=float),
                "labels": assigned.loc[track_ids].to_numpy(dtype=int),
                "means": np.stack(components["mean_original"].map(np.asarray)), "covariances": covariances,
                "feature_names": feature_names, "x_feature": x_feature, "y_feature": y_feature,
                "cluster_names": [f"{c}: {side_names['cluster_name'].get(c, 'unnamed')}" for c in range(int(model.k))],
                "title": f"{model.feature_set.capitalize()} features, {described} mixture"}))
    return specs


def _scatter_sample(n_points: int) -> np.ndarray:
    """Positions of the points a scatter draws: all, or a seeded sample of
    :data:`MAX_SCATTER_POINTS` in their order."""
    if n_points <= MAX_SCATTER_POINTS:
        return np.arange(n_points)
    return np.sort(np.random.default_rng(0).choice(n_points, MAX_SCATTER_POINTS, replace=False))


def _criteria_specs(tables: Mapping[str, pd.DataFrame]) -> list[FigureSpec]:
    """BIC per covariance type and k (older runs: BIC and AIC per k of their one type)."""
    chosen = dict(zip(tables["models"]["feature_set"], tables["models"]["k"].astype(int)))
    selection = tables["model_selection"]
    fitted = selection[selection["status"] == "fitted"] if not selection.empty else selection
    if not fitted.empty:
        return [FigureSpec("information_criteria", "BIC of every covariance type and k fitted (best "
                           "seed); the star marks the pair each side used.", "plot_information_criteria",
                           {"fits": fitted[["feature_set", "covariance_type", "k", "bic", "aic", "chosen"]]
                            .reset_index(drop=True), "chosen_k": chosen})]
    if tables["fit_curves"].empty:
        return []
    return [FigureSpec("information_criteria", "BIC and AIC per k (best seed); the star marks the k "
                       "each side used.", "plot_information_criteria",
                       {"fits": tables["fit_curves"], "chosen_k": chosen})]


def _contingency_specs(tables: Mapping[str, pd.DataFrame], kind: RunKind) -> list[FigureSpec]:
    left, right = kind.answer
    counts = _rows_of(tables["contingency"], kind.answer)
    if counts.empty:
        return []
    table = counts.pivot(index="left_cluster", columns="right_cluster", values="n_tracks").fillna(0)
    pairs = _rows_of(tables["cluster_pairs"], kind.answer).sort_values("pair")
    rows = [*pairs["left_cluster"], *(c for c in table.index if c not in set(pairs["left_cluster"]))]
    cols = [*pairs["right_cluster"], *(c for c in table.columns if c not in set(pairs["right_cluster"]))]
    matched = table.loc[rows, cols].astype(int)
    matched.index.name, matched.columns.name = left.capitalize(), right.capitalize()
    return [FigureSpec("contingency", "Tracks per pair of clusters" + (
        "; matched pairs on the outlined diagonal." if not pairs.empty else "."), "plot_contingency_heatmap",
        {"contingency": matched, "title": f"{left.capitalize()} clusters (rows) vs {right} (columns)"})]


def _feature_agreement_specs(tables: Mapping[str, pd.DataFrame]) -> list[FigureSpec]:
    if not (tables["feature_agreement"]["measure"] == "cv_r2").any():
        return []
    return [FigureSpec("feature_agreement", "How well all Aubio features together predict each Spotify "
                       "feature (ridge regression, cross-validated), and the best single Aubio feature.",
                       "plot_feature_agreement",
                       {"table": feature_prediction_frame(tables["feature_agreement"])})]


def _across_k_specs(tables: Mapping[str, pd.DataFrame]) -> list[FigureSpec]:
    if tables["agreement_by_k"].empty:
        return []
    return [FigureSpec("agreement_vs_k", "Agreement at each k fitted on both sides (bands: 95% "
                       "half-sample intervals).", "plot_agreement_vs_k",
                       {"across_k": tables["agreement_by_k"], "metrics": ("ari", "ami")})]


def figure_specs(tables: Mapping[str, pd.DataFrame]) -> tuple[list[FigureSpec], list[str]]:
    """Every figure the run's tables allow, in the report's order; a figure whose inputs cannot
    be assembled becomes a note, not a crash.

    Returns
    -------
    specs : list of FigureSpec
    notes : list of str
    """
    kind = run_kind(str(tables["run"].iloc[0]["source"]))
    assemblers = [("cluster scatter", lambda: _scatter_specs(tables)),
                  ("BIC curves", lambda: _criteria_specs(tables)),
                  ("contingency heatmap", lambda: _contingency_specs(tables, kind)),
                  ("feature agreement", lambda: _feature_agreement_specs(tables)),
                  ("agreement vs k", lambda: _across_k_specs(tables))]
    specs, notes = [], []
    for name, assemble in assemblers:
        try:
            specs += assemble()
        except (ValueError, KeyError, IndexError) as error:
            notes.append(f"the {name} plot could not be drawn from the stored tables: {error}")
    return specs, notes


def _drawn(specs: list[FigureSpec], rendered: Mapping[str, bytes] | None) -> tuple[list[Figure], list[str]]:
    """The specs' PNGs (taken from ``rendered`` when given); a plot that fails becomes a note."""
    figures, notes = [], []
    for spec in specs:
        try:
            png = rendered[spec.name] if rendered is not None else spec.render()
        except (ValueError, KeyError, IndexError) as error:
            notes.append(f"the {spec.name.replace('_', ' ')} plot could not be drawn: {error}")
            continue
        figures.append(Figure(spec.name, spec.caption, png))
    return figures, notes


# ---------------------------------------------------------------------------- notes


def report_notes(tables: Mapping[str, pd.DataFrame], kind: RunKind) -> list[str]:
    """Plain-language caveats: demo audio, the models' warnings, few tracks, one-cluster
    models, tracks left out, missing stages."""
    models = tables["models"]
    notes = [DEMO_AUDIO_CAVEAT] if kind.name == "demo" else []
    notes += [f"the {model.feature_set} model: {warning}." for model in models.itertuples(index=False)
              for warning in model.warnings]
    fitted = _fitted_tracks(tables)
    sides = " and ".join(side.capitalize() for side in kind.sides)
    if len(fitted) < MIN_TRACKS_FOR_INFERENCE:
        notes.append(f"only {len(fitted)} tracks were clustered on {sides} features (fewer than "
                     f"{MIN_TRACKS_FOR_INFERENCE}): intervals and p-values are too coarse to rely on.")
    coverage = tables["track_coverage"]
    lacking = int((~coverage["track_id"].isin(fitted)).sum()) if fitted else 0
    if lacking:
        notes.append(f"{lacking} of {len(coverage)} tracks were not clustered (no {sides} features, "
                     "or none fit to cluster) and are left out of every comparison (listed at the end).")
    for model in models.itertuples(index=False):
        if int(model.k) < 2:
            notes.append(f"the {model.feature_set} model has a single cluster: every agreement with it "
                         f"is a convention (0, or 1 against another single cluster) and carries no "
                         f"information.")
    notes += [f"no {side} model was fitted for this run, so it is left out of the comparison."
              for side in kind.sides if side not in set(models["feature_set"])]
    if "feature_agreement" in kind.sections and tables["feature_agreement"].empty:
        notes.append("feature agreement was not computed (fewer than 10 tracks with both feature sets).")
    return notes


# ---------------------------------------------------------------------------- render


def _check_tables(tables: Mapping[str, pd.DataFrame]) -> None:
    missing = [name for name in REPORT_TABLES if name not in tables]
    if missing:
        raise ValueError(f"the report needs the tables {missing}; read them with "
                         f"songmix.warehouse.reads.report_tables(path, run_id)")


def _sections(tables: Mapping[str, pd.DataFrame], kind: RunKind) -> list[tuple[str, str, pd.DataFrame, str]]:
    """``(title, text, table, text when empty)`` of every section the kind shows, in order."""
    predicted, direct = _feature_tables(tables["feature_agreement"])
    missing = missing_tracks(tables["track_coverage"], _fitted_tracks(tables), kind)
    truth = f" {kind.truth} are the truth." if kind.truth else ""
    left_out = _left_out_reasons(tables["model_selection"])
    builders = {
        "agreement": lambda: ("Agreement per comparison",
                              "Half-sample 95% intervals (half the tracks drawn without replacement, "
                              "limited to each metric's range) and a permutation null (one side's "
                              "labels shuffled)." + truth + (" notebook_k2 is the seed notebook's "
                              "model: k=2 on acousticness and energy only." if "pairs" in kind.sections
                              else ""), agreement_table(tables["comparison"]), _NOTHING),
        "model_selection": lambda: ("Model selection",
                                    "BIC (lower is better) of every covariance type and k, as R's mclust "
                                    "compares them; * marks the model used. " + (
                                        "Left out: " + "; ".join(left_out) + "." if left_out else
                                        "Every pair asked for was fitted."),
                                    model_selection_table(tables["model_selection"]),
                                    "Not recorded for this run (fitted before songmix compared "
                                    "covariance types)."),
        "across_k": lambda: ("Agreement across k", "Each side's best model at every k fitted on both.",
                             across_k_table(tables["agreement_by_k"]), _NOTHING),
        "pairs": lambda: ("Matched cluster pairs", "Clusters paired by the Hungarian method; names come "
                          "from each cluster's most unusual mean Spotify features. Precision: share of "
                          "the right cluster inside the left one; recall: share of the left cluster "
                          "recovered.", pairs_table(tables["cluster_pairs"]), _NOTHING),
        "profiles": lambda: ("Cluster profiles (Spotify vs Aubio)", "Mean Spotify features of every "
                             "cluster of both models.", profiles_table(tables["cluster_profiles"]), _NOTHING),
        "feature_agreement": lambda: ("Feature agreement", "How well Aubio's features predict each "
                                      "Spotify feature.", predicted, _NOTHING),
        "direct": lambda: ("Features both sides measure", "Tempo within 4 % (acc1) and up to octave "
                           "errors (acc2); key and mode agreement; loudness correlation.", direct, _NOTHING),
        "accuracy": lambda: (f"Extractor accuracy against {kind.truth}", "Tempo within 4 % (acc1) and "
                             "up to octave errors (acc2); mean MIREX key score.",
                             tables["extractor_accuracy"].assign(value=lambda f: f["value"].map(_number)),
                             f"No tempo, key and mode in {kind.truth} to measure against."),
        "left_out": lambda: (f"Tracks left out ({len(missing)})", "Tracks of the run the models were "
                             "not fitted on.", missing, "None: every track of the run was clustered."),
    }
    return [builders[name]() for name in builders if name in kind.sections]


def build_report(
    tables: Mapping[str, pd.DataFrame],
    *,
    plot_folder: str = "plots",
    rendered: Mapping[str, bytes] | None = None,
) -> Report:
    """Render one run's report from its stored tables.

    Parameters
    ----------
    tables : dict of str to DataFrame
        All of :data:`REPORT_TABLES` (empty frames allowed, except ``run``: one row).
    plot_folder : str, default "plots"
        Folder, relative to the Markdown file, the caller writes ``<name>.png`` plots into.
    rendered : dict of str to bytes, optional
        PNGs of :func:`figure_specs` already drawn, by name (the pipeline caches them);
        default: draw them here.

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
    kind = run_kind(str(run["source"]))
    headline = headline_sentence(tables["comparison"], kind)
    specs, spec_notes = figure_specs(tables)
    figures, plot_notes = _drawn(specs, rendered)
    notes = tuple(report_notes(tables, kind) + spec_notes + plot_notes)
    parameters = json.loads(run["parameters"]) if isinstance(run["parameters"], str) else dict(run["parameters"])
    meta = (f"run {run['run_id']} · source {run['source']} · status {run['status']} · started "
            f"{run['started_at']} · songmix {run['code_version']} · parameters "
            + ", ".join(f"{k}={v}" for k, v in parameters.items()))
    page = _Page(kind.question, meta, headline, _supporting_sentence(tables["comparison"], kind), notes,
                 _sections(tables, kind), figures)
    return Report(run_id=str(run["run_id"]), kind=kind, headline=headline, notes=notes,
                  figures=tuple(figures), html=_render_html(page),
                  markdown=_render_markdown(page, lambda figure: f"{plot_folder}/{figure.name}.png"),
                  embedded_markdown=_render_markdown(page, _data_uri))


@dataclass(frozen=True)
class _Page:
    """Everything a rendered report shows, in order: headline, plots, notes, sections."""

    title: str
    meta: str
    headline: str
    supporting: str
    notes: tuple[str, ...]
    sections: list[tuple[str, str, pd.DataFrame, str]]
    figures: list[Figure]


def _render_html(page: _Page) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>songmix: {html.escape(page.title)}</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(page.title)}</h1>",
             f'<p class="meta">{html.escape(page.meta)}</p>',
             f'<p class="headline">{html.escape(page.headline)}</p>']
    if page.supporting:
        parts.append(f"<p>{html.escape(page.supporting)}</p>")
    for figure in page.figures:
        parts.append(f'<figure><img alt="{html.escape(figure.name)}" src="{_data_uri(figure)}">'
                     f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>")
    if page.notes:
        parts.append('<div class="notes"><strong>Read with care:</strong><ul>'
                     + "".join(f"<li>{html.escape(n)}</li>" for n in page.notes) + "</ul></div>")
    for title, text, frame, empty in page.sections:
        body = _html_table(frame) if not frame.empty else f"<p><em>{html.escape(empty)}</em></p>"
        intro = f"<p>{html.escape(text)}</p>" if text else ""
        parts.append(f"<h2>{html.escape(title)}</h2>{intro}{body}")
    parts.append("</body></html>")
    return "\n".join(parts)


def _data_uri(figure: Figure) -> str:
    return "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")


def _render_markdown(page: _Page, image_source: Callable[[Figure], str]) -> str:
    parts = [f"# {page.title}", "", f"_{markdown_text(page.meta)}_", "", f"**{page.headline}**", ""]
    if page.supporting:
        parts += [page.supporting, ""]
    for figure in page.figures:
        parts += [f"![{figure.name}]({image_source(figure)})", "", f"_{figure.caption}_", ""]
    if page.notes:
        parts += ["Read with care:", "", *(f"- {note}" for note in page.notes), ""]
    for title, text, frame, empty in page.sections:
        parts += [f"## {title}", ""]
        if text:
            parts += [text, ""]
        parts += [markdown_table(frame) if not frame.empty else f"_{empty}_", ""]
    return "\n".join(parts)
