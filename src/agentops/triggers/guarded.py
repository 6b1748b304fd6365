"""A bank guarded against dependent traffic: per-period counts, overdispersed likelihood.

The iid bank reads each observation as an independent draw. When the rate itself drifts
from day to day, a run of bad-but-healthy hours looks like a degradation and the bank
alarms far sooner than promised. The guarded bank reads one day at a time: a day of n
observations with x events adds to each chart its log-likelihood ratio divided by the
day's variance inflation phi_n = 1 + (n - 1) rho (a quasi-likelihood: the beta-binomial's
variance in place of the binomial's), and never goes below zero. Under a normal
approximation, dividing by phi_n restores the CUSUM's exp(threshold) run length that the
inflation broke (Wald's identity holds again for the scaled increments), so the charts
stay comparable; the common threshold is then found for the bank as a whole by simulating
beta-binomial days at the measured rho, with common random numbers and a standard error.

What it costs: an alarm can only come when a day closes, and a day says 1/phi_n as much as
n independent draws, so a degradation takes longer to notice. Both are printed.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from agentops.triggers.cusum import bank_rates, llr_steps
from agentops.triggers.joint import Estimate

SEED = 20_261_208
# Draws the events of `count` periods: (generator, count) -> events per period.
PeriodSampler = Callable[[np.random.Generator, int], np.ndarray]
CHAINS = 2_000
# Periods simulated per chain for the interval: several intervals' worth, at least this many.
MIN_PERIODS = 2_000


@dataclass(frozen=True)
class GuardedBank:
    """Charts over per-period counts with a common threshold in (scaled) nats."""

    healthy_rate: float
    degraded_rates: tuple[float, ...]
    period_size: float
    rho: float
    threshold: float
    target: float
    interval: float
    interval_error: float

    @property
    def inflation(self) -> float:
        """The variance inflation of one period: 1 + (n - 1) rho."""
        return 1.0 + max(0.0, self.period_size - 1.0) * self.rho

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """Each chart's nats per event and per non-event (before the inflation)."""
        pairs = [llr_steps(self.healthy_rate, rate) for rate in self.degraded_rates]
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    def increments(self, n: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Each chart's addition for periods of n observations with x events (charts x periods)."""
        up, down = self.steps()
        inflation = 1.0 + np.maximum(n - 1.0, 0.0) * self.rho
        added: np.ndarray = x[None, :] * up[:, None] - (n - x)[None, :] * down[:, None]
        return added / inflation


def period_draws(
    rng: np.random.Generator, *, rate: float, rho: float, size: int, count: int
) -> np.ndarray:
    """Events in `count` periods of `size` observations, beta-binomial with correlation rho."""
    if rho <= 0:
        return rng.binomial(size, rate, count).astype(float)
    strength = 1.0 / rho - 1.0
    rates = rng.beta(rate * strength, (1.0 - rate) * strength, count)
    return rng.binomial(size, rates).astype(float)


def beta_binomial_sampler(*, rate: float, rho: float, size: int) -> PeriodSampler:
    """Periods of `size` observations, beta-binomial at this rate and rho."""
    return lambda rng, count: period_draws(rng, rate=rate, rho=rho, size=size, count=count)


def run_periods(
    bank: GuardedBank,
    threshold: float,
    *,
    sampler: PeriodSampler,
    chains: int,
    periods: int,
    seed: int,
) -> tuple[int, int]:
    """Alarms and periods over restarted chains (regenerative) on any period sampler."""
    rng = np.random.default_rng(seed)
    size = max(1, round(bank.period_size))
    n = np.full(chains, float(size))
    values = np.zeros((len(bank.degraded_rates), chains))
    alarms = 0
    for _ in range(periods):
        x = sampler(rng, chains)
        values = np.maximum(values + bank.increments(n, x), 0.0)
        hit = (values >= threshold).any(axis=0)
        if hit.any():
            alarms += int(hit.sum())
            values[:, hit] = 0.0
    return alarms, chains * periods


def guarded_interval(
    bank: GuardedBank,
    *,
    rate: float,
    rho: float,
    threshold: float | None = None,
    chains: int = CHAINS,
    periods: int | None = None,
    seed: int = SEED,
    sampler: PeriodSampler | None = None,
) -> Estimate:
    """Observations to a false alarm on beta-binomial (or sampled) periods, restarted chains."""
    expected = bank.target / bank.period_size
    periods = periods or max(MIN_PERIODS, round(4 * expected * 1000 / chains))
    size = max(1, round(bank.period_size))
    alarms, total = run_periods(
        bank,
        bank.threshold if threshold is None else threshold,
        sampler=sampler or beta_binomial_sampler(rate=rate, rho=rho, size=size),
        chains=chains,
        periods=periods,
        seed=seed,
    )
    value = total / max(alarms, 1) * bank.period_size
    return Estimate(value, value / math.sqrt(max(alarms, 1)))


def guarded_delay(
    bank: GuardedBank,
    *,
    rate: float,
    rho: float,
    runs: int = 2_000,
    seed: int = SEED + 1,
    sampler: PeriodSampler | None = None,
) -> Estimate:
    """Observations to alarm from a fresh start, degraded from a period's start; whole periods."""
    rng = np.random.default_rng(seed)
    size = max(1, round(bank.period_size))
    sampler = sampler or beta_binomial_sampler(rate=rate, rho=rho, size=size)
    values = np.zeros((len(bank.degraded_rates), runs))
    delays: list[int] = []
    step = 0
    while values.shape[1] and step < 100_000:
        step += 1
        x = sampler(rng, values.shape[1])
        values = np.maximum(values + bank.increments(np.full(x.size, float(size)), x), 0.0)
        hit = (values >= bank.threshold).any(axis=0)
        delays += [step * size] * int(hit.sum())
        values = values[:, ~hit]
    array = np.array(delays, dtype=float)
    return Estimate(float(array.mean()), float(array.std() / math.sqrt(max(array.size, 1))))


def design_guarded_bank(
    *,
    healthy_rate: float,
    degraded_low: float,
    degraded_high: float,
    target: float,
    period_size: float,
    rho: float,
    calibrated_rate: float | None = None,
    baseline: Sequence[float] | None = None,
) -> GuardedBank:
    """A common threshold whose simulated interval at the measured rho meets the target.

    baseline: the baseline's own events per period (periods of period_size). With it, the
    healthy periods are drawn from those counts (a bootstrap) instead of a beta-binomial:
    the shape of the day-to-day variation, not only its variance, sets how often a run of
    bad-but-healthy days occurs, and 60 days of a baseline say more about that shape than
    any family assumed for it. Only for a baseline whose homogeneity test failed: on
    independent traffic the baseline's own rate (not the stated one) would set the
    calibration, and a few events a day resample poorly.
    """
    sampler: PeriodSampler | None = None
    if baseline is not None:
        pool = np.asarray(baseline, dtype=float)
        sampler = lambda rng, count: pool[rng.integers(0, pool.size, count)]  # noqa: E731
    rates = tuple(rate for rate in bank_rates(degraded_low, degraded_high) if rate > healthy_rate)
    if not rates:
        raise ValueError(f"the healthy rate {healthy_rate:.4g} is not below the degraded rates")
    at = calibrated_rate if calibrated_rate is not None else healthy_rate
    draft = GuardedBank(healthy_rate, rates, period_size, rho, 0.0, target, math.nan, math.nan)
    periods_target = target / period_size
    if periods_target < 2:
        raise ValueError("the false-alarm interval is shorter than two periods")
    # The run length grows with the threshold, in steps where a day's counts are
    # coarse (at high volume a chart starts each day from zero, and only a day's own
    # count can cross): bisection on (0, ln(periods) + 4], the same random numbers for
    # every candidate, keeping the candidate closest to the target.
    low, high = 0.0, math.log(periods_target) + 4.0
    tried: list[tuple[float, Estimate]] = []
    for _ in range(14):
        threshold = (low + high) / 2
        estimate = guarded_interval(
            draft, rate=at, rho=rho, threshold=threshold, sampler=sampler
        )
        tried.append((threshold, estimate))
        if abs(math.log(estimate.value / target)) < 0.01:
            break
        if estimate.value < target:
            low = threshold
        else:
            high = threshold
    threshold, estimate = min(tried, key=lambda pair: abs(math.log(pair[1].value / target)))
    return GuardedBank(
        healthy_rate, rates, period_size, rho, threshold, target, estimate.value, estimate.error
    )
