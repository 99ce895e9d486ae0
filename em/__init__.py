"""Gaussian mixtures fitted by a hand-written EM (numpy only; threadpoolctl for ``n_jobs``).

Conventions: samples are rows, ``X`` has shape (n_samples, d); K is the number of components.
Covariances have scikit-learn's shapes per ``covariance_type``: full (K, d, d), tied (d, d),
diag (K, d), spherical (K,). Log-likelihoods are means per sample, like scikit-learn's
``score``. All seeds (``n_init`` starts) run together: one matrix product per iteration gives
every seed's and component's log-densities, and converged seeds drop out.

Usage::

    from songmix import em

    model = em.fit_gmm(X, 4, n_init=10, random_state=0, standardize=True,
                       feature_names=["energy", "valence", "tempo"])
    model.weights, model.means, model.log_likelihood, model.converged
    em.predict_proba(model, [[0.8, 0.4, 120.0]])  # raw units: the scaler is applied
    em.predict(model, X)                           # most probable component per row
    model.bic(X), model.aic(X)
    em.seed_stability(model, X)                    # ARI of each converged seed vs the best

    selection = em.select_k(X, range(2, 11), criterion="bic", random_state=0, standardize=True)
    selection.chosen_k, selection.bic, selection.chosen_model

    # mclust's way: every covariance type and k the data support, chosen together by BIC,
    # optionally under its conjugate prior; and what to distrust about the choice.
    selection = em.select_model(X, range(2, 11), random_state=0, standardize=True)
    selection.chosen_covariance_type, selection.chosen_k, selection.left_out
    em.selection_warnings(selection)
    em.fit_gmm(X, 8, prior=em.ConjugatePrior(), standardize=True)

    # Compare with another implementation from the same start:
    em.fit_gmm(X, 3, initial={"weights": w, "means": mu, "covariances": sigma}, tol=0,
               max_iter=50)

Threads: by default (``n_jobs=None``) every function runs on the calling thread, starts no
thread and changes no setting; numpy's BLAS uses the threads the process gives it. On a machine
busy with other work, BLAS threads spend most of their time waiting for a core, and small fits
can run many times slower (``benchmarks/em.py`` measures it); the process owner decides, e.g.
``threadpoolctl.threadpool_limits(1, user_api="blas")`` around the calls. ``n_jobs=k`` (-1: one
per available core) runs a call on ``k`` threads in all: ``k`` workers share blocks of samples
and BLAS is held to one thread while the call runs (k workers each calling a multi-threaded
BLAS would crowd k times its threads onto the cores). OpenBLAS keeps that setting for the
whole process, not per thread, so other threads' BLAS calls get one thread meanwhile.

Arrays: functions never write to, keep or change the flags of the caller's arrays; models hold
read-only copies.

Bad input (NaN or infinite values, 1-D arrays, fewer samples than components, k < 1, unknown
options, constant columns when standardising, explicit covariances that are not symmetric or
not positive definite) raises ``ValueError`` with what to change.
A start whose component empties or whose covariance stops being positive definite is marked
failed (``SeedFit.failed_reason``); ``FitFailedError`` is raised only when every start fails.
Non-convergence warns (``ConvergenceWarning``).
"""

from .gmm import (
    ConvergenceWarning,
    FitFailedError,
    GaussianMixtureModel,
    SeedFit,
    fit_gmm,
    aic,
    bic,
    covariance_parameters,
    full_covariances,
    mixture_from_parameters,
    n_free_parameters,
    predict,
    predict_proba,
    score_samples,
)
from ._validation import COVARIANCE_TYPES
from .prior import ConjugatePrior
from .scaling import Scaler, fit_scaler
from .selection import (
    KSelection,
    LeftOut,
    ModelSelection,
    select_k,
    select_model,
    selection_warnings,
    unsupported_reason,
)
from .stability import adjusted_rand_from_tables, adjusted_rand_index, seed_labels, seed_stability

__all__ = [
    "COVARIANCE_TYPES",
    "ConjugatePrior",
    "ConvergenceWarning",
    "FitFailedError",
    "GaussianMixtureModel",
    "KSelection",
    "LeftOut",
    "ModelSelection",
    "Scaler",
    "SeedFit",
    "adjusted_rand_from_tables",
    "adjusted_rand_index",
    "aic",
    "bic",
    "covariance_parameters",
    "fit_gmm",
    "fit_scaler",
    "full_covariances",
    "mixture_from_parameters",
    "n_free_parameters",
    "predict",
    "predict_proba",
    "score_samples",
    "seed_labels",
    "seed_stability",
    "select_k",
    "select_model",
    "selection_warnings",
    "unsupported_reason",
]
