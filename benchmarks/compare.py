"""Time the full comparison stage on synthetic data; optionally check interval coverage.

    python benchmarks/compare.py                  # 10 000 tracks, k = 8 vs 8, 1000 + 1000 draws
    python benchmarks/compare.py --coverage       # also: how often each interval covers the truth

Target (issue 8): the full comparison with 1000 resamples on 10 000 tracks in <= 30 s on 2 cores.
The data are synthetic (no audio, no EM): Spotify-shaped features, about 40 Aubio-shaped
features partly driven by them, and two k-cluster labellings that agree on half the tracks.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from songmix.analysis.agreement import (
    INTERVAL_METHODS,
    agreement_across_k,
    agreement_from_tables,
    agreement_with_uncertainty,
    contingency_table,
)
from songmix.analysis.compare import compare_clusterings, matched_cluster_profiles
from songmix.analysis.features import direct_agreement, feature_agreement
from songmix.analysis.labels import validate_label_pair
from songmix.em import fit_gmm
from songmix.flows.reporting import ACROSS_K_RESAMPLES
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES
from songmix.tasks.options import DEFAULT_KS


def synthetic_tracks(n_tracks: int, k: int, *, seed: int = 0):
    """Spotify features, Aubio features (about 40 columns) and two related labellings."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"track{i:06d}" for i in range(n_tracks)], name="track_id")
    labels_spotify = rng.integers(0, k, n_tracks)
    labels_aubio = np.where(rng.random(n_tracks) < 0.5, (labels_spotify + 1) % k, rng.integers(0, k, n_tracks))
    group_means = rng.random((k, len(SPOTIFY_CLUSTER_FEATURES)))
    spotify = pd.DataFrame(
        np.clip(group_means[labels_spotify] + rng.normal(0, 0.15, (n_tracks, len(SPOTIFY_CLUSTER_FEATURES))), 0, 1),
        columns=list(SPOTIFY_CLUSTER_FEATURES),
        index=ids,
    )
    spotify["loudness"] = -20 + 18 * spotify["loudness"]
    spotify["tempo"] = 60 + 120 * spotify["tempo"]
    spotify["key"] = rng.integers(-1, 12, n_tracks)
    spotify["mode"] = rng.integers(0, 2, n_tracks)
    mixing = rng.normal(0, 1, (len(SPOTIFY_CLUSTER_FEATURES), 34))
    aubio = pd.DataFrame(
        spotify[list(SPOTIFY_CLUSTER_FEATURES)].to_numpy() @ mixing + rng.normal(0, 1, (n_tracks, 34)),
        columns=[f"mfcc_{i}_{stat}" for stat in ("mean", "std") for i in range(1, 14)]
        + [f"spectral_{name}" for name in ("centroid_mean", "centroid_std", "rolloff_mean", "rolloff_std",
                                           "flatness_mean", "flatness_std", "flux_mean", "flux_std")],
        index=ids,
    )
    aubio["tempo"] = np.where(rng.random(n_tracks) < 0.6, spotify["tempo"] * rng.choice([1, 2, 0.5], n_tracks), 120)
    aubio["key"] = np.where(rng.random(n_tracks) < 0.5, spotify["key"].clip(0), rng.integers(0, 12, n_tracks))
    aubio["mode"] = rng.integers(0, 2, n_tracks)
    aubio["loudness"] = spotify["loudness"] + rng.normal(0, 2, n_tracks)
    aubio["onset_rate"] = 5 * spotify["energy"] + rng.normal(0, 1, n_tracks)
    return spotify, aubio, labels_spotify, labels_aubio


