"""The comparison stage and the run's summary: stored, drawn, and published to Prefect."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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
from songmix.audio.folder import TRACK_ID_PREFIX
from songmix.flows.drift import DriftReport
from songmix.flows.progress import publish_report, stage
from songmix.tasks.audio import measure_plain_aubio_tempo
from songmix.tasks.compare import (
    NOTEBOOK_K,
    Agreement,
    FeatureMeasures,
    describe_clusters,
    measure_agreement,
    measure_agreement_across_k,
    measure_extractor_accuracy,
    measure_feature_agreement,
    notebook_labels,
    render_plots,
)
from songmix.warehouse import reads, records
from songmix.warehouse.reads import StoredClustering
from songmix.warehouse.store import Warehouse

#: Resamples for intervals and permutations for the null of every agreement measure ...
AGREEMENT_RESAMPLES = 1000
#: ... up to this many tracks; beyond, fewer (down to MIN_RESAMPLES), so a data set's
#: comparison costs about what 10 000 tracks' does: each resample's AMI grows with the tracks,
#: while the interval it estimates narrows.
RESAMPLED_TRACKS = 10_000
MIN_RESAMPLES = 200
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
        # Right under the answer: what it can and cannot mean (a demo's audio is synthesised).
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  warning: {name} model: {warning}" for name, warnings in self.warnings.items()
                  for warning in warnings]
        for name, table in self.agreement.items():
            lines.append(f"  {name:<22} ARI {table.loc['ari', 'value']:.3f}  "
                         f"NMI {table.loc['nmi', 'value']:.3f}  AMI {table.loc['ami', 'value']:.3f}")
        if self.extractor_accuracy:
            lines.append("  extractor vs truth: " + ", ".join(
                f"{metric} {value:.2f}" for metric, value in self.extractor_accuracy.items()))
        lines.append(f"report: {self.report}" if self.report else
                     f"report: songmix report --run {self.run_id}")
        return "\n".join(lines)


@flow(name="compare-clusterings", flow_run_name="compare-clusterings")
def compare(run_id: str, db_path: Path) -> RunSummary:
    """Agreement of the run's clusterings with each other and with its truth (and of the seed
    notebook's model with both), matched clusters with names, agreement across k, feature
    agreement and extractor accuracy; stored per run (the report draws them).

    Every comparison the run's data allows is made: Spotify vs Aubio needs both clusterings;
    a truth (the demo's groups, a folder's truth.csv, a data set's genres) is compared on the
    tracks it labels.
    """
    warehouse = Warehouse(db_path)
    progress = stage("comparison", 5)
    fitted_ids = reads.fitted_track_ids(warehouse, run_id)
    features = {"spotify": reads.spotify_feature_frame(warehouse, run_id),
                "aubio": reads.aubio_feature_frame(warehouse, run_id)}
    clusterings = reads.stored_clusterings(warehouse, run_id, fitted_ids)
    truth = reads.truth_frame(warehouse, run_id)
    labels = {name: clustering.labels for name, clustering in clusterings.items()}
    fitted_spotify = features["spotify"].reindex(fitted_ids) if "spotify" in clusterings else None
    truth_codes = _truth_codes(truth, fitted_ids)
    if truth_codes is not None:
        labels["truth"] = truth_codes
    # The demo's audio is rendered from its own features: say so wherever its agreement shows.
    notes = (([DEMO_AUDIO_CAVEAT] if reads.run_source(warehouse, run_id) == "demo" else [])
             + _rejection_notes(warehouse, run_id)
             + _missing_track_notes(len(truth), features, clusterings, fitted_ids))
    both = {"spotify", "aubio"} <= set(clusterings)
    # The seed notebook's model is a reference for the question Spotify vs Aubio only.
    if both and len(fitted_ids) >= 2 * NOTEBOOK_K:
        try:
            labels["notebook_k2"] = notebook_labels(fitted_spotify, n_seeds=NOTEBOOK_SEEDS,
                                                    random_state=0)
        except ValueError as error:
            notes.append(f"the notebook's k=2 model could not be fitted: {error}")
    pairs = [(a, b) for a, b in COMPARISONS if a in labels and b in labels]
    if not pairs:
        notes.append("nothing to compare the clustering with: no second feature set and no truth "
                     "(a data set's genre column, a folder's truth.csv)")
    # A truth is compared on the tracks it labels.
    rows = {pair: labels["truth"] >= 0 if "truth" in pair else slice(None) for pair in pairs}
    agreements = [measure_agreement(a, labels[a][rows[a, b]], b, labels[b][rows[a, b]],
                                    n_resamples=resamples_for(len(fitted_ids)), random_state=0)
                  for a, b in pairs]
    progress.advance()
    profiles = ([describe_clusters(agreement, labels[a][rows[a, b]], labels[b][rows[a, b]],
                                   fitted_spotify[rows[a, b]])
                 for agreement, (a, b) in zip(agreements, pairs, strict=True)]
                if fitted_spotify is not None else None)
    progress.advance()
    across_k = (measure_agreement_across_k(
        clusterings["spotify"].labels_by_k, clusterings["aubio"].labels_by_k,
        truth_codes if truth_codes is not None and (truth_codes >= 0).all() else None,
        n_resamples=ACROSS_K_RESAMPLES) if both else None)
    progress.advance()
    feature_measures = (measure_feature_agreement(features["spotify"], features["aubio"])
                        if both and len(fitted_ids) >= 10 else None)
    progress.advance()
    accuracy = _extractor_accuracy(features["aubio"], truth)
    progress.advance()
    warehouse.write(_comparison_tables(run_id, agreements, profiles, across_k, feature_measures,
                                       accuracy))
    summary = stored_summary(
        warehouse, run_id, clusterings, len(fitted_ids),
        agreement={f"{a.left_set} vs {a.right_set}": a.uncertainty.to_frame() for a in agreements},
        extractor_accuracy={m: v for m, v in accuracy.items() if m != "n_tracks"},
        notes=tuple(dict.fromkeys([*notes, *(n for a in agreements for n in a.uncertainty.notes)])))
    progress.finish("; ".join(f"{name} ARI {table.loc['ari', 'value']:.3f}"
                              for name, table in summary.agreement.items()) or "nothing to compare")
    return summary


def stored_summary(warehouse: Warehouse, run_id: str, clusterings: dict[str, StoredClustering],
                   n_tracks: int, **found) -> RunSummary:
    """The summary of a run's chosen models as stored, with what its comparison ``found``."""
    return RunSummary(
        run_id=run_id, source=reads.run_source(warehouse, run_id), n_tracks=n_tracks,
        chosen_k={name: c.chosen_k for name, c in clusterings.items()},
        covariance_type={name: c.covariance_type for name, c in clusterings.items()},
        warnings={name: c.warnings for name, c in clusterings.items() if c.warnings}, **found)


def resamples_for(n_tracks: int) -> int:
    """Resamples (and permutations) of an agreement measured on ``n_tracks`` tracks."""
    return max(MIN_RESAMPLES, min(AGREEMENT_RESAMPLES, AGREEMENT_RESAMPLES * RESAMPLED_TRACKS // max(n_tracks, 1)))


def _truth_codes(truth: pd.DataFrame, fitted_ids: list[str]) -> np.ndarray | None:
    """The truth's group of each fitted track as a code (-1 where unknown), or None when
    fewer than two tracks have one."""
    groups = truth["group_name"].reindex(fitted_ids)
    if groups.notna().sum() < 2:
        return None
    return pd.factorize(groups)[0]


def _extractor_accuracy(aubio: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Tempo Acc1/Acc2 and key score over the tracks whose truth has tempo, key and mode;
    for a user's own files, plain aubio's tempo beside them (the demo's synthesised audio
    says nothing about it)."""
    complete = truth.dropna(subset=["tempo", "key", "mode"])
    measured = complete.index.intersection(aubio.index)
    if measured.empty:
        return {}
    files = {track_id: track_id.removeprefix(TRACK_ID_PREFIX) for track_id in measured
             if track_id.startswith(TRACK_ID_PREFIX)}
    plain_aubio = pd.Series(measure_plain_aubio_tempo(files), dtype=float) if files else None
    return measure_extractor_accuracy(aubio, complete[["tempo", "key", "mode"]], plain_aubio)


def _rejection_notes(warehouse: Warehouse, run_id: str) -> list[str]:
    """The rows of an imported file the run left out, and why most often."""
    n_rejected, reasons = reads.rejection_reasons(warehouse, run_id)
    if not n_rejected:
        return []
    return [f"{n_rejected} rows of the file were rejected (every reason is in the rejected_rows "
            "table); most often: " + ", ".join(f"{count} x {reason}" for reason, count in reasons.items())]


def _missing_track_notes(
    n_run_tracks: int, features: dict[str, pd.DataFrame], clusterings: dict, fitted_ids: list[str]
) -> list[str]:
    """Plain counts of the run's tracks the comparison could not use (the report lists them)."""
    notes = [f"{n} of {n_run_tracks} tracks have no {name} features" for name, frame in features.items()
             if name in clusterings and (n := n_run_tracks - len(frame))]
    if len(fitted_ids) < n_run_tracks:
        notes.append(f"{n_run_tracks - len(fitted_ids)} of {n_run_tracks} tracks are left out of "
                     "the clustering (songmix report lists them)")
    return notes


def _comparison_tables(
    run_id: str,
    agreements: list[Agreement],
    profiles: list[pd.DataFrame] | None,
    across_k: pd.DataFrame | None,
    feature_measures: FeatureMeasures | None,
    accuracy: dict[str, float],
) -> dict[str, pd.DataFrame]:
    """Every mart row of the comparison stage, by table, ready for one write."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for number, agreement in enumerate(agreements):
        rows = records.agreement_rows(run_id, agreement)
        if profiles is not None:
            rows |= records.cluster_pair_rows(run_id, agreement, profiles[number])
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
    tables = reads.report_tables(database, run_id)
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
