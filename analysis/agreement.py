"""Agreement between two clusterings of the same tracks, with uncertainty.

Conventions: both clusterings are 1-D arrays of hard labels in the same track order (see
:mod:`songmix.analysis.labels`). Metrics are scikit-learn's: ARI, NMI with the arithmetic
mean of the entropies (natural log), and AMI with the same normaliser. They are computed from
contingency tables rather than label vectors, so thousands of resamples and
permutations cost one ``bincount`` / ``multinomial`` draw each; the expected mutual
information that AMI needs is scikit-learn's own routine. Every fast metric is checked
against ``sklearn.metrics`` in the tests.

Uncertainty:

- interval, by resampling tracks (``n_bootstrap`` resamples). A resample's contingency table
  is drawn directly over the observed (cluster a, cluster b) pair counts, which is exactly the
  table of a resampled label vector. Two schemes:

  ``"half-sample"`` (default): half of the tracks drawn *without* replacement (multivariate
  hypergeometric), interval ``value + quantiles(resampled - median(resampled))``. A
  half-sample statistic has the full-sample variance (finite-population correction
  ``1/m - 1/n = 1/n`` at ``m = n/2``) and no duplicated tracks.

  ``"bootstrap"``: the textbook percentile bootstrap, tracks drawn *with* replacement
  (multinomial). Duplicated tracks always share a cluster on both sides, which inflates
  every resample's agreement by about one chance unit. In ``benchmarks/compare.py
  --coverage`` (600 tracks, 5 x 4 clusters, 200 data sets) its 95 % interval covered the true
  ARI/AMI 79-81 % of the time at chance level and 90 % at ARI 0.01, against 97-100 % for
  half-sampling; at ARI 0.07-0.3 both covered 92-97 %. NMI is worse under the bootstrap (0-89 %)
  and 73-95 % under half-sampling.

  Either interval is then intersected with the metric's range (:data:`METRIC_RANGES`): the
  true value lies in that range, so the part of an interval outside it can never cover it,
  and cutting it off keeps the coverage measured above. Without it the centred interval
  of a near-perfect agreement reaches past 1 (ARI 0.997-1.002).

- permutation null: labels b shuffled against labels a (independence with both cluster
  sizes kept). p-value ``(1 + #{null >= observed}) / (1 + n_permutations)``. NMI is not
  corrected for chance, so judge it against its null rather than against 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from sklearn.metrics.cluster import expected_mutual_information

from songmix.analysis.labels import LabelPair, label_pair_notes, validate_label_pair
from songmix.em import adjusted_rand_from_tables

METRIC_NAMES: tuple[str, ...] = ("ari", "nmi", "ami")

#: Values each metric can take (AMI has no finite lower bound).
METRIC_RANGES: dict[str, tuple[float, float]] = {"ari": (-1.0, 1.0), "nmi": (0.0, 1.0), "ami": (-np.inf, 1.0)}

# Permutation values equal to the observed one must count as "at least as extreme"; a few
# ulps of rounding between two routes to the same table must not decide that.
_TIE_TOLERANCE = 1e-12

# Cap on one chunk of shuffled label vectors (elements), to bound memory for large n.
_PERMUTATION_CHUNK_ELEMENTS = 2_000_000


# ----------------------------------------------------------------------------- tables


def contingency_table(pair: LabelPair) -> np.ndarray:
    """Count tracks per (cluster a, cluster b).

    Parameters
    ----------
    pair : LabelPair

    Returns
    -------
    ndarray of shape (n_clusters_a, n_clusters_b), dtype int64
    """
    n_cells = pair.n_clusters_a * pair.n_clusters_b
    pair_codes = pair.codes_a * pair.n_clusters_b + pair.codes_b
    counts = np.bincount(pair_codes, minlength=n_cells)
    return counts.reshape(pair.n_clusters_a, pair.n_clusters_b)


def bootstrap_tables(
    table: np.ndarray, *, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Contingency tables of track resamples drawn with replacement.

    Parameters
    ----------
    table : ndarray of shape (n_clusters_a, n_clusters_b)
        Observed contingency table.
    n_resamples : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n_resamples, n_clusters_a, n_clusters_b), dtype int64
    """
    cell_counts = table.ravel()
    n_tracks = int(cell_counts.sum())
    draws = rng.multinomial(n_tracks, cell_counts / n_tracks, size=n_resamples)
    return draws.reshape(n_resamples, *table.shape)


