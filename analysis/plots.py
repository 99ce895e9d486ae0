"""Figures for the comparison report, rendered off-screen to PNG.

Every function builds a :class:`matplotlib.figure.Figure` directly (never pyplot, so no GUI
backend, no global figure state, safe in worker threads), renders it with Agg, optionally
writes the PNG to ``path`` and returns the PNG bytes. Every ``plot_*`` takes keywords
``title`` (the figure's, with a default) and ``path`` (str or Path, optional) beside the
parameters its docstring lists. Inputs are the tables the analysis
functions return; degenerate inputs (one cluster, one k, NaN scores) still give a figure.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Rectangle

# Ellipses enclose this many standard deviations along each principal axis.
ELLIPSE_SIGMAS = 2.0
_DPI = 110
_COLOURS = [f"C{i}" for i in range(10)]


def _render(figure: Figure, path: str | Path | None) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    png = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(png)
    return png


def _colour(index: int) -> str:
    return _COLOURS[index % len(_COLOURS)]


# ---------------------------------------------------------------------- scatter + ellipses


def _component_ellipse(mean_2d: np.ndarray, covariance_2d: np.ndarray, *, colour: str) -> Ellipse:
    """Ellipse of ``ELLIPSE_SIGMAS`` standard deviations of a 2-D Gaussian."""
    variances, axes = np.linalg.eigh(covariance_2d)
    # eigh sorts ascending: the last axis is the long one. Clip rounding below zero.
    half_lengths = ELLIPSE_SIGMAS * np.sqrt(np.clip(variances, 0.0, None))
    angle = np.degrees(np.arctan2(axes[1, -1], axes[0, -1]))
    return Ellipse(
        xy=mean_2d,
        width=2 * half_lengths[-1],
        height=2 * half_lengths[0],
        angle=angle,
        fill=False,
        edgecolor=colour,
        linewidth=2,
    )


def plot_cluster_scatter(
    features: np.ndarray,
    labels,
    means: np.ndarray,
    covariances: np.ndarray,
    *,
    feature_names: Sequence[str],
    x_feature: str,
    y_feature: str,
    cluster_names: Sequence[str] | None = None,
    title: str = "Clusters",
    path: str | Path | None = None,
) -> bytes:
    """Scatter of two features coloured by cluster, with each component's 2-sigma ellipse.

    Parameters
    ----------
    features : ndarray of shape (n_tracks, n_features)
        Track features in original units.
    labels : array-like of int, shape (n_tracks,)
        Component index ``0 .. k-1`` of each track.
    means : ndarray of shape (k, n_features)
        Component means in original units.
    covariances : ndarray of shape (k, n_features, n_features)
        Component covariances in original units; only the two plotted dimensions are used.
    feature_names : sequence of str, length n_features
    x_feature, y_feature : str
        Names of the two features to plot.
    cluster_names : sequence of str, optional
        Legend text per component (default "cluster j").
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    feature_names = list(feature_names)
    if features.ndim != 2 or features.shape[1] != len(feature_names):
        raise ValueError(
            f"features must be (n_tracks, {len(feature_names)}) to match feature_names, got {features.shape}"
        )
    n_components = means.shape[0] if means.ndim == 2 else -1
    if means.shape != (n_components, len(feature_names)) or covariances.shape != (
        n_components,
        len(feature_names),
        len(feature_names),
    ):
        raise ValueError(
            f"means must be (k, d) and covariances (k, d, d) with d = {len(feature_names)}; got "
            f"{means.shape} and {covariances.shape}. Pass full covariances in original units."
        )
    if labels.shape != (features.shape[0],):
        raise ValueError(f"labels must have one entry per track ({features.shape[0]}), got shape {labels.shape}")
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= n_components):
        raise ValueError(f"labels must be component indices 0..{n_components - 1} (argmax of the probabilities)")
    for name in (x_feature, y_feature):
        if name not in feature_names:
            raise ValueError(f"{name!r} is not one of feature_names {feature_names}")
    if cluster_names is not None and len(cluster_names) != n_components:
        raise ValueError(f"cluster_names needs {n_components} entries, got {len(cluster_names)}")
    dims = [feature_names.index(x_feature), feature_names.index(y_feature)]

    figure = Figure(figsize=(7.5, 6), layout="constrained")
    axes = figure.subplots()
    for component in range(n_components):
        colour = _colour(component)
        legend = cluster_names[component] if cluster_names is not None else f"cluster {component}"
        members = features[labels == component][:, dims]
        axes.scatter(members[:, 0], members[:, 1], s=12, alpha=0.5, color=colour, label=f"{legend} ({len(members)})")
        axes.add_patch(_component_ellipse(means[component, dims], covariances[component][np.ix_(dims, dims)], colour=colour))
        axes.plot(*means[component, dims], marker="+", markersize=14, markeredgewidth=2.5, color="black")
    axes.autoscale_view()
    axes.set_xlabel(x_feature)
    axes.set_ylabel(y_feature)
    axes.set_title(f"{title}\n(ellipses: {ELLIPSE_SIGMAS:g}-sigma contours of each component, + = mean)")
    axes.legend(loc="best", fontsize="small", title="cluster (tracks)")
    return _render(figure, path)


