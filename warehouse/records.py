"""From pipeline results to warehouse rows: one function per stage, DataFrames out (Arrow
for the largest tables, ``gmm_assignments`` and ``gmm_memberships``).

These functions decide how results are laid out in tables (the schema's business) and
touch no database; :class:`~songmix.warehouse.store.Warehouse` writes what they return.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from songmix.em import Scaler, aic, bic, full_covariances, mixture_from_parameters
from songmix.sources.schema import SPOTIFY_FEATURE_COLUMNS

#: Columns of the ``tracks`` table a source may fill.
TRACK_COLUMNS = ("track_id", "name", "artists", "album", "release_date", "year", "duration_ms",
                 "isrc", "preview_url")


def utc_now() -> datetime:
    """Now, as the naive UTC timestamp every warehouse TIMESTAMP column holds."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def search_page_rows(run_id: str, pages: Iterable[Mapping]) -> pd.DataFrame:
    """``search_pages`` rows from fetched pages (``query``, ``offset``, ``fetched_at``, ``page``)."""
    return pd.DataFrame(
        [
            {"run_id": run_id, "query": p["query"], "offset": p["offset"],
             "fetched_at": p["fetched_at"], "page": json.dumps(p["page"])}
            for p in pages
        ],
        columns=["run_id", "query", "offset", "fetched_at", "page"],
    )


def track_rows(run_id: str, tracks: pd.DataFrame, *, first_position: int = 0) -> dict[str, pd.DataFrame]:
    """``tracks`` and ``run_tracks`` rows of a run's tracks, in the run's order.

    ``tracks`` holds some of :data:`TRACK_COLUMNS` (the others are stored as NULL);
    ``first_position`` is the run position of its first row, for tracks listed in batches.
    """
    staged = tracks.reindex(columns=list(TRACK_COLUMNS)).reset_index(drop=True).assign(run_id=run_id)
    # A column the source lacks is all missing: typed as nothing, it is stored as NULL.
    staged = staged.astype({column: object for column in TRACK_COLUMNS if staged[column].isna().all()})
    membership = pd.DataFrame({"run_id": run_id, "track_id": staged["track_id"],
                               "position": np.arange(first_position, first_position + len(staged))})
    return {"tracks": staged, "run_tracks": membership}


def spotify_feature_rows(
    run_id: str, provider: str, features: Mapping[str, Mapping], fetched_at: datetime
) -> dict[str, pd.DataFrame]:
    """Typed ``spotify_features`` and raw ``raw_audio_features`` rows."""
    typed = pd.DataFrame(
        [{"track_id": tid, **{c: obj[c] for c in SPOTIFY_FEATURE_COLUMNS}}
         for tid, obj in features.items()],
        columns=["track_id", *SPOTIFY_FEATURE_COLUMNS],
    ).assign(provider=provider, run_id=run_id)
    raw = pd.DataFrame(
        [{"track_id": tid, "response": json.dumps(obj)} for tid, obj in features.items()],
        columns=["track_id", "response"],
    ).assign(provider=provider, run_id=run_id, fetched_at=fetched_at)
    return {"spotify_features": typed, "raw_audio_features": raw}


def failure_rows(
    run_id: str, stage: str, reasons: Mapping[str, str], recorded_at: datetime
) -> pd.DataFrame:
    """``item_failures`` rows: one per failed item with its reason."""
    return pd.DataFrame(
        {"run_id": run_id, "stage": stage, "item_id": list(reasons),
         "reason": list(reasons.values()), "recorded_at": recorded_at}
    )


def data_sha256(features: np.ndarray, track_ids: Sequence[str]) -> str:
    """Lineage hash of a fitted matrix: its values and which tracks the rows are."""
    digest = hashlib.sha256(np.ascontiguousarray(features, dtype=np.float64).tobytes())
    digest.update("\n".join(track_ids).encode())
    return digest.hexdigest()


