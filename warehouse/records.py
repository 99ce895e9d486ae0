"""From pipeline results to warehouse rows: one function per stage, DataFrames out.

These functions decide how results are laid out in tables (the schema's business) and
touch no database; :class:`~songmix.warehouse.store.Warehouse` writes what they return.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from songmix.sources.schema import SPOTIFY_FEATURE_COLUMNS


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


def track_rows(run_id: str, tracks: Sequence[Mapping]) -> dict[str, pd.DataFrame]:
    """``tracks`` and ``run_tracks`` rows from parsed track dicts, in search order."""
    columns = ["track_id", "name", "artists", "album", "release_date", "year", "duration_ms",
               "isrc", "preview_url"]
    staged = pd.DataFrame([{c: t.get(c) for c in columns} for t in tracks], columns=columns)
    staged["run_id"] = run_id
    membership = pd.DataFrame(
        {"run_id": run_id, "track_id": staged["track_id"], "position": np.arange(len(staged))}
    )
    return {"tracks": staged, "run_tracks": membership}


def truth_rows(run_id: str, truth: pd.DataFrame) -> pd.DataFrame:
    """``demo_truth`` rows from a truth frame indexed by track_id."""
    rows = truth.reset_index()[["track_id", "group_id", "group_name", "tempo", "key", "mode"]]
    return rows.assign(run_id=run_id)


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


def mixture_rows(run_id: str, fits, features: np.ndarray, track_ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    """``gmm_fits``, ``gmm_models``, ``gmm_components``, ``gmm_assignments`` and
    ``seed_stability`` rows for every k of one feature set's :class:`MixtureFits`."""
    sha = data_sha256(features, track_ids)
    standardized = fits.scaler.transform(features)
    n = len(track_ids)
    fit_rows, model_rows, component_rows, assignment_rows, stability_rows = [], [], [], [], []
    for k, model in sorted(fits.models.items()):
        key = {"run_id": run_id, "feature_set": fits.feature_set, "k": k}
        for seed in model.seeds:
            fit_rows.append(key | {
                "seed": seed.seed, "covariance_type": model.covariance_type,
                "log_likelihood": _finite_or_none(seed.log_likelihood),
                "bic": _finite_or_none(seed.bic(standardized)) if seed.failed_reason is None else None,
                "aic": _finite_or_none(seed.aic(standardized)) if seed.failed_reason is None else None,
                "n_iter": seed.n_iter, "converged": seed.converged,
                "is_best": seed.seed == model.best_seed, "failed_reason": seed.failed_reason,
                "n_samples": n, "data_sha256": sha,
            })
        model_rows.append(key | {
            "covariance_type": model.covariance_type, "chosen": k == fits.chosen_k,
            "features": list(fits.scaler.feature_names),
            "scaler_mean": fits.scaler.mean.tolist(), "scaler_scale": fits.scaler.scale.tolist(),
            "log_likelihood": model.log_likelihood, "bic": model.bic(standardized),
            "aic": model.aic(standardized), "n_samples": n, "track_ids": list(track_ids),
        })
        means_original = fits.scaler.inverse_transform(model.means)
        full_covariances = model.full_covariances()
        for component in range(k):
            component_rows.append(key | {
                "component": component, "weight": float(model.weights[component]),
                "mean": model.means[component].tolist(),
                "mean_original": means_original[component].tolist(),
                "covariance": full_covariances[component].ravel().tolist(),
            })
        probabilities = fits.probabilities[k]
        labels = probabilities.argmax(axis=1)
        assignment_rows.append(pd.DataFrame({
            **key, "track_id": list(track_ids), "cluster": labels,
            "probability": probabilities[np.arange(n), labels],
            "probabilities": list(probabilities),
        }))
        for seed, ari in zip(model.seeds, fits.stability[k]):
            if np.isfinite(ari):
                stability_rows.append(key | {"seed": seed.seed, "ari_with_best": float(ari)})
    return {
        "gmm_fits": pd.DataFrame(fit_rows),
        "gmm_models": pd.DataFrame(model_rows),
        "gmm_components": pd.DataFrame(component_rows),
        "gmm_assignments": pd.concat(assignment_rows, ignore_index=True),
        "seed_stability": pd.DataFrame(stability_rows),
    }


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
