"""Feature-level agreement between Spotify's audio features and Aubio's.

Conventions: both inputs are DataFrames indexed by ``track_id`` (unique). They are aligned on
the tracks both sides can use: a track is missing from a side when its id is absent there or
any column the computation needs is NaN. Missing tracks are counted and listed, never
silently dropped. Units are the sources' own (tempo in BPM, loudness in dB). Keys are pitch
classes 0-11 (C = 0) or names ("C#", "Db"); Spotify's -1 means "no key detected" and is left
out of key measures. Modes are 1 = major, 0 = minor, or the words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import mir_eval
import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from songmix.audio.accuracy import TEMPO_TOLERANCE, key_score_matrix, tempo_accuracy
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES

# Aubio columns playing each role in the direct comparison; callers pass their own mapping
# if the extractor names them differently.
AUBIO_DIRECT_COLUMNS: Mapping[str, str] = {
    "tempo": "tempo",
    "key": "key",
    "mode": "mode",
    "loudness": "loudness",
    "onset_rate": "onset_rate",
}
SPOTIFY_DIRECT_COLUMNS: tuple[str, ...] = ("tempo", "key", "mode", "loudness", "energy")

# Categorical Aubio columns: a pitch class is not a quantity a linear model can use.
AUBIO_CATEGORICAL_COLUMNS: tuple[str, ...] = ("key", "mode")

RIDGE_ALPHAS: tuple[float, ...] = tuple(np.logspace(-3, 3, 13))
_MODE_WORDS = {"major": 1, "minor": 0, "maj": 1, "min": 0}


@dataclass(frozen=True)
class TrackAlignment:
    """Which tracks both sides can use, and which each side lacks.

    Attributes
    ----------
    track_ids : tuple
        Usable on both sides, in the Spotify table's order.
    missing_from_spotify : tuple
        Ids known to either side that Spotify lacks (absent or NaN in a needed column).
    missing_from_aubio : tuple
        The same for Aubio.
    """

    track_ids: tuple
    missing_from_spotify: tuple
    missing_from_aubio: tuple

    @property
    def n_tracks(self) -> int:
        return len(self.track_ids)

    @property
    def notes(self) -> tuple[str, ...]:
        """Plain-language counts of missing tracks; empty when none are missing."""
        return tuple(
            f"{len(ids)} tracks lack {side} features and were left out"
            for side, ids in (("Spotify", self.missing_from_spotify), ("Aubio", self.missing_from_aubio))
            if ids
        )


@dataclass(frozen=True)
class FeatureAgreement:
    """How well Aubio's features predict each Spotify feature.

    Attributes
    ----------
    table : DataFrame
        Index ``spotify_feature``; columns ``cv_r2`` (cross-validated R² of ridge regression
        on all Aubio features), ``best_aubio_feature`` and ``best_pearson_r`` (the single Aubio
        feature with the largest absolute correlation, signed r), ``n_tracks``.
    alignment : TrackAlignment
    notes : tuple of str
    """

    table: pd.DataFrame
    alignment: TrackAlignment
    notes: tuple[str, ...]


@dataclass(frozen=True)
class DirectAgreement:
    """Agreement on what both sides measure directly (tempo, key, mode, loudness, energy).

    Attributes
    ----------
    table : DataFrame
        Index ``measure``; columns ``value``, ``chance`` (expected value if the sides were
        independent; NaN where not computed), ``n_tracks`` (pairs the measure used),
        ``description``.
    alignment : TrackAlignment
    notes : tuple of str
    """

    table: pd.DataFrame
    alignment: TrackAlignment
    notes: tuple[str, ...]


# ------------------------------------------------------------------------------- alignment


def _check_frame(frame: pd.DataFrame, columns: Sequence[str], *, name: str, hint: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame indexed by track_id, got {type(frame).__name__}")
    if frame.index.has_duplicates:
        duplicated = frame.index[frame.index.duplicated()].unique().tolist()[:5]
        raise ValueError(f"{name} has duplicate track ids (e.g. {duplicated}); keep one row per track first.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing} (it has {list(frame.columns)}); {hint}")


def align_tracks(
    spotify: pd.DataFrame,
    aubio: pd.DataFrame,
    *,
    spotify_columns: Sequence[str],
    aubio_columns: Sequence[str],
) -> TrackAlignment:
    """Find the tracks whose needed columns are present and non-NaN on both sides.

    Parameters
    ----------
    spotify, aubio : DataFrame indexed by track_id
    spotify_columns, aubio_columns : sequence of str
        Columns each side must have filled for a track to be usable.

    Returns
    -------
    TrackAlignment
    """
    usable_spotify = spotify.index[spotify[list(spotify_columns)].notna().all(axis=1)]
    usable_aubio = aubio.index[aubio[list(aubio_columns)].notna().all(axis=1)]
    all_ids = spotify.index.union(aubio.index, sort=False)
    return TrackAlignment(
        track_ids=tuple(usable_spotify[usable_spotify.isin(usable_aubio)].tolist()),
        missing_from_spotify=tuple(all_ids[~all_ids.isin(usable_spotify)].tolist()),
        missing_from_aubio=tuple(all_ids[~all_ids.isin(usable_aubio)].tolist()),
    )


# -------------------------------------------------------------------------- shared numerics


def _correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of every column of ``y`` (n, q) with every column of ``x`` (n, p) -> (q, p).

    Constant columns give NaN (r is undefined), not a division warning.
    """
    x_centered = x - x.mean(axis=0)
    y_centered = y - y.mean(axis=0)
    x_norm = np.sqrt((x_centered**2).sum(axis=0))
    y_norm = np.sqrt((y_centered**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (y_centered.T @ x_centered) / np.outer(y_norm, x_norm)
    return np.where(np.outer(y_norm, x_norm) > 0, r, np.nan)


def _pearson_r(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Pearson r over the finite pairs and how many there were (NaN below 3 pairs)."""
    finite = np.isfinite(x) & np.isfinite(y)
    n_pairs = int(finite.sum())
    if n_pairs < 3:
        return np.nan, n_pairs
    return float(_correlations(x[finite, None], y[finite, None])[0, 0]), n_pairs


# ------------------------------------------------------------------------ feature agreement


def feature_agreement(
    spotify: pd.DataFrame,
    aubio: pd.DataFrame,
    *,
    spotify_columns: Sequence[str] = SPOTIFY_CLUSTER_FEATURES,
    aubio_columns: Sequence[str] | None = None,
    n_splits: int = 5,
    random_state: int = 0,
) -> FeatureAgreement:
    """Cross-validated R² of predicting each Spotify feature from all Aubio features.

    The model is ridge regression on standardised Aubio features, its penalty chosen per
    target by ``RidgeCV`` (efficient leave-one-out) inside each training fold; predictions
    are out-of-fold from ``KFold(n_splits, shuffle=True, random_state)``.

    Parameters
    ----------
    spotify : DataFrame indexed by track_id
        Spotify features.
    aubio : DataFrame indexed by track_id
        Aubio features.
    spotify_columns : sequence of str, default SPOTIFY_CLUSTER_FEATURES
        Spotify features to predict (continuous ones; key and mode belong in
        :func:`direct_agreement`).
    aubio_columns : sequence of str, optional
        Predictors; default every numeric Aubio column except key and mode.
    n_splits : int, default 5
    random_state : int, default 0

    Returns
    -------
    FeatureAgreement
        ``cv_r2`` is NaN when fewer than ``2 * n_splits`` tracks are usable; correlations are
        NaN below 3 tracks.
    """
    if n_splits < 2:
        raise ValueError(f"n_splits must be at least 2 for cross-validation, got {n_splits}")
    spotify_columns = list(spotify_columns)
    if aubio_columns is None and isinstance(aubio, pd.DataFrame):
        aubio_columns = [
            c for c in aubio.select_dtypes(include="number").columns if c not in AUBIO_CATEGORICAL_COLUMNS
        ]
    aubio_columns = list(aubio_columns or [])
    _check_frame(spotify, spotify_columns, name="spotify", hint="pass spotify_columns= naming its features.")
    _check_frame(aubio, aubio_columns, name="aubio", hint="pass aubio_columns= naming its features.")
    if not aubio_columns:
        raise ValueError(f"aubio has no numeric feature column (it has {list(aubio.columns)}); pass aubio_columns=.")
    alignment = align_tracks(spotify, aubio, spotify_columns=spotify_columns, aubio_columns=aubio_columns)
    ids = list(alignment.track_ids)
    targets = spotify.loc[ids, spotify_columns].to_numpy(dtype=np.float64)
    predictors = aubio.loc[ids, aubio_columns].to_numpy(dtype=np.float64)
    notes = list(alignment.notes)

    if alignment.n_tracks >= 2 * n_splits:
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True))
        folds = KFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        predicted = cross_val_predict(model, predictors, targets, cv=folds)
        cv_r2 = r2_score(targets, predicted, multioutput="raw_values")
    else:
        cv_r2 = np.full(len(spotify_columns), np.nan)
        notes.append(
            f"only {alignment.n_tracks} tracks have both feature sets: too few for "
            f"{n_splits}-fold cross-validation, so R² is not reported."
        )
    if alignment.n_tracks >= 3:
        correlations = _correlations(predictors, targets)
    else:
        correlations = np.full((len(spotify_columns), len(aubio_columns)), np.nan)
    rows = []
    for target_index, feature in enumerate(spotify_columns):
        strengths = np.abs(correlations[target_index])
        if np.isfinite(strengths).any():
            best = int(np.nanargmax(strengths))
            best_feature, best_r = aubio_columns[best], float(correlations[target_index, best])
        else:
            best_feature, best_r = None, np.nan
        rows.append(
            {
                "spotify_feature": feature,
                "cv_r2": float(cv_r2[target_index]),
                "best_aubio_feature": best_feature,
                "best_pearson_r": best_r,
                "n_tracks": alignment.n_tracks,
            }
        )
    table = pd.DataFrame(rows).set_index("spotify_feature")
    return FeatureAgreement(table=table, alignment=alignment, notes=tuple(notes))


# ------------------------------------------------------------------------- direct agreement


def _pitch_classes(values: pd.Series, *, name: str) -> np.ndarray:
    """Pitch classes 0-11 as floats, NaN for unknown (-1, NaN, "x")."""
    if values.dtype.kind in "iuf":
        numeric = values.to_numpy(dtype=np.float64)
        invalid = np.isfinite(numeric) & (numeric != -1) & ~np.isin(numeric, np.arange(12))
        if invalid.any():
            raise ValueError(
                f"{name} holds {np.unique(numeric[invalid])[:5]}, not pitch classes 0-11 (or -1 for unknown)."
            )
        return np.where(np.isin(numeric, np.arange(12)), numeric, np.nan)
    semitones = []
    for value in values:
        if pd.isna(value):
            semitones.append(np.nan)
            continue
        key = str(value).strip().lower()
        if key not in mir_eval.key.KEY_TO_SEMITONE:
            raise ValueError(f"{name} holds {value!r}; use pitch classes 0-11 or names like 'C#' / 'Db'.")
        semitone = mir_eval.key.KEY_TO_SEMITONE[key]  # None for mir_eval's "x" (no key)
        semitones.append(np.nan if semitone is None else semitone)
    return np.asarray(semitones, dtype=np.float64)


def _modes(values: pd.Series, *, name: str) -> np.ndarray:
    """Modes as floats 1 = major, 0 = minor, NaN unknown."""
    if values.dtype.kind in "iufb":
        numeric = values.to_numpy(dtype=np.float64)
    else:
        words = values.astype("string").str.strip().str.lower()
        numeric = words.map(_MODE_WORDS).to_numpy(dtype=np.float64, na_value=np.nan)
        unknown = words.notna().to_numpy() & np.isnan(numeric)
        if unknown.any():
            raise ValueError(f"{name} holds {values[unknown].unique()[:5].tolist()}; use 1/0 or 'major'/'minor'.")
    invalid = np.isfinite(numeric) & ~np.isin(numeric, (0.0, 1.0))
    if invalid.any():
        raise ValueError(f"{name} holds {np.unique(numeric[invalid])[:5]}; mode must be 1 (major) or 0 (minor).")
    return numeric


def _category_agreement(reference: np.ndarray, estimate: np.ndarray, n_categories: int) -> tuple[float, float, int]:
    """Agreement rate, its expectation under independent marginals, and the pairs used."""
    valid = np.isfinite(reference) & np.isfinite(estimate)
    if not valid.any():
        return np.nan, np.nan, 0
    ref, est = reference[valid].astype(int), estimate[valid].astype(int)
    ref_share = np.bincount(ref, minlength=n_categories) / ref.size
    est_share = np.bincount(est, minlength=n_categories) / est.size
    return float((ref == est).mean()), float(ref_share @ est_share), int(valid.sum())


def direct_agreement(
    spotify: pd.DataFrame,
    aubio: pd.DataFrame,
    *,
    aubio_columns: Mapping[str, str] = AUBIO_DIRECT_COLUMNS,
    tempo_tolerance: float = TEMPO_TOLERANCE,
) -> DirectAgreement:
    """Compare what Spotify and Aubio both measure, track by track.

    Measures (rows of the table):

    - ``tempo_acc1``: share of tracks with Aubio tempo within ``tempo_tolerance`` (4 %) of
      Spotify's; ``tempo_acc2``: the same allowing x2, x3, 1/2, 1/3 errors;
      ``tempo_pearson_r``.
    - ``key_agreement``, ``mode_agreement``: share of identical key (pitch class) / mode, with
      the rate expected from the two sides' marginals as ``chance``;
      ``key_weighted_score``: mean MIREX score (``mir_eval.key.weighted_score``: fifths,
      relative and parallel keys earn partial credit) on tracks with key and mode.
    - ``loudness_pearson_r``: Spotify loudness vs Aubio loudness.
    - ``energy_vs_loudness_r``, ``energy_vs_onset_rate_r``: Spotify energy vs Aubio loudness
      and onset rate (Aubio has no energy of its own).

    Parameters
    ----------
    spotify : DataFrame indexed by track_id
        Needs ``tempo, key, mode, loudness, energy``.
    aubio : DataFrame indexed by track_id
        Needs the columns that ``aubio_columns`` maps each role to.
    aubio_columns : dict of str to str, default AUBIO_DIRECT_COLUMNS
        Column for each role ``tempo, key, mode, loudness, onset_rate``.
    tempo_tolerance : float, default 0.04
        Relative tempo tolerance.

    Returns
    -------
    DirectAgreement
    """
    if not 0.0 < tempo_tolerance < 1.0:
        raise ValueError(f"tempo_tolerance is relative (0.04 = 4 %), got {tempo_tolerance!r}")
    missing_roles = [role for role in AUBIO_DIRECT_COLUMNS if role not in aubio_columns]
    if missing_roles:
        raise ValueError(f"aubio_columns lacks roles {missing_roles}; map each of {list(AUBIO_DIRECT_COLUMNS)} to a column.")
    _check_frame(spotify, SPOTIFY_DIRECT_COLUMNS, name="spotify", hint="these are Spotify's audio-feature names.")
    _check_frame(
        aubio,
        [aubio_columns[role] for role in AUBIO_DIRECT_COLUMNS],
        name="aubio",
        hint="pass aubio_columns={role: column} for its names.",
    )
    alignment = align_tracks(
        spotify,
        aubio,
        spotify_columns=SPOTIFY_DIRECT_COLUMNS,
        aubio_columns=[aubio_columns[role] for role in AUBIO_DIRECT_COLUMNS],
    )
    ids = list(alignment.track_ids)
    ours = spotify.loc[ids]
    theirs = aubio.loc[ids]

    def column(frame: pd.DataFrame, name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=np.float64)

    spotify_tempo, aubio_tempo = column(ours, "tempo"), column(theirs, aubio_columns["tempo"])
    spotify_key = _pitch_classes(ours["key"], name="spotify key")
    aubio_key = _pitch_classes(theirs[aubio_columns["key"]], name="aubio key")
    spotify_mode = _modes(ours["mode"], name="spotify mode")
    aubio_mode = _modes(theirs[aubio_columns["mode"]], name="aubio mode")

    rows = []

    def add(measure: str, value: float, chance: float, n_pairs: int, description: str) -> None:
        rows.append({"measure": measure, "value": value, "chance": chance, "n_tracks": n_pairs, "description": description})

    # A tempo of 0 is a placeholder (no beat), not an estimate: such tracks are left out.
    timed = np.isfinite(spotify_tempo) & np.isfinite(aubio_tempo) & (spotify_tempo > 0) & (aubio_tempo > 0)
    n_tempo = int(timed.sum())
    acc1, acc2 = (tempo_accuracy(aubio_tempo[timed], spotify_tempo[timed], tolerance=tempo_tolerance)
                  if n_tempo else (np.nan, np.nan))
    percent = f"{tempo_tolerance:.0%}"
    add("tempo_acc1", acc1, np.nan, n_tempo, f"tempo within {percent}")
    add("tempo_acc2", acc2, np.nan, n_tempo, f"tempo within {percent} allowing x2, x3, 1/2, 1/3")
    tempo_r, n_tempo_r = _pearson_r(spotify_tempo, aubio_tempo)
    add("tempo_pearson_r", tempo_r, 0.0, n_tempo_r, "tempo correlation")

    key_rate, key_chance, n_key = _category_agreement(spotify_key, aubio_key, 12)
    add("key_agreement", key_rate, key_chance, n_key, "same key (pitch class)")
    full_key = np.isfinite(spotify_key) & np.isfinite(aubio_key) & np.isfinite(spotify_mode) & np.isfinite(aubio_mode)
    scores = key_score_matrix()
    reference = (spotify_key + 12 * spotify_mode)[full_key].astype(int)
    estimate = (aubio_key + 12 * aubio_mode)[full_key].astype(int)
    if full_key.any():
        weighted = float(scores[reference, estimate].mean())
        weighted_chance = float(np.bincount(reference, minlength=24) @ scores @ np.bincount(estimate, minlength=24)) / full_key.sum() ** 2
    else:
        weighted = weighted_chance = np.nan
    add("key_weighted_score", weighted, weighted_chance, int(full_key.sum()), "MIREX key score (fifth 0.5, relative 0.3, parallel 0.2)")
    mode_rate, mode_chance, n_mode = _category_agreement(spotify_mode, aubio_mode, 2)
    add("mode_agreement", mode_rate, mode_chance, n_mode, "same mode (major/minor)")

    for measure, spotify_name, aubio_role, description in (
        ("loudness_pearson_r", "loudness", "loudness", "loudness correlation"),
        ("energy_vs_loudness_r", "energy", "loudness", "Spotify energy vs Aubio loudness"),
        ("energy_vs_onset_rate_r", "energy", "onset_rate", "Spotify energy vs Aubio onset rate"),
    ):
        r, n_pairs = _pearson_r(column(ours, spotify_name), column(theirs, aubio_columns[aubio_role]))
        add(measure, r, 0.0, n_pairs, description)

    table = pd.DataFrame(rows).set_index("measure")
    return DirectAgreement(table=table, alignment=alignment, notes=alignment.notes)