def mixture_rows(
    run_id: str, fits, probabilities: Mapping[int, np.ndarray], features: np.ndarray,
    track_ids: Sequence[str], feature_versions: Iterable[str] = (),
) -> dict[str, pd.DataFrame]:
    """``model_selection`` rows for every (covariance type, k) pair of one feature set's
    :class:`MixtureFits`; ``gmm_fits``, ``gmm_models``, ``gmm_components``,
    ``gmm_assignments`` and ``seed_stability`` rows for every k of its chosen covariance type;
    ``gmm_memberships`` for its chosen k. ``model_selection.n_samples`` counts the tracks the
    selection was fitted on (a sample of a large data set, see
    :func:`~songmix.tasks.modeling.fit_mixtures`), the other tables all of them.
    ``probabilities``: each k's membership probabilities of ``features``, rows in ``track_ids``
    order; ``feature_versions``: the extractor version
    of each fitted row, for Aubio features (``gmm_models.feature_version``)."""
    sha = data_sha256(features, track_ids)
    feature_version = ", ".join(sorted(set(feature_versions))) or None
    n = len(track_ids)
    scaler = fits.scaler
    fit_rows, model_rows, component_rows, assignment_rows, stability_rows = [], [], [], [], []
    for k, model in sorted(fits.models.items()):
        key = {"run_id": run_id, "feature_set": fits.feature_set, "k": k}
        fit_rows += [key | {
            "seed": seed.seed, "covariance_type": model.covariance_type,
            "log_likelihood": _finite_or_none(seed.log_likelihood),
            "bic": _finite_or_none(bic(seed.log_likelihood, n, model.n_parameters)),
            "aic": _finite_or_none(aic(seed.log_likelihood, n, model.n_parameters)),
            "n_iter": seed.n_iter, "converged": seed.converged,
            "is_best": seed.seed == model.best_seed, "failed_reason": seed.failed_reason,
            "n_samples": n, "data_sha256": sha,
        } for seed in model.seeds]
        stability_rows += [key | {"seed": seed, "ari_with_best": float(ari)}
                           for seed, ari in enumerate(fits.stability[k]) if np.isfinite(ari)]
        model_rows.append(key | {
            "covariance_type": model.covariance_type, "chosen": k == fits.chosen_k,
            "features": list(model.feature_names), "scaler_mean": scaler.mean.tolist(),
            "scaler_scale": scaler.scale.tolist(), "log_likelihood": model.log_likelihood,
            "bic": model.bic(features), "aic": model.aic(features), "n_samples": n,
            "warnings": list(fits.warnings) if k == fits.chosen_k else None,
            "feature_version": feature_version, "log_density_p01": fits.log_density_p01[k],
        })
        means_original = scaler.inverse_transform(model.means)
        covariances = full_covariances(model)
        component_rows += [key | {
            "component": component, "weight": float(model.weights[component]),
            "mean": model.means[component].tolist(),
            "mean_original": means_original[component].tolist(),
            "covariance": covariances[component].ravel().tolist(),
        } for component in range(k)]
        assignment_rows.append(assignment_table(key, track_ids, probabilities[k]))
    chosen_key = {"run_id": run_id, "feature_set": fits.feature_set, "k": fits.chosen_k}
    selection = pd.DataFrame(fits.selection.candidates()).assign(
        run_id=run_id, feature_set=fits.feature_set, n_samples=fits.selection.n_samples,
        prior=fits.selection.prior is not None)
    return {
        "model_selection": selection,
        "gmm_fits": pd.DataFrame(fit_rows),
        "gmm_models": _with_track_ids(pd.DataFrame(model_rows), track_ids),
        "gmm_components": pd.DataFrame(component_rows),
        "gmm_assignments": pa.concat_tables(assignment_rows),
        "gmm_memberships": membership_table(chosen_key, track_ids, probabilities[fits.chosen_k]),
        "seed_stability": pd.DataFrame(stability_rows),
    }


def stored_model(components: pd.DataFrame):
    """The inverse of :func:`mixture_rows`: one stored model, rebuilt for the predict functions.

    Parameters
    ----------
    components : DataFrame
        The model's ``gmm_components`` rows (``weight``, ``mean`` standardized, ``covariance``
        row-major d*d) joined with its ``gmm_models`` row (``features``, ``scaler_mean``,
        ``scaler_scale``), one row per component.

    Returns
    -------
    GaussianMixtureModel
        With full covariances (what is stored, whatever the fitted type: the same densities).
    """
    first = components.iloc[0]
    d = len(first["features"])
    scaler = Scaler(mean=np.array(first["scaler_mean"], dtype=float),
                    scale=np.array(first["scaler_scale"], dtype=float),
                    feature_names=tuple(first["features"]))
    return mixture_from_parameters(
        components["weight"].to_numpy(dtype=float) / components["weight"].sum(),
        np.stack(components["mean"].map(np.asarray)),
        np.stack(components["covariance"].map(lambda flat: np.asarray(flat, dtype=float).reshape(d, d))),
        scaler=scaler)