def timed(label: str, function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    elapsed = time.perf_counter() - start
    print(f"  {label:<58} {elapsed:7.2f} s")
    return result, elapsed


def time_full_comparison(n_tracks: int, k: int, n_resamples: int, n_permutations: int) -> None:
    spotify, aubio, labels_spotify, labels_aubio = synthetic_tracks(n_tracks, k)
    print(
        f"full comparison: {n_tracks} tracks, k = {k} vs {k}, {aubio.shape[1]} Aubio columns, "
        f"{n_resamples} resamples + {n_permutations} permutations, {os.cpu_count()} cores"
    )
    total = 0.0
    agreement, elapsed = timed(
        "agreement_with_uncertainty (half-sample interval)",
        agreement_with_uncertainty, labels_spotify, labels_aubio,
        n_bootstrap=n_resamples, n_permutations=n_permutations,
    )
    total += elapsed
    comparison, elapsed = timed("compare_clusterings", compare_clusterings, labels_spotify, labels_aubio)
    total += elapsed
    _, elapsed = timed(
        "matched_cluster_profiles", matched_cluster_profiles, comparison, labels_spotify, labels_aubio,
        spotify.reset_index(drop=True)[list(SPOTIFY_CLUSTER_FEATURES)],
    )
    total += elapsed
    features, elapsed = timed("feature_agreement (ridge, 5-fold CV)", feature_agreement, spotify, aubio)
    total += elapsed
    _, elapsed = timed("direct_agreement", direct_agreement, spotify, aubio)
    total += elapsed
    # The stage also compares at every k of the default range (three comparisons each, with the
    # stage's number of half-samples; the labellings here stand in for each k's fits) and fits
    # the notebook's k=2 reference model.
    by_k = {k_: labels_spotify % k_ for k_ in DEFAULT_KS}
    ks = f"{min(DEFAULT_KS)}..{max(DEFAULT_KS)}"
    _, elapsed = timed(
        f"agreement_across_k (k {ks}, 3 comparisons, {ACROSS_K_RESAMPLES} resamples)", agreement_across_k,
        by_k, {k_: labels_aubio % k_ for k_ in DEFAULT_KS}, ground_truth=labels_spotify,
        n_bootstrap=ACROSS_K_RESAMPLES,
    )
    total += elapsed
    matrix = spotify[["acousticness", "energy"]].to_numpy()
    _, elapsed = timed("notebook model: EM k=2 on acousticness, energy (10 seeds)", fit_gmm, matrix, 2,
                       n_init=10, random_state=0, standardize=True)
    total += elapsed
    print(f"  {'TOTAL (target <= 30 s)':<58} {total:7.2f} s")
    _, elapsed = timed(
        "for comparison: same agreement, percentile bootstrap",
        agreement_with_uncertainty, labels_spotify, labels_aubio,
        n_bootstrap=n_resamples, n_permutations=n_permutations, interval_method="bootstrap",
    )
    print(agreement.to_frame().round(4).to_string())
    print(f"energy cv R² = {features.table.loc['energy', 'cv_r2']:.3f}")


def interval_coverage(*, n_tracks: int, n_replicates: int, n_resamples: int, shares=(0.0, 0.1, 0.3, 0.6)) -> None:
    """How often each interval method covers the population value (nominal 95 %)."""
    print(
        f"\ninterval coverage: {n_replicates} data sets of {n_tracks} tracks, 5 x 4 clusters, "
        f"{n_resamples} resamples, nominal 95 %"
    )
    rng = np.random.default_rng(0)

    def draw(size: int, share: float):
        labels_a = rng.integers(0, 5, size)
        return labels_a, np.where(rng.random(size) < share, labels_a % 4, rng.integers(0, 4, size))

    rows = []
    for share in shares:
        truth = agreement_from_tables(contingency_table(validate_label_pair(*draw(2_000_000, share))))
        hits = {(method, metric): 0 for method in INTERVAL_METHODS for metric in truth}
        for replicate in range(n_replicates):
            labels_a, labels_b = draw(n_tracks, share)
            for method in INTERVAL_METHODS:
                result = agreement_with_uncertainty(
                    labels_a, labels_b, n_bootstrap=n_resamples, n_permutations=0,
                    interval_method=method, random_state=replicate,
                )
                for estimate in result.metrics:
                    hits[method, estimate.name] += estimate.ci_low <= truth[estimate.name] <= estimate.ci_high
        for (method, metric), count in hits.items():
            rows.append({"share agreeing": share, "metric": metric, "true value": float(truth[metric]),
                         "method": method, "coverage": count / n_replicates})
    table = pd.DataFrame(rows).pivot_table(
        index=["share agreeing", "metric", "true value"], columns="method", values="coverage"
    )
    print(table.round(3).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--coverage", action="store_true", help="also simulate interval coverage (about a minute)")
    parser.add_argument("--coverage-replicates", type=int, default=200)
    arguments = parser.parse_args()
    time_full_comparison(arguments.tracks, arguments.k, arguments.resamples, arguments.permutations)
    if arguments.coverage:
        interval_coverage(n_tracks=600, n_replicates=arguments.coverage_replicates, n_resamples=400)


if __name__ == "__main__":
    main()
