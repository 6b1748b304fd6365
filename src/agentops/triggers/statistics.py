"""Small, dependency-free statistics for rollback triggers.

Everything here is plain Python (stdlib only) so the maths can be read, tested and
trusted on its own: Wilson score bounds for rates, Wald's sequential probability
ratio test for violation rates, and distribution-free confidence bounds for quantiles.

A trigger that breaches when a rate or quantile is "convincingly above" a threshold needs
a ONE-sided lower bound at its confidence: the lower end of a two-sided interval at
confidence c is a one-sided bound at (1 + c) / 2, so it would silently demand more.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

SprtDecision = Literal["accept_h1", "accept_h0", "continue"]


def normal_quantile(p: float) -> float:
    """The standard normal quantile (inverse CDF) at probability p, 0 < p < 1."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must be strictly between 0 and 1, got {p}")
    return NormalDist().inv_cdf(p)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval for a binomial proportion; (0, 1) when n is 0."""
    _check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = normal_quantile(1.0 - (1.0 - confidence) / 2.0)
    p_hat = successes / n
    denominator = 1.0 + z * z / n
    centre = (p_hat + z * z / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p_hat * (1.0 - p_hat) / n + z * z / (4.0 * n * n)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; rounding would leave it a hair off.
    lower = 0.0 if successes == 0 else max(0.0, centre - half_width)
    upper = 1.0 if successes == n else min(1.0, centre + half_width)
    return lower, upper


def wilson_lower_bound(successes: int, n: int, *, confidence: float) -> float:
    """One-sided Wilson score lower bound for a binomial proportion; 0 when n is 0.

    P(true rate >= bound) is (approximately) `confidence`; z = Phi^-1(confidence).
    """
    _check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0
    z = normal_quantile(confidence)
    p_hat = successes / n
    denominator = 1.0 + z * z / n
    centre = (p_hat + z * z / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p_hat * (1.0 - p_hat) / n + z * z / (4.0 * n * n)) / denominator
    # With no successes the bound is exactly 0 (for confidence >= 0.5); rounding would
    # leave it a hair off.
    if successes == 0 and z >= 0.0:
        return 0.0
    return min(1.0, max(0.0, centre - half_width))


@dataclass(frozen=True)
class SprtResult:
    """Outcome of Wald's sequential probability ratio test on a run of reviews."""

    decision: SprtDecision
    llr: float
    upper: float
    lower: float
    n_used: int
    violations: int


def sprt_bounds(*, alpha: float, beta: float) -> tuple[float, float]:
    """Wald's log-likelihood-ratio boundaries (A, B) = (ln((1-beta)/alpha), ln(beta/(1-alpha)))."""
    if not (0.0 < alpha < 1.0 and 0.0 < beta < 1.0 and alpha + beta < 1.0):
        raise ValueError(f"need 0 < alpha, beta and alpha + beta < 1, got {alpha}, {beta}")
    return math.log((1.0 - beta) / alpha), math.log(beta / (1.0 - alpha))


def sprt_bernoulli(
    outcomes: Sequence[bool], *, p0: float, p1: float, alpha: float, beta: float
) -> SprtResult:
    """Wald's SPRT of violation rate p0 (H0, acceptable) against p1 (H1, degraded).

    Outcomes (True = violation) are consumed in order and the test stops at the first
    boundary crossing, so n_used is the number of reviews needed to reach the decision.
    """
    if not 0.0 < p0 < p1 < 1.0:
        raise ValueError(f"need 0 < p0 < p1 < 1, got p0={p0}, p1={p1}")
    upper, lower = sprt_bounds(alpha=alpha, beta=beta)
    step_violation = math.log(p1 / p0)
    step_clean = math.log((1.0 - p1) / (1.0 - p0))
    llr = 0.0
    violations = 0
    for index, violated in enumerate(outcomes, start=1):
        if violated:
            violations += 1
            llr += step_violation
        else:
            llr += step_clean
        if llr >= upper:
            return SprtResult("accept_h1", llr, upper, lower, index, violations)
        if llr <= lower:
            return SprtResult("accept_h0", llr, upper, lower, index, violations)
    return SprtResult("continue", llr, upper, lower, len(outcomes), violations)


@dataclass(frozen=True)
class SprtMonitorResult:
    """A sequential test restarted after every all-clear and stopped at the first alarm.

    `deciding` is the alarm, or else the latest all-clear (None before any decision);
    `current` is the segment the monitor ended in: the alarm itself, or the undecided
    reviews after the latest all-clear.
    """

    decision: SprtDecision
    deciding: SprtResult | None
    deciding_start: int
    current: SprtResult
    current_start: int
    clears: int