def half_sample_tables(
    table: np.ndarray, *, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Contingency tables of half the tracks drawn without replacement: as
    :func:`bootstrap_tables` (same arguments and shape), each table summing to
    ``n_tracks // 2``."""
    cell_counts = table.ravel()
    draws = rng.multivariate_hypergeometric(cell_counts, int(cell_counts.sum()) // 2, size=n_resamples)
    return draws.reshape(n_resamples, *table.shape)


def permutation_tables(
    pair: LabelPair, *, n_permutations: int, rng: np.random.Generator
) -> np.ndarray:
    """Contingency tables with labels b shuffled against labels a.

    Parameters
    ----------
    pair : LabelPair
    n_permutations : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n_permutations, n_clusters_a, n_clusters_b), dtype int64
    """
    n_cells = pair.n_clusters_a * pair.n_clusters_b
    rows_per_chunk = max(1, _PERMUTATION_CHUNK_ELEMENTS // pair.n_tracks)
    base_codes = pair.codes_a * pair.n_clusters_b
    chunks = []
    for start in range(0, n_permutations, rows_per_chunk):
        n_rows = min(rows_per_chunk, n_permutations - start)
        shuffled_b = rng.permuted(np.broadcast_to(pair.codes_b, (n_rows, pair.n_tracks)), axis=1)
        # Offset each permutation's pair codes into its own block so one bincount serves all.
        row_offsets = (np.arange(n_rows) * n_cells)[:, None]
        counts = np.bincount((base_codes + shuffled_b + row_offsets).ravel(), minlength=n_rows * n_cells)
        chunks.append(counts.reshape(n_rows, pair.n_clusters_a, pair.n_clusters_b))
    if not chunks:
        return np.zeros((0, pair.n_clusters_a, pair.n_clusters_b), dtype=np.int64)
    return np.concatenate(chunks)


# ---------------------------------------------------------------------- metrics from tables


def _entropy(marginals: np.ndarray, n_tracks: np.ndarray) -> np.ndarray:
    """Entropy (nats) of cluster sizes along the last axis; empty clusters contribute 0."""
    sizes = marginals.astype(np.float64)
    log_ratio = np.log(np.maximum(sizes, 1.0)) - np.log(n_tracks)[..., None]
    return -(sizes / n_tracks[..., None] * log_ratio).sum(axis=-1)


def _mutual_information(
    tables: np.ndarray, rows: np.ndarray, cols: np.ndarray, n_tracks: np.ndarray
) -> np.ndarray:
    """Mutual information (nats) of each table, clipped at 0 like scikit-learn."""
    cells = tables.astype(np.float64)
    # Empty cells (and their possibly empty margins) give 0 * finite = 0 through the max(., 1).
    log_terms = (
        np.log(np.maximum(cells, 1.0))
        + np.log(n_tracks)[..., None, None]
        - np.log(np.maximum(rows, 1.0))[..., :, None]
        - np.log(np.maximum(cols, 1.0))[..., None, :]
    )
    mutual_info = (cells / n_tracks[..., None, None] * log_terms).sum(axis=(-2, -1))
    return np.clip(mutual_info, 0.0, None)


def _expected_mutual_information(table: np.ndarray, cache: dict) -> float:
    """scikit-learn's EMI of one table with its empty rows and columns dropped, memoised.

    The EMI depends on the cluster sizes only, so the cache key is the pair of margins:
    under the permutation null every table shares them and the EMI is computed once.
    """
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    key = (rows[rows > 0].tobytes(), cols[cols > 0].tobytes())
    if key not in cache:
        nonempty = table[np.ix_(rows > 0, cols > 0)]
        cache[key] = float(expected_mutual_information(nonempty, int(rows.sum())))
    return cache[key]


def agreement_from_tables(tables: np.ndarray) -> dict[str, np.ndarray]:
    """ARI, NMI and AMI of one or many contingency tables, as scikit-learn defines them.

    Parameters
    ----------
    tables : array-like of int, shape (..., n_clusters_a, n_clusters_b)
        Contingency tables (rows: clusters of a, columns: clusters of b). Empty rows or
        columns are allowed (a resample may miss a cluster) and ignored.

    Returns
    -------
    dict
        ``{"ari": ..., "nmi": ..., "ami": ...}``, each an ndarray of shape ``(...)``.
    """
    tables = np.asarray(tables, dtype=np.int64)
    rows = tables.sum(axis=-1)
    cols = tables.sum(axis=-2)
    n_tracks = tables.sum(axis=(-2, -1))
    n_clusters_a = (rows > 0).sum(axis=-1)
    n_clusters_b = (cols > 0).sum(axis=-1)
    both_single = (n_clusters_a == 1) & (n_clusters_b == 1)
    any_single = (n_clusters_a == 1) | (n_clusters_b == 1)

    mutual_info = _mutual_information(tables, rows, cols, n_tracks)
    mean_entropy = (_entropy(rows, n_tracks) + _entropy(cols, n_tracks)) / 2.0
    safe_entropy = np.where(any_single, 1.0, mean_entropy)
    nmi = np.where(mutual_info == 0.0, 0.0, mutual_info / safe_entropy)
    nmi = np.where(both_single, 1.0, np.where(any_single, 0.0, nmi))

    cache: dict = {}
    flat_tables = tables.reshape(-1, *tables.shape[-2:])
    emi = np.array(
        [
            0.0 if single else _expected_mutual_information(table, cache)
            for table, single in zip(flat_tables, any_single.reshape(-1))
        ]
    ).reshape(n_tracks.shape)
    # scikit-learn keeps the sign of near-zero numerator and denominator but bounds them
    # away from 0 by machine epsilon; do the same so values agree to rounding.
    eps = np.finfo(np.float64).eps
    denominator = mean_entropy - emi
    denominator = np.where(denominator < 0, np.minimum(denominator, -eps), np.maximum(denominator, eps))
    numerator = mutual_info - emi
    numerator = np.where(numerator < 0, np.minimum(numerator, -eps), np.maximum(numerator, eps))
    ami = np.where(both_single, 1.0, np.where(any_single, 0.0, numerator / denominator))

    return {"ari": adjusted_rand_from_tables(tables), "nmi": nmi, "ami": ami}


# --------------------------------------------------------------------------- uncertainty


@dataclass(frozen=True)
class MetricEstimate:
    """One agreement metric with its bootstrap interval and permutation null.

    Attributes
    ----------
    name : str
        ``"ari"``, ``"nmi"`` or ``"ami"``.
    value : float
        The metric on the observed tracks.
    ci_low, ci_high : float
        Interval at the result's ``confidence`` (see the module docstring for the two
        resampling schemes); NaN when no resamples were drawn.
    null_mean, null_upper : float
        Mean and ``confidence`` quantile of the metric under shuffled labels; NaN when no
        permutations were drawn.
    p_value : float
        ``(1 + #{null >= value}) / (1 + n_permutations)``; NaN without permutations.
    """

    name: str
    value: float
    ci_low: float
    ci_high: float
    null_mean: float
    null_upper: float
    p_value: float


@dataclass(frozen=True)
class AgreementWithUncertainty:
    """ARI, NMI and AMI of two clusterings, each with interval and null.

    Attributes
    ----------
    ari, nmi, ami : MetricEstimate
    n_tracks, n_clusters_a, n_clusters_b : int
    n_bootstrap, n_permutations : int
    interval_method : str
        ``"half-sample"`` or ``"bootstrap"``.
    confidence : float
    degenerate : bool
        True when a side has a single cluster (metrics are then conventions, not evidence).
    notes : tuple of str
        Plain-language caveats for the report; empty when none.
    """

    ari: MetricEstimate
    nmi: MetricEstimate
    ami: MetricEstimate
    n_tracks: int
    n_clusters_a: int
    n_clusters_b: int
    n_bootstrap: int
    n_permutations: int
    interval_method: str
    confidence: float
    degenerate: bool
    notes: tuple[str, ...]

    @property
    def metrics(self) -> tuple[MetricEstimate, ...]:
        return (self.ari, self.nmi, self.ami)

    def to_frame(self) -> pd.DataFrame:
        """One row per metric (index ``metric``), one column per estimate field."""
        columns = [f.name for f in fields(MetricEstimate) if f.name != "name"]
        return pd.DataFrame(
            [[getattr(m, c) for c in columns] for m in self.metrics],
            index=pd.Index([m.name for m in self.metrics], name="metric"),
            columns=columns,
        )


def _check_count(value: int, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (0 skips it), got {value!r}")
    return int(value)


def _percentile_interval(observed: float, resampled: np.ndarray, *, confidence: float) -> np.ndarray:
    return np.quantile(resampled, [(1 - confidence) / 2, (1 + confidence) / 2])


def _centred_interval(observed: float, resampled: np.ndarray, *, confidence: float) -> np.ndarray:
    # Half-samples are centred on the half-size estimator, whose small-sample bias differs
    # from the full sample's (NMI's doubles): keep only their spread, around the observed value.
    return observed + _percentile_interval(observed, resampled - np.median(resampled), confidence=confidence)


# Resampling scheme -> (draw tables, turn resampled values into an interval).
INTERVAL_METHODS = {
    "half-sample": (half_sample_tables, _centred_interval),
    "bootstrap": (bootstrap_tables, _percentile_interval),
}


def _summarise(
    name: str,
    observed: float,
    resampled: np.ndarray,
    null: np.ndarray,
    *,
    interval_method: str,
    confidence: float,
) -> MetricEstimate:
    if resampled.size:
        interval = INTERVAL_METHODS[interval_method][1]
        ci_low, ci_high = np.clip(interval(float(observed), resampled, confidence=confidence),
                                  *METRIC_RANGES[name])
    else:
        ci_low = ci_high = np.nan
    if null.size:
        null_mean = float(null.mean())
        null_upper = float(np.quantile(null, confidence))
        p_value = (1 + int(np.sum(null >= observed - _TIE_TOLERANCE))) / (1 + null.size)
    else:
        null_mean = null_upper = p_value = np.nan
    return MetricEstimate(
        name=name,
        value=float(observed),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        null_mean=null_mean,
        null_upper=null_upper,
        p_value=float(p_value),
    )


def agreement_with_uncertainty(
    labels_a,
    labels_b,
    *,
    n_bootstrap: int = 1000,
    n_permutations: int = 1000,
    interval_method: str = "half-sample",
    confidence: float = 0.95,
    random_state: int | None = 0,
    name_a: str = "a",
    name_b: str = "b",
) -> AgreementWithUncertainty:
    """ARI, NMI and AMI with resampling intervals and permutation p-values.

    Parameters
    ----------
    labels_a, labels_b : array-like of shape (n_tracks,)
        Hard cluster labels of the same tracks in the same order.
    n_bootstrap : int, default 1000
        Track resamples for the interval; 0 skips the interval.
    n_permutations : int, default 1000
        Shuffles of ``labels_b`` for the null; 0 skips the null and p-value.
    interval_method : {"half-sample", "bootstrap"}, default "half-sample"
        How tracks are resampled (see the module docstring for why half-sampling is the
        default).
    confidence : float, default 0.95
        Interval coverage, also the null quantile reported as ``null_upper``.
    random_state : int or None, default 0
        Seed. Resampling and permutations use independent streams spawned from it, so
        changing one count does not change the other's draws.
    name_a, name_b : str
        Names used in the notes.

    Returns
    -------
    AgreementWithUncertainty

    Raises
    ------
    ValueError
        On malformed labels (see :func:`validate_label_pair`), negative counts, an unknown
        interval method, or a confidence outside (0, 1).
    """
    if interval_method not in INTERVAL_METHODS:
        raise ValueError(f"interval_method must be one of {list(INTERVAL_METHODS)}, got {interval_method!r}")
    n_bootstrap = _check_count(n_bootstrap, name="n_bootstrap")
    n_permutations = _check_count(n_permutations, name="n_permutations")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    pair = validate_label_pair(labels_a, labels_b)
    table = contingency_table(pair)
    resampling_rng, permutation_rng = (
        np.random.default_rng(seed) for seed in np.random.SeedSequence(random_state).spawn(2)
    )
    observed = agreement_from_tables(table)
    draw_tables = INTERVAL_METHODS[interval_method][0]
    resampled = agreement_from_tables(draw_tables(table, n_resamples=n_bootstrap, rng=resampling_rng))
    null = agreement_from_tables(
        permutation_tables(pair, n_permutations=n_permutations, rng=permutation_rng)
    )
    estimates = {
        name: _summarise(
            name,
            observed[name],
            resampled[name],
            null[name],
            interval_method=interval_method,
            confidence=confidence,
        )
        for name in METRIC_NAMES
    }
    return AgreementWithUncertainty(
        **estimates,
        n_tracks=pair.n_tracks,
        n_clusters_a=pair.n_clusters_a,
        n_clusters_b=pair.n_clusters_b,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        interval_method=interval_method,
        confidence=confidence,
        degenerate=pair.degenerate,
        notes=label_pair_notes(pair, name_a=name_a, name_b=name_b),
    )


# ------------------------------------------------------------------------------ across k


def _check_labels_by_k(labels_by_k: Mapping[int, object], *, name: str) -> None:
    if not isinstance(labels_by_k, Mapping) or not labels_by_k:
        raise ValueError(f"{name} must be a non-empty dict {{k: labels}}, got {labels_by_k!r}")
    bad = [k for k in labels_by_k if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1]
    if bad:
        raise ValueError(f"{name} keys must be positive integers k (number of clusters); got {bad}")


def agreement_across_k(
    labels_a_by_k: Mapping[int, object],
    labels_b_by_k: Mapping[int, object],
    *,
    ground_truth=None,
    name_a: str = "a",
    name_b: str = "b",
    n_bootstrap: int = 0,
    interval_method: str = "half-sample",
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Agreement of the two clusterings at each k both sides were fitted with.

    Parameters
    ----------
    labels_a_by_k, labels_b_by_k : dict of int to array-like of shape (n_tracks,)
        Hard labels of the same tracks, one clustering per k.
    ground_truth : array-like of shape (n_tracks,), optional
        Known groups (the demo's genres). When given, each side's clustering at each of its
        ks is also compared with it.
    name_a, name_b : str
        Names of the two sides, used in the ``comparison`` column.
    n_bootstrap : int, default 0
        When positive, each row also gets an interval per metric.
    interval_method : {"half-sample", "bootstrap"}, default "half-sample"
    confidence : float, default 0.95
    random_state : int or None, default 0

    Returns
    -------
    DataFrame
        One row per (comparison, k): columns ``comparison`` (``"a vs b"``, ``"a vs truth"``,
        ``"b vs truth"``), ``k``, ``n_tracks``, ``degenerate``, and for each metric ``m`` in
        ari/nmi/ami: ``m``, ``m_ci_low``, ``m_ci_high`` (NaN without resamples).

    Raises
    ------
    ValueError
        If a dict is empty, has non-positive keys, or the two share no k.
    """
    _check_labels_by_k(labels_a_by_k, name="labels_a_by_k")
    _check_labels_by_k(labels_b_by_k, name="labels_b_by_k")
    shared_ks = sorted(set(labels_a_by_k) & set(labels_b_by_k))
    if not shared_ks:
        raise ValueError(
            f"no k in common: labels_a_by_k has {sorted(labels_a_by_k)}, labels_b_by_k has "
            f"{sorted(labels_b_by_k)}; fit both feature sets over the same range of k."
        )
    jobs = [(f"{name_a} vs {name_b}", k, labels_a_by_k[k], labels_b_by_k[k]) for k in shared_ks]
    if ground_truth is not None:
        jobs += [(f"{name_a} vs truth", k, labels_a_by_k[k], ground_truth) for k in sorted(labels_a_by_k)]
        jobs += [(f"{name_b} vs truth", k, labels_b_by_k[k], ground_truth) for k in sorted(labels_b_by_k)]
    rows = []
    for comparison, k, labels_a, labels_b in jobs:
        result = agreement_with_uncertainty(
            labels_a,
            labels_b,
            n_bootstrap=n_bootstrap,
            n_permutations=0,
            interval_method=interval_method,
            confidence=confidence,
            random_state=random_state,
        )
        row = {"comparison": comparison, "k": int(k), "n_tracks": result.n_tracks, "degenerate": result.degenerate}
        for metric in result.metrics:
            row |= {metric.name: metric.value, f"{metric.name}_ci_low": metric.ci_low, f"{metric.name}_ci_high": metric.ci_high}
        rows.append(row)
    return pd.DataFrame(rows)