# ------------------------------------------------------------------------- contingency


def plot_contingency_heatmap(
    contingency: pd.DataFrame, *, title: str = "Tracks per pair of clusters", path: str | Path | None = None
) -> bytes:
    """Annotated heatmap of a contingency table whose matched pairs lie on the diagonal.

    Parameters
    ----------
    contingency : DataFrame of shape (k_a, k_b)
        Track counts, e.g. ``ClusteringComparison.matched_contingency``. Index and column
        names become the axis labels; diagonal cells are outlined as matched pairs.
    """
    if not isinstance(contingency, pd.DataFrame) or contingency.size == 0:
        raise ValueError("contingency must be a non-empty DataFrame of counts (ClusteringComparison.matched_contingency)")
    counts = contingency.to_numpy(dtype=np.float64)
    n_rows, n_cols = counts.shape
    # Grow with the table, but never so narrow that the two-line title is cut.
    figure = Figure(figsize=(max(6.0, 2.7 + 0.75 * n_cols), 2.5 + 0.6 * n_rows), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues", aspect="auto", vmin=0, vmax=max(counts.max(), 1.0))
    figure.colorbar(image, ax=axes, label="tracks")
    threshold = counts.max() / 2
    for row in range(n_rows):
        for col in range(n_cols):
            axes.text(
                col, row, f"{int(counts[row, col])}", ha="center", va="center",
                color="white" if counts[row, col] > threshold else "black", fontsize="small",
            )
    for index in range(min(n_rows, n_cols)):
        axes.add_patch(Rectangle((index - 0.5, index - 0.5), 1, 1, fill=False, edgecolor="darkorange", linewidth=2))
    axes.set_xticks(range(n_cols), [str(c) for c in contingency.columns])
    axes.set_yticks(range(n_rows), [str(r) for r in contingency.index])
    axes.set_xlabel(f"{contingency.columns.name or 'b'} cluster")
    axes.set_ylabel(f"{contingency.index.name or 'a'} cluster")
    axes.set_title(f"{title}\n(outlined: clusters matched by the Hungarian method)")
    return _render(figure, path)


# ------------------------------------------------------------------------- BIC / AIC


def plot_information_criteria(
    fits: pd.DataFrame,
    *,
    chosen_k: Mapping[str, int] | None = None,
    title: str = "Model selection",
    path: str | Path | None = None,
) -> bytes:
    """BIC against k, one panel per feature set, the chosen model marked.

    With a ``covariance_type`` column (the ``model_selection`` table), one BIC line per
    covariance type, as mclust plots them, and the row marked ``chosen`` starred; without
    one (``gmm_fits`` of runs that fitted one type), BIC and AIC lines.

    Parameters
    ----------
    fits : DataFrame
        Columns ``feature_set``, ``k``, ``bic``, ``aic`` (and optionally ``covariance_type``,
        ``chosen``); several rows per line and k (one per seed) are reduced to the lowest.
    chosen_k : dict of str to int, optional
        Chosen k per feature set; default the k of lowest BIC.
    """
    required = {"feature_set", "k", "bic", "aic"}
    if not isinstance(fits, pd.DataFrame) or not required <= set(fits.columns) or fits.empty:
        raise ValueError(f"fits must be a non-empty DataFrame with columns {sorted(required)} (the "
                         "model_selection or gmm_fits table)")
    by_type = "covariance_type" in fits.columns
    lines = ["feature_set", "covariance_type"] if by_type else ["feature_set"]
    best = fits.groupby([*lines, "k"], sort=True)[["bic", "aic"]].min().reset_index()
    feature_sets = list(dict.fromkeys(fits["feature_set"]))
    figure = Figure(figsize=(5.5 * len(feature_sets), 4.5), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(feature_sets)))
    for axes, feature_set in zip(panels, feature_sets):
        curve = best[best["feature_set"] == feature_set]
        if by_type:
            for (covariance_type,), line in curve.groupby(["covariance_type"], sort=False):
                axes.plot(line["k"], line["bic"], marker="o", label=f"BIC, {covariance_type}")
            chosen = fits[(fits["feature_set"] == feature_set) & fits.get("chosen", False)]
        else:
            axes.plot(curve["k"], curve["bic"], marker="o", label="BIC")
            axes.plot(curve["k"], curve["aic"], marker="s", linestyle="--", label="AIC")
            k = (chosen_k or {}).get(feature_set, int(curve.loc[curve["bic"].idxmin(), "k"]))
            chosen = curve[curve["k"] == k]
        if not chosen.empty:
            k = int(chosen["k"].iloc[0])
            which = f"{chosen['covariance_type'].iloc[0]}, " if by_type else ""
            axes.plot(k, chosen["bic"].min(), marker="*", markersize=18, color="crimson", linestyle="none",
                      label=f"chosen: {which}k = {k}")
        axes.set_xticks(sorted(curve["k"].unique()))
        axes.set_xlabel("k (components)")
        axes.set_ylabel("criterion (lower is better)")
        axes.set_title(feature_set)
        axes.legend(fontsize="small")
    figure.suptitle(title)
    return _render(figure, path)


