"""The comparison stage and the run's summary: stored, drawn, and published to Prefect."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import FlowRunContext

from songmix.analysis.report import DEMO_AUDIO_CAVEAT, headline_sentence, markdown_table
from songmix.audio.folder import TRACK_ID_PREFIX
from songmix.flows.progress import publish_report, stage
from songmix.tasks.audio import measure_plain_aubio_tempo
from songmix.tasks.compare import (
    NOTEBOOK_K,
    Agreement,
    FeatureMeasures,
    describe_clusters,
    figure_inputs,
    measure_agreement,
    measure_agreement_across_k,
    measure_extractor_accuracy,
    measure_feature_agreement,
    notebook_labels,
    render_plots,
    save_plots,
)
from songmix.warehouse import records
from songmix.warehouse.drift_reads import run_source
from songmix.warehouse.store import Warehouse, stored_clusterings

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
    """What a run found, in the words the terminal and the Prefect UI show."""

    run_id: str
    n_tracks: int
    chosen_k: dict[str, int]
    agreement: dict[str, pd.DataFrame] = field(default_factory=dict)
    extractor_accuracy: dict[str, float] = field(default_factory=dict)
    plots: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def headline(self) -> str:
        """One sentence: how closely Aubio's clustering mimics Spotify's."""
        table = self.agreement.get("spotify vs aubio")
        if table is None:
            return "No comparison: one of the clusterings could not be fitted (see notes)."
        # The report's own sentence, so the terminal and the report say the same thing.
        return headline_sentence(table.reset_index().assign(
            left_set="spotify", right_set="aubio", left_k=self.chosen_k["spotify"],
            right_k=self.chosen_k["aubio"], n_tracks=self.n_tracks))

    def as_text(self) -> str:
        lines = [f"run {self.run_id}: {self.n_tracks} tracks, k = "
                 + ", ".join(f"{name} {k}" for name, k in self.chosen_k.items()),
                 self.headline()]
        for name, table in self.agreement.items():
            lines.append(f"  {name:<22} ARI {table.loc['ari', 'value']:.3f}  "
                         f"NMI {table.loc['nmi', 'value']:.3f}  AMI {table.loc['ami', 'value']:.3f}")
        if self.extractor_accuracy:
            lines.append("  extractor vs truth: " + ", ".join(
                f"{metric} {value:.2f}" for metric, value in self.extractor_accuracy.items()))
        lines += [f"  note: {note}" for note in self.notes]
        if self.plots:
            lines.append(f"plots: {next(iter(self.plots.values())).parent}")
        lines.append(f"full report: songmix report --run {self.run_id}")
        return "\n".join(lines)

    def as_markdown(self) -> str:
        parts = [f"# songmix run `{self.run_id}`", "", self.headline(), ""]
        for name, table in self.agreement.items():
            parts += [f"## {name}", "", markdown_table(table.round(4)), ""]
        if self.extractor_accuracy:
            parts += ["## Extractor accuracy", "",
                      markdown_table(pd.Series(self.extractor_accuracy).round(3).rename_axis("metric").to_frame("value")), ""]
        parts += [f"- {note}" for note in self.notes]
        parts += [f"- plot `{name}`: {path}" for name, path in self.plots.items()]
        return "\n".join(parts)


@flow(name="compare-clusterings", flow_run_name="compare-clusterings")
def compare(run_id: str, db_path: Path, *, out_dir: Path) -> RunSummary:
    """Agreement of the run's clusterings with each other and with its truth (and of the seed
    notebook's model with both), matched clusters with names, agreement across k, feature
    agreement, extractor accuracy and the plots; stored per run.

    Every comparison the run's data allows is made: Spotify vs Aubio needs both clusterings;
    a truth (the demo's groups, a folder's truth.csv, a data set's genres) is compared on the
    tracks it labels.
    """
    warehouse = Warehouse(db_path)
    progress = stage("comparison", 6)
    fitted_ids = warehouse.fitted_track_ids(run_id)
    features = {"spotify": warehouse.spotify_feature_frame(run_id),
                "aubio": warehouse.aubio_feature_frame(run_id)}
    clusterings = stored_clusterings(warehouse, run_id, fitted_ids)
    truth = warehouse.truth_frame(run_id)
    labels = {name: clustering.labels for name, clustering in clusterings.items()}
    fitted_spotify = features["spotify"].reindex(fitted_ids) if "spotify" in clusterings else None
    truth_codes = _truth_codes(truth, fitted_ids)
    if truth_codes is not None:
        labels["truth"] = truth_codes
    # The demo's audio is rendered from its own features: say so wherever its agreement shows.
    notes = (([DEMO_AUDIO_CAVEAT] if run_source(warehouse, run_id) == "demo" else [])
             + _missing_track_notes(len(truth), features, clusterings, fitted_ids))
    if fitted_spotify is not None and len(fitted_ids) >= 2 * NOTEBOOK_K:
        try:
            labels["notebook_k2"] = notebook_labels(fitted_spotify, n_seeds=NOTEBOOK_SEEDS,
                                                    random_state=0)
        except ValueError as error:
            notes.append(f"the notebook's k=2 model could not be fitted: {error}")
    pairs = [(a, b) for a, b in COMPARISONS if a in labels and b in labels]
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
    both = {"spotify", "aubio"} <= set(clusterings)
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
    figures = figure_inputs(clusterings, {name: features[name].reindex(fitted_ids) for name in clusterings},
                            _find(agreements, "spotify", "aubio"), warehouse.fit_curves(run_id),
                            feature_measures, across_k)
    plots = save_plots(render_plots(figures), out_dir)
    progress.advance()
    summary = RunSummary(
        run_id=run_id, n_tracks=len(fitted_ids),
        chosen_k={name: clustering.chosen_k for name, clustering in clusterings.items()},
        agreement={f"{a.left_set} vs {a.right_set}": a.uncertainty.to_frame() for a in agreements},
        extractor_accuracy={m: v for m, v in accuracy.items() if m != "n_tracks"},
        plots=plots,
        notes=tuple(dict.fromkeys([*notes, *(n for a in agreements for n in a.uncertainty.notes)])),
    )
    progress.finish(summary.headline())
    return summary


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


def _find(agreements: list[Agreement], left: str, right: str) -> Agreement | None:
    return next((a for a in agreements if (a.left_set, a.right_set) == (left, right)), None)


def publish_run(summary: RunSummary, drifts: list[str]) -> None:
    """Publish a run's summary artifacts, and its report with the drift since the previous run
    (one headline per feature set)."""
    publish_summary(summary)
    publish_report("\n\n".join([summary.as_markdown(), "## Drift since the previous run",
                                *(f"- {headline}" for headline in drifts)]), summary.plots)


def publish_summary(summary: RunSummary) -> None:
    """Publish the summary as Prefect artifacts (shown on the flow run's page in the UI)."""
    if FlowRunContext.get() is None:
        return
    create_markdown_artifact(summary.as_markdown(), key="songmix-summary",
                             description="How closely Aubio's clustering mimics Spotify's")
    rows = [{"comparison": name, "metric": metric, **values.round(4).to_dict()}
            for name, table in summary.agreement.items() for metric, values in table.iterrows()]
    if rows:
        create_table_artifact(rows, key="songmix-comparison", description="Agreement per comparison")
