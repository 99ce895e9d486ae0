"""Every figure renders to a PNG, also on degenerate inputs."""

import numpy as np
import pandas as pd
import pytest

from songmix.analysis.agreement import agreement_across_k
from songmix.analysis.compare import compare_clusterings
from songmix.analysis.plots import (
    plot_agreement_vs_k,
    plot_cluster_scatter,
    plot_contingency_heatmap,
    plot_feature_agreement,
    plot_information_criteria,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(png: bytes) -> None:
    assert png.startswith(PNG_MAGIC)
    assert len(png) > 1000


def gaussian_clusters(k, n_per_cluster=30, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 3, (k, 3))
    covariances = np.stack([np.diag(rng.uniform(0.2, 1.0, 3)) for _ in range(k)])
    features = np.vstack([rng.multivariate_normal(m, c, n_per_cluster) for m, c in zip(means, covariances)])
    return features, np.repeat(np.arange(k), n_per_cluster), means, covariances


@pytest.mark.parametrize("k", [1, 3])
def test_scatter_with_ellipses_writes_and_returns_png(tmp_path, k):
    features, labels, means, covariances = gaussian_clusters(k)
    path = tmp_path / "scatter.png"
    png = plot_cluster_scatter(
        features, labels, means, covariances,
        feature_names=["acousticness", "energy", "tempo"], x_feature="acousticness", y_feature="energy", path=path,
    )
    assert_png(png)
    assert path.read_bytes() == png


def test_scatter_survives_a_singular_covariance_and_names():
    features, labels, means, covariances = gaussian_clusters(2)
    covariances[0] = 0.0
    png = plot_cluster_scatter(
        features, labels, means, covariances, feature_names=["a", "b", "c"], x_feature="b", y_feature="c",
        cluster_names=["quiet", "loud"],
    )
    assert_png(png)


def test_scatter_rejects_mismatched_inputs():
    features, labels, means, covariances = gaussian_clusters(2)
    with pytest.raises(ValueError, match="not one of feature_names"):
        plot_cluster_scatter(features, labels, means, covariances, feature_names=["a", "b", "c"], x_feature="a", y_feature="z")
    with pytest.raises(ValueError, match="covariances"):
        plot_cluster_scatter(features, labels, means, covariances[:, :2, :2], feature_names=["a", "b", "c"], x_feature="a", y_feature="b")
    with pytest.raises(ValueError, match="component indices"):
        plot_cluster_scatter(features, labels + 5, means, covariances, feature_names=["a", "b", "c"], x_feature="a", y_feature="b")


@pytest.mark.parametrize("labels_b", [np.arange(40) % 3, np.zeros(40, dtype=int)])
def test_contingency_heatmap(labels_b):
    comparison = compare_clusterings(np.arange(40) % 4, labels_b, name_a="spotify", name_b="aubio")
    assert_png(plot_contingency_heatmap(comparison.matched_contingency))


def test_information_criteria_curves_with_and_without_a_choice():
    fits = pd.DataFrame(
        [
            {"feature_set": side, "k": k, "seed": seed, "bic": 100 + (k - 3) ** 2 + seed, "aic": 90 + (k - 4) ** 2}
            for side in ("spotify", "aubio") for k in range(1, 6) for seed in range(2)
        ]
    )
    assert_png(plot_information_criteria(fits, chosen_k={"spotify": 2}))
    assert_png(plot_information_criteria(fits[fits["k"] == 1]))
    with pytest.raises(ValueError, match="bic"):
        plot_information_criteria(fits.drop(columns="bic"))


def test_information_criteria_per_covariance_type_star_the_chosen_pair():
    selection = pd.DataFrame(
        [{"feature_set": side, "covariance_type": covariance_type, "k": k, "bic": 100 + (k - 3) ** 2 + offset,
          "aic": 90.0, "chosen": (covariance_type, k) == ("diag", 3)}
         for side in ("spotify", "aubio") for offset, covariance_type in enumerate(("diag", "full"))
         for k in range(2, 6)])
    assert_png(plot_information_criteria(selection))
    assert_png(plot_information_criteria(selection.assign(chosen=False)))


def test_feature_agreement_bars_with_missing_values():
    table = pd.DataFrame(
        {"cv_r2": [0.8, -0.05, np.nan], "best_aubio_feature": ["onset_rate", "mfcc_2_mean", None], "best_pearson_r": [0.7, -0.1, np.nan]},
        index=pd.Index(["energy", "valence", "liveness"], name="spotify_feature"),
    )
    assert_png(plot_feature_agreement(table))


def test_agreement_vs_k_with_bands_and_with_a_single_k():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 90)
    labels_by_k = {k: truth % k for k in (1, 2, 3)}
    noisy_by_k = {k: np.where(rng.random(90) < 0.5, truth % k, rng.integers(0, k, 90)) for k in (1, 2, 3)}
    across_k = agreement_across_k(labels_by_k, noisy_by_k, ground_truth=truth, n_bootstrap=30)
    assert_png(plot_agreement_vs_k(across_k, metrics=("ari", "nmi", "ami")))
    assert_png(plot_agreement_vs_k(across_k[across_k["k"] == 1]))
    with pytest.raises(ValueError, match="at least one"):
        plot_agreement_vs_k(across_k, metrics=())