# ----------------------------------------------------------------------- feature agreement


def plot_feature_agreement(
    table: pd.DataFrame,
    *,
    title: str = "How well Aubio features predict each Spotify feature",
    path: str | Path | None = None,
) -> bytes:
    """Bars of cross-validated R² per Spotify feature, annotated with the best single feature.

    Parameters
    ----------
    table : DataFrame
        ``FeatureAgreement.table``: index = Spotify feature; columns ``cv_r2``,
        ``best_aubio_feature``, ``best_pearson_r``.
    """
    required = {"cv_r2", "best_aubio_feature", "best_pearson_r"}
    if not isinstance(table, pd.DataFrame) or not required <= set(table.columns) or table.empty:
        raise ValueError(f"table must be FeatureAgreement.table with columns {sorted(required)}")
    r2 = table["cv_r2"].to_numpy(dtype=np.float64)
    positions = np.arange(len(table))
    figure = Figure(figsize=(8.5, 1.2 + 0.45 * len(table)), layout="constrained")
    axes = figure.subplots()
    axes.barh(positions, np.nan_to_num(r2), color=["C0" if v >= 0 else "C3" for v in np.nan_to_num(r2)])
    for position, value, feature, r in zip(positions, r2, table["best_aubio_feature"], table["best_pearson_r"]):
        text = "n/a" if np.isnan(value) else f"R² {value:.2f}"
        if feature is not None and np.isfinite(r):
            text += f"; best single: {feature} (r = {r:+.2f})"
        axes.text(max(np.nan_to_num(value), 0.0) + 0.02, position, text, va="center", fontsize="small")
    axes.set_yticks(positions, [str(name) for name in table.index])
    axes.invert_yaxis()
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.set_xlim(min(-0.1, np.nanmin(r2, initial=0.0) - 0.05), 1.6)
    axes.set_xlabel("cross-validated R² (ridge regression on all Aubio features)")
    axes.set_title(title)
    return _render(figure, path)


# -------------------------------------------------------------------------- agreement vs k


def plot_agreement_vs_k(
    across_k: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("ari", "nmi"),
    title: str = "Agreement as a function of k",
    path: str | Path | None = None,
) -> bytes:
    """Agreement against k: one panel per metric, one line per comparison, interval bands.

    Parameters
    ----------
    across_k : DataFrame
        From :func:`songmix.analysis.agreement.agreement_across_k`: columns ``comparison``,
        ``k`` and each metric, optionally ``<metric>_ci_low`` / ``<metric>_ci_high``
        (bands drawn where finite).
    metrics : sequence of str, default ("ari", "nmi")
    """
    required = {"comparison", "k", *metrics}
    if not metrics:
        raise ValueError("metrics must name at least one of the columns ari, nmi, ami")
    if not isinstance(across_k, pd.DataFrame) or not required <= set(across_k.columns) or across_k.empty:
        raise ValueError(f"across_k must be agreement_across_k's DataFrame with columns {sorted(required)}")
    ordered = across_k.sort_values("k")
    has_bands = False
    figure = Figure(figsize=(5 * len(metrics), 4.5), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(metrics), sharey=True))
    for axes, metric in zip(panels, metrics):
        for index, (comparison, rows) in enumerate(ordered.groupby("comparison", sort=False)):
            colour = _colour(index)
            axes.plot(rows["k"], rows[metric], marker="o", color=colour, label=comparison)
            low, high = (rows.get(f"{metric}_ci_{end}") for end in ("low", "high"))
            if low is not None and high is not None and np.isfinite(low.to_numpy(dtype=float)).any():
                axes.fill_between(rows["k"], low.astype(float), high.astype(float), color=colour, alpha=0.2)
                has_bands = True
        axes.axhline(0.0, color="grey", linewidth=0.8)
        axes.set_xticks(sorted(across_k["k"].unique()))
        axes.set_xlabel("k (components on each side)")
        axes.set_title(metric.upper())
        axes.legend(fontsize="small")
    panels[0].set_ylabel("agreement (1 = identical clusterings)")
    figure.suptitle(title + ("\n(bands: resampling intervals)" if has_bands else ""))
    return _render(figure, path)