def _with_track_ids(models: pd.DataFrame, track_ids: Sequence[str]) -> pa.Table:
    """``models`` as Arrow with the lineage column ``track_ids``: the list on the chosen model's
    row, NULL on the other k's (fitted on the same rows: a million ids once, not once per k),
    built from one Arrow array of the ids (a Python list per row costs seconds per million)."""
    ids = pa.array(list(track_ids), pa.string())
    chosen = models["chosen"].to_numpy(dtype=bool)
    offsets = pa.array(np.concatenate([[0], np.cumsum(np.where(chosen, len(ids), 0))]).astype(np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.concat_arrays([ids] * int(chosen.sum())) if chosen.any()
                                     else ids[:0], mask=pa.array(~chosen))
    return pa.Table.from_pandas(models, preserve_index=False).append_column("track_ids", lists)


def _key_columns(key: Mapping[str, object], n_rows: int) -> dict[str, pa.Array]:
    """The model's key (``run_id``, ``feature_set``, ``k``) as columns of ``n_rows`` rows."""
    return {name: pa.array([value] * n_rows) for name, value in key.items()}


def assignment_table(
    key: Mapping[str, object], track_ids: Sequence[str], probabilities: np.ndarray
) -> pa.Table:
    """``gmm_assignments`` rows of one model (cluster and its probability), built as Arrow.

    Parameters
    ----------
    key : mapping
        ``run_id``, ``feature_set`` and ``k``, the same on every row.
    track_ids : sequence of str, length n
    probabilities : ndarray of shape (n, k)
        Membership probabilities; row ``i`` belongs to ``track_ids[i]``.

    Returns
    -------
    table : pyarrow.Table
        One row per track.
    """
    n_tracks = len(probabilities)
    labels = probabilities.argmax(axis=1)
    return pa.table({
        **_key_columns(key, n_tracks),
        "track_id": pa.array(track_ids, pa.string()),
        "cluster": pa.array(labels.astype(np.int32)),
        "probability": pa.array(probabilities[np.arange(n_tracks), labels], pa.float64()),
    })


def membership_table(
    key: Mapping[str, object], track_ids: Sequence[str], probabilities: np.ndarray
) -> pa.Table:
    """``gmm_memberships`` rows of one model: every component's probability, as Arrow.

    Parameters are those of :func:`assignment_table`. ``probabilities`` becomes a list column
    over one flat buffer, with no Python object per row (the pandas route made one array per
    row and cost more than the database write).
    """
    probabilities = np.ascontiguousarray(probabilities, dtype=np.float64)
    n_tracks, n_components = probabilities.shape
    offsets = np.arange(0, n_tracks * n_components + 1, n_components, dtype=np.int64)
    return pa.table({
        **_key_columns(key, n_tracks),
        "track_id": pa.array(track_ids, pa.string()),
        "probabilities": pa.LargeListArray.from_arrays(offsets, probabilities.ravel()),
    })


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def agreement_rows(run_id: str, agreement) -> dict[str, pd.DataFrame]:
    """``comparison`` and ``contingency`` rows of one :class:`~songmix.tasks.compare.Agreement`."""
    key = {"run_id": run_id, "left_set": agreement.left_set, "right_set": agreement.right_set}
    uncertainty = agreement.uncertainty
    comparison = pd.DataFrame([
        key | {"left_k": agreement.left_k, "right_k": agreement.right_k, "metric": m.name,
               "value": _finite_or_none(m.value), "ci_low": _finite_or_none(m.ci_low),
               "ci_high": _finite_or_none(m.ci_high), "null_mean": _finite_or_none(m.null_mean),
               "null_upper": _finite_or_none(m.null_upper), "p_value": _finite_or_none(m.p_value),
               "n_tracks": uncertainty.n_tracks, "interval_method": uncertainty.interval_method,
               "n_resamples": uncertainty.n_bootstrap}
        for m in uncertainty.metrics
    ])
    matched = {(p.cluster_a, p.cluster_b) for p in agreement.clusters.matched_pairs}
    counts = agreement.clusters.contingency.stack()
    contingency = pd.DataFrame([
        key | {"left_cluster": int(left), "right_cluster": int(right), "n_tracks": int(n),
               "matched": (left, right) in matched}
        for (left, right), n in counts.items()
    ])
    return {"comparison": comparison, "contingency": contingency}


def feature_agreement_rows(run_id: str, measures) -> pd.DataFrame:
    """``feature_agreement`` rows: cv_r2 / best_r per Spotify feature, and direct measures."""
    rows = []
    for feature, row in measures.predicted.table.iterrows():
        rows.append({"spotify_feature": feature, "measure": "cv_r2", "aubio_feature": None,
                     "value": _finite_or_none(row["cv_r2"]), "n_tracks": int(row["n_tracks"])})
        rows.append({"spotify_feature": feature, "measure": "best_r",
                     "aubio_feature": row["best_aubio_feature"],
                     "value": _finite_or_none(row["best_pearson_r"]), "n_tracks": int(row["n_tracks"])})
    for measure, row in measures.direct.table.iterrows():
        rows.append({"spotify_feature": measure.split("_")[0], "measure": measure,
                     "aubio_feature": None, "value": _finite_or_none(row["value"]),
                     "n_tracks": int(row["n_tracks"])})
    return pd.DataFrame(rows).assign(run_id=run_id)


def accuracy_rows(run_id: str, accuracy: Mapping[str, float]) -> pd.DataFrame:
    """``extractor_accuracy`` rows from the extractor-accuracy measures."""
    n_tracks = int(accuracy["n_tracks"])
    return pd.DataFrame([
        {"run_id": run_id, "metric": metric, "value": float(value), "n_tracks": n_tracks}
        for metric, value in accuracy.items() if metric != "n_tracks"
    ])


def agreement_by_k_rows(run_id: str, across_k: pd.DataFrame) -> pd.DataFrame:
    """``agreement_by_k`` rows from :func:`~songmix.analysis.agreement.agreement_across_k`."""
    rows = across_k.assign(run_id=run_id)
    metric_columns = [c for c in rows.columns if c.split("_")[0] in ("ari", "nmi", "ami")]
    # NaN (no interval drawn) is stored as NULL, not as a number.
    rows[metric_columns] = rows[metric_columns].astype(float).where(rows[metric_columns].notna(), None)
    return rows


def cluster_pair_rows(run_id: str, agreement, profiles: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``cluster_pairs`` and ``cluster_profiles`` rows of one comparison.

    ``profiles`` is :func:`~songmix.analysis.compare.matched_cluster_profiles` of the
    comparison (sides named after its left and right sets).
    """
    key = {"run_id": run_id, "left_set": agreement.left_set, "right_set": agreement.right_set}
    names = {(row.side, row.cluster): row.cluster_name for row in profiles.itertuples(index=False)}
    pairs = pd.DataFrame([
        key | {"pair": number, "left_cluster": int(p.cluster_a), "right_cluster": int(p.cluster_b),
               "left_name": names[(agreement.left_set, p.cluster_a)],
               "right_name": names[(agreement.right_set, p.cluster_b)],
               "left_size": p.size_a, "right_size": p.size_b, "overlap": p.overlap,
               "precision": p.precision, "recall": p.recall, "jaccard": p.jaccard}
        for number, p in enumerate(agreement.clusters.matched_pairs, start=1)
    ])
    identity = ["pair", "side", "cluster", "n_tracks", "cluster_name"]
    long = profiles.melt(id_vars=identity, var_name="feature", value_name="mean")
    long["pair"] = long["pair"].astype("Int64")
    long["cluster"] = long["cluster"].astype(int)
    long["mean"] = long["mean"].astype(float)
    return {"cluster_pairs": pairs, "cluster_profiles": long.assign(**key)}
