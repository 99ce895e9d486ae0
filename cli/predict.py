"""``songmix predict``: the notebook's "new song" — its cluster probabilities under the
Spotify-feature model and the Aubio-feature model of a run, side by side."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from songmix.audio.features import extract_file
from songmix.cli.options import add_db_argument, db_path
from songmix.em import Scaler, mixture_from_parameters, predict_proba
from songmix.warehouse.query import chosen_models, matched_clusters, track_features
from songmix.warehouse.report_reads import matched_cluster_names

NAME = "predict"
HELP = "cluster probabilities of one song under both models of the latest run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("song", help="a track id in the warehouse, or an audio file")
    parser.add_argument("--run", default=None, help="use this run's models (default: the latest)")
    add_db_argument(parser)


def main(args: argparse.Namespace) -> int:
    print(predict_song(db_path(args), args.song, run_id=args.run).as_text())
    return 0


class PredictionError(Exception):
    """The song or the models cannot be found; the message says what to do."""


@dataclass(frozen=True)
class Prediction:
    """Cluster probabilities of one song under each feature set's chosen model."""

    song: str
    run_id: str
    probabilities: dict[str, np.ndarray]
    matched: dict[int, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    cluster_names: dict[str, dict[int, str]] = field(default_factory=dict)

    def _named(self, feature_set: str, cluster) -> str:
        name = self.cluster_names.get(feature_set, {}).get(cluster)
        return f"{cluster} ({name})" if name else str(cluster)

    def as_text(self) -> str:
        lines = [f"{self.song}  (models of run {self.run_id})"]
        for feature_set, probabilities in self.probabilities.items():
            best = int(np.argmax(probabilities))
            shown = "  ".join(f"{c}: {p:.3f}" for c, p in enumerate(probabilities))
            lines.append(f"  {feature_set:<8} cluster {self._named(feature_set, best)}  ({shown})")
        for feature_set, reason in self.missing.items():
            lines.append(f"  {feature_set:<8} — {reason}")
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


def _models(stored: pd.DataFrame) -> dict[str, object]:
    """Rebuild each feature set's chosen model from its stored components."""
    models = {}
    for feature_set, rows in stored.groupby("feature_set", sort=True):
        first = rows.iloc[0]
        d = len(first["features"])
        scaler = Scaler(mean=np.array(first["scaler_mean"], dtype=float),
                        scale=np.array(first["scaler_scale"], dtype=float),
                        feature_names=tuple(first["features"]))
        models[feature_set] = mixture_from_parameters(
            rows["weight"].to_numpy(dtype=float) / rows["weight"].sum(),
            np.stack(rows["mean"].map(np.asarray)),
            np.stack(rows["covariance"].map(lambda flat: np.asarray(flat).reshape(d, d))),
            scaler=scaler)
    return models


def predict_song(db_path: Path, song: str, *, run_id: str | None = None) -> Prediction:
    """Probabilities of ``song`` (a stored track id, or an audio file) under the run's models.

    Raises
    ------
    PredictionError
        No run has fitted models, or ``song`` is neither a stored track nor an audio file.
    songmix.audio.decode.AudioDecodeError
        ``song`` is a file that cannot be decoded.
    """
    stored = chosen_models(db_path, run_id)
    if stored.empty:
        raise PredictionError(f"no fitted models in {db_path}; run `songmix run` first")
    models = _models(stored)
    run_id = str(stored["run_id"].iloc[0])
    features: dict[str, pd.Series] = {}
    missing: dict[str, str] = {}
    path = Path(song)
    if path.is_file():
        features["aubio"] = pd.Series(extract_file(path).values)
        missing["spotify"] = "no Spotify features for an audio file"
    else:
        found = track_features(db_path, song)
        if found["track"].empty:
            raise PredictionError(
                f"{song!r} is neither a track id in the warehouse nor an audio file; "
                "try `songmix sql \"select track_id, name from tracks limit 5\"`")
        for feature_set in ("spotify", "aubio"):
            if found[feature_set].empty:
                missing[feature_set] = f"this track has no {feature_set} features"
            else:
                features[feature_set] = found[feature_set].iloc[0]
        track = found["track"].iloc[0]
        song = f"{track['name']} — {track['artists']} ({song})"
    probabilities = {}
    for feature_set, values in features.items():
        if feature_set not in models:
            missing[feature_set] = f"run {run_id} has no {feature_set} model"
            continue
        model = models[feature_set]
        row = values[list(model.feature_names)].to_numpy(dtype=float)[None, :]
        probabilities[feature_set] = predict_proba(model, row)[0]
    matched = matched_clusters(db_path, run_id)
    named = matched_cluster_names(db_path, run_id)
    return Prediction(song=song, run_id=run_id, probabilities=probabilities,
                      matched=dict(zip(matched["spotify_cluster"], matched["aubio_cluster"])),
                      missing=missing,
                      cluster_names={side: dict(zip(rows["cluster"], rows["cluster_name"]))
                                     for side, rows in named.groupby("side")})
