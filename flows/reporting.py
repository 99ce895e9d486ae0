"""The comparison stage and the run's summary: stored, drawn, and published to Prefect."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.context import FlowRunContext

from songmix.analysis.report import (
    DEMO_AUDIO_CAVEAT,
    REPORT_PLOTS,
    WrittenReport,
    build_report,
    figure_specs,
)
from songmix.flows.drift import DriftReport
from songmix.flows.progress import publish_report, stage
from songmix.tasks.compare import (
    NOTEBOOK_K,
    Agreement,
    FeatureMeasures,
    describe_clusters,
    fit_notebook_model,
    measure_agreement,
    measure_agreement_across_k,
    measure_extractor_accuracy,
    measure_feature_agreement,
    render_plots,
)
from songmix.tasks.modeling import MixtureFits
from songmix.warehouse import records
from songmix.warehouse.drift_reads import run_source
from songmix.warehouse.report_reads import report_tables
from songmix.warehouse.store import Warehouse

#: Resamples for intervals and permutations for the null of every agreement measure.
AGREEMENT_RESAMPLES = 1000
#: Resamples for the interval of each (comparison, k) of the agreement-vs-k curve: a band on
#: a plot, and 27 comparisons at k = 2..10, so fewer than for the headline comparison.
ACROSS_K_RESAMPLES = 100
#: EM seeds for the seed notebook's two-component reference model.
NOTEBOOK_SEEDS = 10
#: (left, right) clusterings compared, when both exist; the left one is the reference.
COMPARISONS = (("spotify", "aubio"), ("spotify", "truth"), ("aubio", "truth"),
               ("notebook_k2", "aubio"), ("notebook_k2", "truth"))


@dataclass(frozen=True)
class RunSummary:
    """What a run found, in the words the terminal shows; its report says it at length.

    Attributes
    ----------
    run_id, source : str
    n_tracks : int
        Tracks the models were fitted on.
    chosen_k, covariance_type : dict
        Per feature set, the chosen model.
    warnings : dict of str to tuple of str
        Per feature set, reasons to distrust its chosen model.
    headline : str
        The report's answer to the run's question (set when the report is written).
    agreement : dict of str to DataFrame
        ``"<left> vs <right>"``: ARI, NMI, AMI with intervals and null.
    extractor_accuracy : dict of str to float
    notes : tuple of str
    report : Path or None
        The report's HTML page, once written.
    """

    run_id: str
    source: str
    n_tracks: int
    chosen_k: dict[str, int]
    covariance_type: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    headline: str = ""
    agreement: dict[str, pd.DataFrame] = field(default_factory=dict)
    extractor_accuracy: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    report: Path | None = None

    def as_text(self) -> str:
        lines = [f"run {self.run_id} ({self.source}): {self.n_tracks} tracks clustered"
                 + "".join(f", {name} k = {k} ({self.covariance_type.get(name, '?')} covariances)"
                           for name, k in self.chosen_k.items())]
        if self.headline:
            lines.append(self.headline)
        lines += [f"  warning: {name} model: {warning}" for name, warnings in self.warnings.items()
                  for warning in warnings]
        for name, table in self.agreement.items():
            lines.append(f"  {name:<22} ARI {table.loc['ari', 'value']:.3f}  "
                         f"NMI {table.loc['nmi', 'value']:.3f}  AMI {table.loc['ami', 'value']:.3f}")
        if self.extractor_accuracy:
            lines.append("  extractor vs truth: " + ", ".join(
                f"{metric} {value:.2f}" for metric, value in self.extractor_accuracy.items()))
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(f"report: {self.report}" if self.report else
                     f"report: songmix report --run {self.run_id}")
        return "\n".join(lines)


@flow(name="compare-clusterings")
def compare(
    warehouse: Warehouse,
    run_id: str,
    track_ids: list[str],
    fits: dict[str, MixtureFits],
) -> RunSummary:
    """Agreement of the two clusterings (and of each, and of the seed notebook's model, with
    the other and the truth), matched clusters with names, agreement across k, feature
    agreement and extractor accuracy; stored per run (the report draws them)."""
    progress = stage("comparison", 5)
    fitted_ids = warehouse.fitted_track_ids(run_id)
    features = {"spotify": warehouse.spotify_feature_frame(track_ids),
                "aubio": warehouse.aubio_feature_frame(track_ids)}
    fitted_spotify = features["spotify"].loc[fitted_ids]
    truth = warehouse.truth_frame(fitted_ids)
    labels = {name: fit.labels() for name, fit in fits.items()}
    if len(truth) == len(fitted_ids) and fitted_ids:
        labels["truth"] = truth.loc[fitted_ids, "group_id"].to_numpy()
    # Only the demo catalog stores a ground truth with its tracks.
    notes = ([DEMO_AUDIO_CAVEAT] if not truth.empty else []) + list(
        _missing_track_notes(track_ids, features, fitted_ids))
    if len(fitted_ids) >= 2 * NOTEBOOK_K:
        try:
            labels["notebook_k2"] = fit_notebook_model(fitted_spotify, n_seeds=NOTEBOOK_SEEDS,
                                                       random_state=0)
        except ValueError as error:
            notes.append(f"the notebook's k=2 model could not be fitted: {error}")
    pairs = [(a, b) for a, b in COMPARISONS if a in labels and b in labels]
    agreements = [measure_agreement(a, labels[a], b, labels[b], n_resamples=AGREEMENT_RESAMPLES,
                                    random_state=0) for a, b in pairs]
    progress.advance()
    profiles = [describe_clusters(a, labels[a.left_set], labels[a.right_set], fitted_spotify)
                for a in agreements]
    progress.advance()
    across_k = (measure_agreement_across_k(
        {k: fits["spotify"].labels(k) for k in fits["spotify"].models},
        {k: fits["aubio"].labels(k) for k in fits["aubio"].models},
        labels.get("truth"), n_resamples=ACROSS_K_RESAMPLES)
        if {"spotify", "aubio"} <= set(fits) else None)
    progress.advance()
    feature_measures = (measure_feature_agreement(features["spotify"], features["aubio"])
                        if len(fitted_ids) >= 10 else None)
    progress.advance()
    accuracy = measure_extractor_accuracy(features["aubio"], truth) if not truth.empty else {}
    progress.advance()
    warehouse.write(_comparison_tables(run_id, agreements, profiles, across_k, feature_measures,
                                       accuracy))
    summary = fitted_summary(
        warehouse, run_id, fits, len(fitted_ids),
        agreement={f"{a.left_set} vs {a.right_set}": a.uncertainty.to_frame() for a in agreements},
        extractor_accuracy={m: v for m, v in accuracy.items() if m != "n_tracks"},
        notes=tuple(dict.fromkeys([*notes, *(n for a in agreements for n in a.uncertainty.notes)])))
    progress.finish("; ".join(f"{name} ARI {table.loc['ari', 'value']:.3f}"
                              for name, table in summary.agreement.items()) or "nothing to compare")
    return summary


def fitted_summary(warehouse: Warehouse, run_id: str, fits: dict[str, MixtureFits], n_tracks: int,
                   **found) -> RunSummary:
    """The summary of a run's chosen models, with what its comparison ``found``."""
    return RunSummary(
        run_id=run_id, source=run_source(warehouse, run_id), n_tracks=n_tracks,
        chosen_k={name: fit.chosen_k for name, fit in fits.items()},
        covariance_type={name: fit.covariance_type for name, fit in fits.items()},
        warnings={name: fit.warnings for name, fit in fits.items() if fit.warnings}, **found)


