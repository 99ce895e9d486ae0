"""How a run fits its mixtures: the defaults and options every source and cluster stage shares.

Light on purpose (no Prefect, no aubio at import): the command line shows these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from songmix.em import COVARIANCE_TYPES
from songmix.sources.schema import SPOTIFY_CLUSTER_FEATURES

#: Numbers of components compared by BIC unless the user gives ``--ks``.
DEFAULT_KS: list[int] = list(range(2, 11))
#: ``auto`` compares every covariance type by BIC with k (mclust's default); a type's name
#: fits that type only.
AUTO_COVARIANCE = "auto"
COVARIANCE_CHOICES: tuple[str, ...] = (AUTO_COVARIANCE, *COVARIANCE_TYPES)
#: EM starts per (covariance type, k).
DEFAULT_SEEDS = 10
#: Most tracks the model selection is fitted on. A larger data set is compared, every
#: (covariance type, k) pair over every seed, on a seeded sample of this many of its tracks;
#: then the chosen covariance type's best fit at each k is refined by EM on all the tracks
#: (mclust's way with large data: choose the model on a sample, then run EM on everything
#: from that start). 20 000 tracks give each parameter of the largest default model (10 full
#: covariances on 9 features: 549 parameters) over 30 tracks, and keep the comparison's cost
#: independent of the data set's size.
LARGE_DATA_SET = 20_000
#: Fit under mclust's conjugate prior (``priorControl()``) unless told not to. Without it, a
#: (covariance type, k) pair whose covariances have more free parameters than tracks to
#: estimate them is left out, and BIC rewards components that shrink onto a tight clump of
#: tracks (EM's maximum likelihood grows without bound as a covariance collapses); the prior
#: keeps every covariance regular, so BIC compares every pair on the same footing.
DEFAULT_PRIOR = True
#: The models a run may fit, by the features they are fitted on.
FEATURE_SETS: tuple[str, ...] = ("spotify", "aubio")


def clustering_features(feature_set: str) -> tuple[str, ...]:
    """Every feature ``feature_set``'s model may be fitted on, its default."""
    if feature_set == "aubio":
        from songmix.audio.features import AUBIO_CLUSTER_FEATURES  # imports aubio: only when asked

        return AUBIO_CLUSTER_FEATURES
    return SPOTIFY_CLUSTER_FEATURES


def _model_features(feature_set: str, wanted: list[str] | None) -> list[str]:
    """``wanted`` checked against ``feature_set``'s clustering features, or all of them."""
    available = clustering_features(feature_set)
    if wanted is None:
        return list(available)
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise ValueError(f"unknown {feature_set} features {unknown}; choose from {', '.join(available)}")
    if len(set(wanted)) < 2:
        raise ValueError(f"the {feature_set} model needs at least two features (got {list(wanted)})")
    return list(dict.fromkeys(wanted))


@dataclass(frozen=True)
class ModelOptions:
    """How a run fits its mixtures: the same for every source and every cluster stage.

    Attributes
    ----------
    ks : list of int
        Numbers of components compared (a fixed k is added to them).
    fixed_k : int or None
        Use this k instead of choosing it by BIC.
    n_seeds : int
        EM starts per (covariance type, k).
    covariance_type : str
        ``auto`` (every type compared by BIC) or one of full, tied, diag, spherical.
    prior : bool
        Fit under mclust's conjugate prior (posterior mode; :data:`DEFAULT_PRIOR`): every
        pair is supported. Without it, pairs the tracks cannot support are left out.
    random_state : int
    features : dict of str to list of str
        The features of each feature set's model (default: all its clustering features).
    selection_sample : int
        Most tracks the model selection is fitted on (:data:`LARGE_DATA_SET`).

    Raises
    ------
    ValueError
        An unknown covariance type or feature, fewer than two features.
    """

    ks: list[int]
    fixed_k: int | None = None
    n_seeds: int = DEFAULT_SEEDS
    covariance_type: str = AUTO_COVARIANCE
    prior: bool = DEFAULT_PRIOR
    random_state: int = 0
    features: dict[str, list[str]] | None = None
    selection_sample: int = LARGE_DATA_SET

    def __post_init__(self):
        if self.covariance_type not in COVARIANCE_CHOICES:
            raise ValueError(f"--covariance must be one of {', '.join(COVARIANCE_CHOICES)} "
                             f"(got {self.covariance_type!r})")
        given = self.features or {}
        unknown_sets = sorted(set(given) - set(FEATURE_SETS))
        if unknown_sets:
            raise ValueError(f"no feature set {unknown_sets}; use {', '.join(FEATURE_SETS)}")
        object.__setattr__(self, "ks", sorted(set(self.ks) | ({self.fixed_k} if self.fixed_k else set())))
        object.__setattr__(self, "features", {name: _model_features(name, given.get(name))
                                              for name in FEATURE_SETS})

    @property
    def covariance_types(self) -> tuple[str, ...]:
        return COVARIANCE_TYPES if self.covariance_type == AUTO_COVARIANCE else (self.covariance_type,)

    @property
    def n_fits(self) -> int:
        """EM starts of one feature set at most (for progress)."""
        return len(self.ks) * len(self.covariance_types) * self.n_seeds
