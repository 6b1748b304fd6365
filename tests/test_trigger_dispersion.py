"""Overdispersion of a rate, measured on per-period counts of a baseline."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agentops.triggers.dispersion import estimate_dispersion, measure, period_counts
from agentops.triggers.evaluate import Observation


def beta_binomial_counts(
    *, rate: float, rho: float, size: int, periods: int, seed: int
) -> list[tuple[int, int]]:
    """Per-period counts whose period rates are Beta with mean `rate` and correlation rho."""
    rng = np.random.default_rng(seed)
    if rho == 0:
        rates = np.full(periods, rate)
    else:
        # Beta(a, b) with a + b = 1 / rho - 1 has intra-period correlation rho.
        strength = 1.0 / rho - 1.0
        rates = rng.beta(rate * strength, (1 - rate) * strength, size=periods)
    return [(size, int(x)) for x in rng.binomial(size, rates)]


def test_a_known_dispersion_is_recovered() -> None:
    # The escalation rate varying about +-20% from day to day: 10% +- 1.2 points.
    rho = 0.0016
    estimates = [
        estimate_dispersion(
            beta_binomial_counts(rate=0.10, rho=rho, size=1500, periods=60, seed=seed),
            period="day",
        )
        for seed in range(40)
    ]
    mean_rho = float(np.mean([estimate.rho for estimate in estimates]))
    assert mean_rho == pytest.approx(rho, rel=0.15)
    # The inflation a day carries: 1 + 1499 rho, about 3.4.
    assert float(np.mean([e.inflation() for e in estimates])) == pytest.approx(
        1 + 1499 * rho, rel=0.15
    )
    # Homogeneity is rejected for almost every such baseline.
    assert sum(not estimate.homogeneous for estimate in estimates) >= 38


def test_independent_draws_look_independent() -> None:
    estimates = [
        estimate_dispersion(
            beta_binomial_counts(rate=0.10, rho=0.0, size=1500, periods=60, seed=seed),
            period="day",
        )
        for seed in range(100)
    ]
    assert float(np.mean([estimate.phi for estimate in estimates])) == pytest.approx(1.0, abs=0.05)
    # The test keeps its size: about 1% of independent baselines are called dependent.
    assert sum(not estimate.homogeneous for estimate in estimates) <= 5
    assert all(estimate.rho < 0.001 for estimate in estimates)


def test_a_short_baseline_is_flagged_and_periods_are_counted_in_utc() -> None:
    start = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    observations = [
        Observation(index, start + timedelta(minutes=20 * index), index % 4 == 0)
        for index in range(9)
    ]
    # 23:30, 23:50 on the first day; seven more from 00:10 on the next.
    assert period_counts(observations, period="day") == [(2, 1), (7, 2)]
    measured = measure(observations)
    assert measured["day"].too_short and measured["hour"].too_short
    assert "too short" in measured["day"].summary()