def _missing_track_notes(
    track_ids: list[str], features: dict[str, pd.DataFrame], fitted_ids: list[str]
) -> list[str]:
    """Plain counts of the run's tracks the comparison could not use (the report lists them)."""
    notes = [f"{n} of {len(track_ids)} tracks have no {name} features" for name, frame in features.items()
             if (n := len(set(track_ids) - set(frame.index)))]
    if len(fitted_ids) < len(track_ids):
        notes.append(f"{len(track_ids) - len(fitted_ids)} of {len(track_ids)} tracks lack one "
                     f"feature set and are left out of the comparison (songmix report lists them)")
    return notes


def _comparison_tables(
    run_id: str,
    agreements: list[Agreement],
    profiles: list[pd.DataFrame],
    across_k: pd.DataFrame | None,
    feature_measures: FeatureMeasures | None,
    accuracy: dict[str, float],
) -> dict[str, pd.DataFrame]:
    """Every mart row of the comparison stage, by table, ready for one write."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for agreement, profile in zip(agreements, profiles, strict=True):
        for rows in (records.agreement_rows(run_id, agreement),
                     records.cluster_pair_rows(run_id, agreement, profile)):
            for name, frame in rows.items():
                parts.setdefault(name, []).append(frame)
    tables = {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}
    if across_k is not None and not across_k.empty:
        tables["agreement_by_k"] = records.agreement_by_k_rows(run_id, across_k)
    if feature_measures is not None:
        tables["feature_agreement"] = records.feature_agreement_rows(run_id, feature_measures)
    if accuracy:
        tables["extractor_accuracy"] = records.accuracy_rows(run_id, accuracy)
    return tables


def publish_run(warehouse: Warehouse, summary: RunSummary, drift: DriftReport | None, *,
                out_dir: Path) -> RunSummary:
    """Write the run's report (HTML, Markdown and plots under ``out_dir``) and publish it, with
    the drift since the previous comparable run, as the run's ``songmix-report`` artifact and
    its agreement as ``songmix-comparison``; returns the summary with the report's headline."""
    written = write_run_report(warehouse.path, summary.run_id, out_dir)
    drift_part = [] if drift is None else ["## Drift since the previous run",
                                           *(f"- {line}" for line in drift.lines())]
    publish_report("\n\n".join([written.report.embedded_markdown, *drift_part]))
    publish_comparison(summary)
    return dataclasses.replace(summary, headline=written.report.headline, report=written.html)


def write_run_report(database: Path, run_id: str, out_dir: Path) -> WrittenReport:
    """The report of ``run_id`` from the warehouse, its figures drawn through the cache, saved
    under ``out_dir``."""
    tables = report_tables(database, run_id)
    specs, _ = figure_specs(tables)
    try:
        rendered = render_plots({spec.name: (spec.plotter, spec.arguments) for spec in specs})
    except (ValueError, KeyError, IndexError):
        rendered = None  # build_report draws them one by one, a failing one becoming a note
    return build_report(tables, plot_folder=REPORT_PLOTS, rendered=rendered).save(out_dir)


def publish_comparison(summary: RunSummary) -> None:
    """The agreement tables as a Prefect table artifact (shown on the flow run's page)."""
    if FlowRunContext.get() is None:
        return
    rows = [{"comparison": name, "metric": metric, **values.round(4).to_dict()}
            for name, table in summary.agreement.items() for metric, values in table.iterrows()]
    if rows:
        create_table_artifact(rows, key="songmix-comparison", description="Agreement per comparison")
