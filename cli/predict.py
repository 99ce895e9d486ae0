"""``songmix predict``: the notebook's "new song" — its cluster probabilities under the
Spotify-feature model and the Aubio-feature model of a run, side by side.

A prediction knows its model: it names the run it used, refuses features of another
extractor version than the model's, shows the extractor's flags, gives a clip without a
measurable tempo (silence) no cluster, as the run gave its own such clips none, and warns
when the song is unlike every track the model was fitted on.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from songmix.audio.features import EXTRACTOR_VERSION, extract_file, unfit_for_clustering
from songmix.cli.options import add_db_argument, db_path
from songmix.em import predict_proba, score_samples
from songmix.warehouse.reads import chosen_model_components, matched_cluster_names, matched_clusters, track_features
from songmix.warehouse.records import stored_model

NAME = "predict"
HELP = "cluster probabilities of one song under both models of a run (default: the latest)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("song", help="a track id in the warehouse, or an audio file")
    parser.add_argument("--run", default=None,
                        help="use this run's models (default: the latest completed run with models; "
                        "its id is printed)")
    add_db_argument(parser)


def main(args: argparse.Namespace) -> int:
    print(predict_song(db_path(args), args.song, run_id=args.run).as_text())
    return 0


class PredictionError(Exception):
    """The song or the models cannot be found; the message says what to do."""


@dataclass(frozen=True)
class Prediction:
    """Cluster probabilities of one song under each feature set's chosen model.

    Attributes
    ----------
    song : str
    run_id : str
    run : str
        How the run is named to the reader (source, start, and whether it was the default).
    probabilities : dict of str to ndarray
        Per feature set the song was placed by.
    missing : dict of str to str
        Per feature set that gave no cluster, why.
    warnings : dict of str to list of str
        Per feature set, reasons to doubt its cluster.
    flags : tuple of str or None
        The extractor's flags for the song's audio (None when it has no Aubio features).
    """

    song: str
    run_id: str
    run: str
    probabilities: dict[str, np.ndarray]
    missing: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    flags: tuple[str, ...] | None = None
    matched: dict[int, int] = field(default_factory=dict)
    cluster_names: dict[str, dict[int, str]] = field(default_factory=dict)

    def _named(self, feature_set: str, cluster) -> str:
        name = self.cluster_names.get(feature_set, {}).get(cluster)
        return f"{cluster} ({name})" if name else str(cluster)

    def as_text(self) -> str:
        lines = [self.song, f"  models of run {self.run}"]
        if self.flags is not None:
            lines.append(f"  extractor flags: {', '.join(self.flags) or 'none'}")
        for feature_set, probabilities in self.probabilities.items():
            best = int(np.argmax(probabilities))
            shown = "  ".join(f"{c}: {p:.3f}" for c, p in enumerate(probabilities))
            lines.append(f"  {feature_set:<8} cluster {self._named(feature_set, best)}  ({shown})")
        for feature_set, reason in self.missing.items():
            lines.append(f"  {feature_set:<8} no cluster: {reason}")
        lines += [f"  warning: {feature_set}: {warning}" for feature_set, warnings in self.warnings.items()
                  for warning in warnings]
        if {"spotify", "aubio"} <= set(self.probabilities) and self.matched:
            spotify_best = int(np.argmax(self.probabilities["spotify"]))
            aubio_best = int(np.argmax(self.probabilities["aubio"]))
            agree = self.matched.get(spotify_best) == aubio_best
            partner = self.matched.get(spotify_best)
            lines.append(
                f"  Spotify cluster {self._named('spotify', spotify_best)} is matched with Aubio "
                f"cluster {'(none)' if partner is None else self._named('aubio', partner)}: the two "
                "models " + ("agree" if agree else "disagree") + " about this song")
        return "\n".join(lines)


@dataclass(frozen=True)
class _SongFeatures:
    """What is known of the song: its features per feature set and their provenance."""

    name: str
    values: dict[str, pd.Series]
    missing: dict[str, str]
    flags: tuple[str, ...] | None = None
    aubio_version: str | None = None


def _song_features(db_path: Path, song: str) -> _SongFeatures:
    path = Path(song)
    if path.is_file():
        extracted = extract_file(path)
        return _SongFeatures(song, {"aubio": pd.Series(extracted.values)},
                             {"spotify": "an audio file has no Spotify features"},
                             extracted.flags, EXTRACTOR_VERSION)
    found = track_features(db_path, song)
    if found["track"].empty:
        raise PredictionError(
            f"{song!r} is neither a track id in the warehouse nor an audio file; "
            "try `songmix sql \"select track_id, name from tracks limit 5\"`")
    track = found["track"].iloc[0]
    values = {name: found[name].iloc[0] for name in ("spotify", "aubio") if not found[name].empty}
    missing = {name: f"this track has no {name} features" for name in ("spotify", "aubio")
               if name not in values}
    aubio = values.get("aubio")
    flags = None if aubio is None else tuple(flag for flag in str(aubio["flags"]).split(",") if flag)
    return _SongFeatures(f"{track['name']} — {track['artists']} ({song})", values, missing, flags,
                         None if aubio is None else aubio["extractor_version"])


def _why_not(feature_set: str, model_row: pd.Series, song: _SongFeatures) -> str | None:
    """Why the song cannot be placed by this feature set's model, or None."""
    if feature_set != "aubio":
        return None
    if model_row["feature_version"] is not None and song.aubio_version != model_row["feature_version"]:
        return (f"the model was fitted on features of extractor {model_row['feature_version']}, "
                f"the song's come from {song.aubio_version}; run `songmix run` again to refit")
    unfit = unfit_for_clustering({"song": float(song.values["aubio"]["tempo"])})
    if unfit:
        return f"{unfit['song']}; the model was fitted without such clips"
    return None


