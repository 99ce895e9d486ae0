"""``songmix run``: the pipeline, in this process, with progress on the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

from songmix.cli.options import add_db_argument, db_path, k_list, whole_number
from songmix.flows.parameters import MAX_DEMO_GROUPS, MAX_K, MAX_SEEDS, MAX_TRACKS
from songmix.sources.schema import FIRST_RELEASE_YEAR, last_release_year

NAME = "run"
HELP = "run the pipeline on a source (the built-in demo catalog by default)"


def _names(text: str) -> list[str]:
    """``energy,valence,tempo`` → a list of feature names."""
    return [name.strip() for name in text.split(",") if name.strip()]


def add_model_arguments(parser: argparse.ArgumentParser, feature_sets: tuple[str, ...]) -> None:
    """How the mixtures are fitted: k, covariance type, prior, features (run and import-csv)."""
    from songmix.tasks.options import (
        AUTO_COVARIANCE,
        COVARIANCE_CHOICES,
        DEFAULT_KS,
        DEFAULT_PRIOR,
        DEFAULT_SEEDS,
        LARGE_DATA_SET,
    )

    parser.add_argument("--k", type=whole_number("--k", 1, MAX_K), default=None,
                        help="number of clusters to use (default: the k with the lowest BIC)")
    parser.add_argument("--ks", type=k_list, default=DEFAULT_KS,
                        help=f"k to compare by BIC, e.g. 2-10 (default {min(DEFAULT_KS)}-{max(DEFAULT_KS)}) "
                        f"or 2,4,8; each 1-{MAX_K}")
    parser.add_argument("--covariance", choices=COVARIANCE_CHOICES, default=AUTO_COVARIANCE,
                        dest="covariance_type",
                        help="covariance structure of the mixture components; auto (default) compares "
                        "full, tied, diag and spherical by BIC together with k, as R's mclust does "
                        "(the model_selection table and the report show every pair); above "
                        f"{LARGE_DATA_SET:,} tracks the comparison runs on a seeded sample of "
                        "them (README: model selection)")
    parser.add_argument("--prior", action=argparse.BooleanOptionalAction, default=DEFAULT_PRIOR,
                        help="fit under mclust's conjugate prior (priorControl; the default): small "
                        "clusters keep regular covariances, so every (covariance, k) pair is compared; "
                        "--no-prior fits by maximum likelihood and leaves out the pairs the tracks "
                        "cannot support")
    parser.add_argument("--seeds", type=whole_number("--seeds", 1, MAX_SEEDS), default=DEFAULT_SEEDS,
                        help=f"EM seeds per covariance type and k (default {DEFAULT_SEEDS}, at most {MAX_SEEDS})")
    for feature_set in feature_sets:
        parser.add_argument(f"--{feature_set}-features", type=_names, default=None, metavar="A,B,...",
                            help=f"features of the {feature_set} model, comma-separated (default: "
                            f"every {feature_set} clustering feature; a wrong name lists them)")


def add_fit_arguments(parser: argparse.ArgumentParser, feature_sets: tuple[str, ...]) -> None:
    """The clustering and output options every way of starting a run shares."""
    add_model_arguments(parser, feature_sets)
    parser.add_argument("--no-fit", action="store_true", help="only store the data; do not cluster it")
    add_db_argument(parser)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="audio cache (default $SONGMIX_DATA_DIR or ~/.cache/songmix)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the report and its plots (default $SONGMIX_OUT_DIR or ./songmix-out)")
    parser.add_argument("--quiet", action="store_true", help="no progress display (scheduled use)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="demo", metavar="SOURCE",
                        help="demo: built-in catalog served on loopback (default); spotify: the "
                        "Spotify Web API with SPOTIPY_CLIENT_ID / SPOTIPY_CLIENT_SECRET; csv:FILE: "
                        "a Spotify-schema data set; dir:PATH: your own audio files; run:ID or "
                        "run:latest: an earlier run's tracks, re-clustered from the warehouse")
    parser.add_argument("--audio-dir", type=Path, default=None, metavar="DIR",
                        help="short for --source dir:DIR (compared with DIR/truth.csv if present)")
    parser.add_argument("--year", type=whole_number("--year", FIRST_RELEASE_YEAR, last_release_year()),
                        default=2020, help="release year to search (default 2020)")
    parser.add_argument("--playlist", default=None, metavar="ID_OR_URL",
                        help="with --source spotify: take this playlist's tracks instead of the year search")
    parser.add_argument("--tracks", type=whole_number("--tracks", 1, MAX_TRACKS), default=1000,
                        help=f"number of tracks of demo or spotify (default 1000, at most {MAX_TRACKS})")
    parser.add_argument("--name", default=None,
                        help="with csv:FILE, the data set's name; the run's source is csv:NAME "
                        "(default: the file name)")
    parser.add_argument("--demo-groups", type=whole_number("--demo-groups", 1, MAX_DEMO_GROUPS),
                        default=6, help="genre-like groups in the demo catalog (default 6)")
    add_fit_arguments(parser, ("spotify", "aubio"))


def model_parameters(args: argparse.Namespace, feature_sets: tuple[str, ...]) -> dict:
    """The flow parameters of :func:`add_model_arguments`, checked before any run starts."""
    from songmix.tasks.options import ModelOptions

    features = {name: getattr(args, f"{name}_features") for name in feature_sets}
    ModelOptions(ks=args.ks, fixed_k=args.k, n_seeds=args.seeds, covariance_type=args.covariance_type,
                 prior=args.prior, features=features)  # raises ValueError for a bad option
    return dict(k=args.k, ks=args.ks, n_seeds=args.seeds, covariance_type=args.covariance_type,
                prior=args.prior, **{f"{name}_features": wanted for name, wanted in features.items()})


def main(args: argparse.Namespace) -> int:
    source = f"dir:{args.audio_dir}" if args.audio_dir is not None else args.source
    return run_pipeline(args, ("spotify", "aubio"), source=source, n_tracks=args.tracks,
                        year=args.year, playlist=args.playlist, dataset=args.name,
                        demo_groups=args.demo_groups)


def run_pipeline(args: argparse.Namespace, feature_sets: tuple[str, ...], *, source: str,
                 **source_options) -> int:
    """Check, then run the pipeline in this process with the progress shown on stderr;
    prints the run's summary. Every process the run starts ends with it, and Ctrl-C or
    SIGTERM stops it within seconds (:mod:`songmix.flows.lifecycle`)."""
    from songmix.cli.progress import showing_progress
    from songmix.flows.lifecycle import ending_with_this_process, stopping_on_signals
    from songmix.flows.pipeline import pipeline, source_of, validate_run
    from songmix.flows.settings import default_out_dir, local_run_settings
    from songmix.warehouse.connection import validate_path

    parameters = dict(source=source, **source_options, fit=not args.no_fit,
                      **model_parameters(args, feature_sets), db_path=db_path(args),
                      data_dir=args.data_dir, out_dir=args.out)
    # Checked here, before Prefect starts (seconds): bad input fails at once.
    validate_run(source_of(parameters), k=args.k, ks=args.ks, n_seeds=args.seeds,
                 demo_groups=parameters.get("demo_groups", 6), year=parameters.get("year", 2020),
                 out_dir=args.out or default_out_dir())
    validate_path(parameters["db_path"], for_writing=True)
    with (ending_with_this_process(), stopping_on_signals(),
          showing_progress(quiet=args.quiet, title=f"songmix: {source} → {parameters['db_path']}"),
          local_run_settings()):
        summary = pipeline(**parameters)
    print(summary.as_text())
    return 0