def sprt_monitor(
    outcomes: Sequence[bool], *, p0: float, p1: float, alpha: float, beta: float
) -> SprtMonitorResult:
    """Monitor a violation rate: Wald's SPRT, restarted after each acceptance of H0.

    A single SPRT stops for good once it accepts H0, so a version that later degrades
    would never be flagged; restarting after each all-clear (as a CUSUM does) keeps
    watching. The decision is the alarm if one happened, else the latest all-clear.
    """
    start = clears = 0
    last_clear: SprtResult | None = None
    last_clear_start = 0
    while True:
        segment = sprt_bernoulli(outcomes[start:], p0=p0, p1=p1, alpha=alpha, beta=beta)
        if segment.decision == "accept_h1":
            return SprtMonitorResult("accept_h1", segment, start, segment, start, clears)
        if segment.decision == "continue":
            decision: SprtDecision = "accept_h0" if last_clear else "continue"
            return SprtMonitorResult(decision, last_clear, last_clear_start, segment, start, clears)
        clears += 1
        last_clear, last_clear_start = segment, start
        start += segment.n_used


def quantile(values: Sequence[float], q: float) -> float:
    """Sample quantile with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("cannot take a quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile level must be within [0, 1], got {q}")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def binomial_cdf_table(n: int, p: float) -> list[float]:
    """P(X <= k) for k = 0..n with X ~ Binomial(n, p), summed in log space to avoid overflow."""
    if n < 0 or not 0.0 < p < 1.0:
        raise ValueError(f"need n >= 0 and 0 < p < 1, got n={n}, p={p}")
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n_factorial = math.lgamma(n + 1)
    table: list[float] = []
    running = 0.0
    for k in range(n + 1):
        log_pmf = (
            log_n_factorial
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + k * log_p
            + (n - k) * log_q
        )
        running += math.exp(log_pmf)
        table.append(min(running, 1.0))
    return table


def quantile_lower_bound(values: Sequence[float], q: float, *, confidence: float) -> float:
    """Distribution-free one-sided lower confidence bound for the q-quantile; -inf if too few.

    The bound is the largest order statistic X_(l) with P(Bin(n, q) <= l - 1) <=
    1 - confidence, so P(X_(l) <= true quantile) >= confidence for any distribution.
    """
    _check_confidence(confidence)
    _check_quantile_level(q)
    if not values:
        return -math.inf
    ordered = sorted(values)
    rank = _lower_rank(binomial_cdf_table(len(ordered), q), tail=1.0 - confidence)
    return float(ordered[rank - 1]) if rank is not None else -math.inf


def quantile_upper_lower_bound(
    values: Sequence[float], q: float, *, confidence: float
) -> tuple[float, float]:
    """Distribution-free two-sided confidence interval (lower, upper) for the q-quantile.

    The bounds are order statistics chosen with the exact binomial distribution, each tail
    holding at most (1 - confidence) / 2. A bound the sample is too small to support is
    returned as -inf / +inf. For a one-sided test use quantile_lower_bound instead.
    """
    _check_confidence(confidence)
    _check_quantile_level(q)
    n = len(values)
    if n == 0:
        return -math.inf, math.inf
    ordered = sorted(values)
    tail = (1.0 - confidence) / 2.0
    cdf = binomial_cdf_table(n, q)
    lower_rank = _lower_rank(cdf, tail=tail)
    # P(X_(u) >= quantile) = P(Bin(n, q) <= u - 1) = cdf[u - 1]: take the smallest such u.
    upper_rank = min(
        (rank for rank in range(1, n + 1) if cdf[rank - 1] >= 1.0 - tail), default=None
    )
    lower = ordered[lower_rank - 1] if lower_rank is not None else -math.inf
    upper = ordered[upper_rank - 1] if upper_rank is not None else math.inf
    return float(lower), float(upper)


def _check_quantile_level(q: float) -> None:
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be strictly between 0 and 1, got {q}")


def _lower_rank(cdf: list[float], *, tail: float) -> int | None:
    # P(X_(l) > quantile) <= P(Bin(n, q) <= l - 1) = cdf[l - 1]: take the largest l whose
    # miss chance stays within the tail, or None when even X_(1) is not low enough.
    return max((rank for rank in range(1, len(cdf)) if cdf[rank - 1] <= tail), default=None)