def _novelty(model, row: np.ndarray, model_row: pd.Series) -> list[str]:
    """A warning when the song is less likely under the model than 99% of its training tracks."""
    floor = model_row["log_density_p01"]
    if floor is None or pd.isna(floor):
        return []
    log_density = float(score_samples(model, row)[0])
    if log_density >= floor:
        return []
    return [f"unlike every track the model was fitted on (log-density {log_density:.1f}, below "
            f"{floor:.1f}, the 1st percentile of its {int(model_row['n_samples'])} tracks): its "
            "cluster is a guess"]


def predict_song(db_path: Path, song: str, *, run_id: str | None = None) -> Prediction:
    """Probabilities of ``song`` (a stored track id, or an audio file) under the run's models.

    Raises
    ------
    PredictionError
        No run has fitted models (or no run ``run_id``), or ``song`` is neither a stored track
        nor an audio file.
    songmix.audio.decode.AudioDecodeError
        ``song`` is a file that cannot be decoded.
    """
    stored = chosen_model_components(db_path, run_id)
    if stored.empty:
        raise PredictionError(f"no fitted models of run {run_id!r} in {db_path}" if run_id else
                              f"no fitted models in {db_path}; run `songmix run` first")
    first = stored.iloc[0]
    run = (f"{first['run_id']} (source {first['source']}, started {first['started_at']:%Y-%m-%d %H:%M} UTC"
           + ("" if run_id else "; the latest completed run with models, choose another with --run") + ")")
    run_id = str(first["run_id"])
    song_features = _song_features(db_path, song)
    probabilities: dict[str, np.ndarray] = {}
    missing = dict(song_features.missing)
    warnings: dict[str, list[str]] = {}
    for feature_set, rows in stored.groupby("feature_set", sort=True):
        if feature_set not in song_features.values:
            continue
        model_row = rows.iloc[0]
        reason = _why_not(feature_set, model_row, song_features)
        if reason:
            missing[feature_set] = reason
            continue
        model = stored_model(rows)
        row = song_features.values[feature_set][list(model.feature_names)].to_numpy(dtype=float)[None, :]
        probabilities[feature_set] = predict_proba(model, row)[0]
        warnings[feature_set] = _novelty(model, row, model_row) + [
            f"the model itself: {warning}" for warning in model_row["warnings"]]
    missing |= {name: f"run {run_id} has no {name} model" for name in song_features.values
                if name not in set(stored["feature_set"])}
    matched = matched_clusters(db_path, run_id)
    named = matched_cluster_names(db_path, run_id)
    return Prediction(song=song_features.name, run_id=run_id, run=run, probabilities=probabilities,
                      missing=missing, warnings={k: v for k, v in warnings.items() if v},
                      flags=song_features.flags,
                      matched=dict(zip(matched["spotify_cluster"], matched["aubio_cluster"])),
                      cluster_names={side: dict(zip(rows["cluster"], rows["cluster_name"]))
                                     for side, rows in named.groupby("side")})
