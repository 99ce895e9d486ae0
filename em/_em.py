"""The EM loop, run for all seeds together.

Each pass over the samples computes, for every live seed, the mean log-likelihood of its current
parameters and the sufficient statistics of the next M-step (one matrix product each). A seed
follows scikit-learn's schedule: E-step, M-step, stop once the mean log-likelihood changed by
less than ``tol`` or after ``max_iter`` M-steps. One more E-step then scores its final
parameters, after which it leaves the active set, so later passes only pay for running seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ._estep import Features, e_step_statistics, log_prob_coefficients
from ._mstep import m_step
from ._parameters import MixtureParameters
from .prior import PriorParameters


@dataclass(frozen=True)
class SeedRun:
    """How one seed's EM went.

    Attributes
    ----------
    log_likelihood : float
        Mean log-likelihood per sample of the final parameters; ``-inf`` when the seed failed.
    n_iter : int
        M-steps performed (scikit-learn's ``n_iter_``).
    converged : bool
    failed_reason : str or None
    trace : tuple of float
        Mean log-likelihood of the parameters after 0, 1, ..., ``n_iter`` M-steps.
    """

    log_likelihood: float
    n_iter: int
    converged: bool
    failed_reason: str | None
    trace: tuple[float, ...]


@dataclass
class _Progress:
    """Mutable bookkeeping for one seed while the loop runs."""

    failed_reason: str | None = None
    finishing: bool = False
    done: bool = False
    converged: bool = False
    n_iter: int = 0
    trace: list[float] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.failed_reason is None and not self.done

    def record(self, log_likelihood: float, *, tol: float, max_iter: int) -> None:
        """Log the E-step's mean log-likelihood and decide whether this is the last M-step."""
        previous = self.trace[-1] if self.trace else -math.inf
        self.trace.append(log_likelihood)
        if not math.isfinite(log_likelihood):
            self.failed_reason = f"iteration {self.n_iter}: the log-likelihood is not finite"
        elif self.finishing:
            self.done = True
        else:
            self.n_iter += 1
            self.converged = abs(log_likelihood - previous) < tol
            self.finishing = self.converged or self.n_iter >= max_iter

    def result(self) -> SeedRun:
        failed = self.failed_reason is not None
        return SeedRun(
            log_likelihood=-math.inf if failed else self.trace[-1],
            n_iter=self.n_iter,
            converged=self.converged and not failed,
            failed_reason=self.failed_reason,
            trace=tuple(self.trace),
        )


def run_em(
    features: Features,
    start: MixtureParameters,
    start_failures: list[str | None],
    *,
    covariance_type: str,
    tol: float,
    max_iter: int,
    reg_covar: float,
    prior: PriorParameters | None = None,
) -> tuple[MixtureParameters, list[SeedRun]]:
    """Run EM from ``S`` starting points at once.

    Parameters
    ----------
    features : Features
    start : MixtureParameters
        ``S`` starting mixtures in the centred frame of ``features``.
    start_failures : list of (str or None), length S
        Seeds that cannot start (their reason), else None.
    covariance_type : str
    tol : float
        Convergence threshold on the change of mean log-likelihood per sample.
    max_iter : int
        Most M-steps per seed.
    reg_covar : float
    prior : PriorParameters, optional
        Conjugate prior of the M-steps (posterior mode instead of maximum likelihood).

    Returns
    -------
    parameters : MixtureParameters
        Final parameters of every seed (meaningless for failed seeds), in new arrays.
    runs : list of SeedRun, length S
    """
    n_features = features.samples.shape[1]
    progress = [
        _Progress(failed_reason=reason and f"start: {reason}", finishing=max_iter == 0)
        for reason in start_failures
    ]
    every_seed = list(range(len(progress)))
    parameters = start.copy()
    # Log-density coefficients of every seed, recomputed only for the seeds an M-step moved.
    coefficients = _coefficients(parameters, covariance_type)
    while True:
        # Seeds about to take an M-step come first: only they need statistics.
        stepping = [seed for seed, state in enumerate(progress) if state.live and not state.finishing]
        scoring = [seed for seed, state in enumerate(progress) if state.live and state.finishing]
        live = stepping + scoring
        if not live:
            break
        live_coefficients = coefficients if live == every_seed else coefficients[live]
        log_likelihood_sum, statistics = e_step_statistics(features, live_coefficients, len(stepping))
        mean_log_likelihood = (log_likelihood_sum / features.n_samples).tolist()
        for seed, log_likelihood in zip(live, mean_log_likelihood):
            progress[seed].record(log_likelihood, tol=tol, max_iter=max_iter)
        usable = [row for row, seed in enumerate(stepping) if progress[seed].live]
        if not usable:
            continue
        updated, failures = m_step(
            statistics if len(usable) == len(stepping) else statistics[usable],
            n_features=n_features,
            covariance_type=covariance_type,
            reg_covar=reg_covar,
            prior=prior,
        )
        updated_seeds = [stepping[row] for row in usable]
        for seed, reason in zip(updated_seeds, failures):
            if reason is not None:
                progress[seed].failed_reason = f"iteration {progress[seed].n_iter}: {reason}"
        updated_coefficients = _coefficients(updated, covariance_type)
        if updated_seeds == every_seed:
            parameters, coefficients = updated, updated_coefficients
        else:
            parameters.assign(updated_seeds, updated)
            coefficients[updated_seeds] = updated_coefficients
    return parameters, [state.result() for state in progress]


def _coefficients(parameters: MixtureParameters, covariance_type: str):
    """Log-density coefficients (S, K, m) of the parameters of ``S`` seeds."""
    return log_prob_coefficients(
        parameters.weights, parameters.means, parameters.precisions_cholesky, covariance_type
    )
