"""A healthy rate measured on data keeps its promise with the stated probability, at any size."""

import math

import pytest

from agentops.triggers.cusum import design_measured_bank, rate_upper_bound
from agentops.triggers.joint import bank_interval

TRUE_RATE = 0.03
GUARANTEE = 0.90
TARGET = 5000.0


def binomial_mass(k: int, n: int, rate: float) -> float:
    """P(K = k) for K ~ Binomial(n, rate)."""
    return math.exp(
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        + k * math.log(rate) + (n - k) * math.log1p(-rate)
    )


@pytest.mark.parametrize("n", [300, 1000, 3000, 10_000])
def test_an_estimated_baseline_keeps_its_guarantee_at_any_size(n: int) -> None:
    """Exact over every count the baseline can show: 90% of draws keep the promise.

    A bank is calibrated at the count's one-sided upper bound, and a bank's interval only
    grows as the true rate falls below its calibration rate. So every count whose bound
    reaches the true rate keeps the promise, and those counts are all counts from the
    smallest such one, k_min, up: their probability is summed exactly. The bank at k_min,
    the hardest case, is checked at the true rate by an independent simulation (another
    seed than the calibration's).
    """
    k_min = next(
        k for k in range(n + 1) if rate_upper_bound(k, n, confidence=GUARANTEE) >= TRUE_RATE
    )
    kept = sum(binomial_mass(k, n, TRUE_RATE) for k in range(k_min, n + 1))
    assert kept >= GUARANTEE
    bank = design_measured_bank(
        successes=k_min, n=n, guarantee=GUARANTEE, degraded_low=0.06, degraded_high=0.30,
        target=TARGET,
    )
    assert bank.calibrated_rate >= TRUE_RATE
    truth = bank_interval(bank.lattices(), rate=TRUE_RATE, seed=n)
    # The hardest count keeps the promise, within the simulations' errors (about 2% each).
    assert truth.value >= TARGET * (1 - 0.02) - 2 * truth.error, (n, k_min, truth)
    # One count fewer is calibrated below the true rate: the promise is then not assured.
    assert rate_upper_bound(k_min - 1, n, confidence=GUARANTEE) < TRUE_RATE
