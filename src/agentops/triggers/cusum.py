"""Bernoulli CUSUM banks: one detector for every trigger, calibrated exactly.

Every trigger watches a rate: each review or conversation is a yes/no draw (a policy
violation, an escalation, a reply slower than the limit...). A chart accumulates the
log-likelihood ratio of "degraded rate p1" against "healthy rate p0" and alarms when it
reaches its threshold; it never goes below zero, so evidence of health cannot pile up
(Page's CUSUM). A bank of charts with degraded rates spaced geometrically over the
range the user cares about is close to the ideal CUSUM tuned to whatever rate occurs.

Thresholds are exact, not simulated: each chart's increments are put on an integer
lattice (the chart *is* the lattice chart, so nothing is approximated afterwards) and its
average run length comes from solving the Markov chain's linear system (Brook and Evans
1972), a sparse system of up to a few thousand states (scipy).

A bank alarms sooner than any of its charts. Its charts share one factor (each chart's
exact interval is factor x the promise) and the factor is found for each bank, at its
own rates and promise, from the bank's own interval, simulated (joint.py).

A healthy rate estimated from data is uncertain, and the false-alarm interval is very
sensitive to it. With `guarantee` set, the chart's increments use the estimate but its
threshold is calibrated under the one-sided Clopper-Pearson upper bound of the rate: the
run length only grows as the true rate falls, so the promised interval holds whenever
the true rate is below that bound, i.e. with probability at least `guarantee` over the
estimation (guaranteed conditional performance, Gandy and Kvaløy 2013).
"""

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from agentops.triggers.joint import Estimate

# Consecutive degraded rates of a bank differ by at most this factor (6% .. 30% in four).
BANK_SPACING = 1.71
MAX_CHARTS = 8
# A bank alarms sooner than any one chart. Its charts share one factor: each chart's own
# exact interval is factor x the promise, the factor being found for this bank, at its
# rates and promise, by the joint simulation in joint.py. These are only starting guesses.
FIRST_GUESS = {1: 1.0, 2: 1.55, 3: 1.9, 4: 2.35, 5: 2.8, 6: 2.85, 7: 2.95, 8: 3.1}
# Calibration stops once the bank's simulated interval is within this share above the
# target (or half of it below): finer than the simulation's own error of about 2%.
CALIBRATION_TOLERANCE = 0.01
CALIBRATION_ROUNDS = 6
# The bank's delays are simulated up to this bound; beyond it only the bound is shown.
MAX_SIMULATED_DELAY = 20_000
# At most this many single-step threshold raises after the factor search.
MAX_RAISES = 16
# Lattice resolution: a chart has at most about this many states below its threshold.
TARGET_STATES = 500
MAX_STATES = 1500


@dataclass(frozen=True)
class ChartDesign:
    """One calibrated chart: lattice increments, threshold and its exact interval."""

    healthy_rate: float
    degraded_rate: float
    up: int
    down: int
    unit: float
    threshold: int
    false_alarm_every: float

    @property
    def threshold_nats(self) -> float:
        """The threshold in log-likelihood-ratio units (nats)."""
        return self.threshold * self.unit


@dataclass(frozen=True)
class BankDesign:
    """A calibrated bank of charts and what it promises."""

    healthy_rate: float
    calibrated_rate: float
    target: float
    charts: tuple[ChartDesign, ...]
    # How much longer each chart's own interval is than the bank's promise.
    factor: float = 1.0
    # The bank's own interval at the calibrated rate (simulated, with its standard error;
    # exact, error 0, for a single chart). NaN: not known (a state stored before).
    interval: float = math.nan
    interval_error: float = math.nan

    @property
    def false_alarm_every(self) -> float:
        """The bank's own interval at the calibrated rate."""
        if math.isnan(self.interval):
            return min(chart.false_alarm_every for chart in self.charts) / self.factor
        return self.interval

    def lattices(self) -> tuple[tuple[int, int, int], ...]:
        """(up, down, threshold) of each chart: what the bank simulations run."""
        return tuple((chart.up, chart.down, chart.threshold) for chart in self.charts)

    def delay(self, rate: float) -> "Estimate":
        """The bank's own expected delay from a fresh start at a true rate (simulated)."""
        from agentops.triggers.joint import Estimate, cached_bank_delay

        if len(self.charts) == 1:
            return Estimate(chart_delay(self.charts[0], rate), 0.0)
        bound = self.delay_bound(rate)
        if bound > MAX_SIMULATED_DELAY:
            # Near or below the healthy rate the wait is as long as a false alarm's:
            # only the bound is given (error NaN), not thousands of simulated steps.
            return Estimate(bound, math.nan)
        return cached_bank_delay(self.lattices(), rate)

    def delay_bound(self, rate: float) -> float:
        """Expected observations to alarm at a true rate, from a fresh start (an upper bound).

        The bank alarms no later than any of its charts, so the best chart's exact delay
        bounds the bank's; a fresh start (all charts at zero) is the worst case.
        """
        return min(chart_delay(chart, rate) for chart in self.charts)


def llr_steps(healthy_rate: float, degraded_rate: float) -> tuple[float, float]:
    """Log-likelihood-ratio increments (added on an event, removed on a non-event), in nats."""
    if not 0.0 < healthy_rate < degraded_rate < 1.0:
        raise ValueError(
            f"need 0 < healthy rate < degraded rate < 1, got {healthy_rate}, {degraded_rate}"
        )
    up = math.log(degraded_rate / healthy_rate)
    down = math.log((1.0 - healthy_rate) / (1.0 - degraded_rate))
    return up, down


def lattice(
    up_nats: float, down_nats: float, *, expected_threshold: float
) -> tuple[int, int, float]:
    """Integer increments (up, down) and the unit (nats per step) closest to the true ratio."""
    ratio = up_nats / down_nats
    most_down = max(1, math.floor(TARGET_STATES * down_nats / expected_threshold))
    best: tuple[float, int, int] | None = None
    for down in range(1, most_down + 1):
        for up in {max(1, math.floor(ratio * down)), max(1, math.ceil(ratio * down))}:
            # A common divisor would make the lattice coarser than it looks, and the
            # interval can only move by a whole (coarse) step: what counts is the real
            # step in nats. The ratio's rounding matters ten times less for the delay.
            step = down_nats / (down // math.gcd(up, down))
            score = 0.1 * abs(up / down - ratio) / ratio + step
            if best is None or score < best[0]:
                best = (score, up, down)
    assert best is not None
    _, up, down = best
    divisor = math.gcd(up, down)
    up, down = up // divisor, down // divisor
    # The unit keeps the non-event step exact; the event step carries the rounding.
    return up, down, down_nats / down


def run_lengths(*, up: int, down: int, threshold: int, rate: float) -> "np.ndarray":
    """Exact expected observations to alarm from every lattice state 0..threshold-1."""
    import numpy as np  # here: commands that only read triggers (approve, report) skip numpy
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    if threshold > MAX_STATES:
        raise ValueError(f"a chart of {threshold} lattice states is too fine to solve")
    # (I - P) L = 1, where each state moves up (unless that alarms) or down to at least 0.
    states = np.arange(threshold)
    rises = states + up
    stays = rises < threshold
    rows = np.concatenate([states, states[stays], states])
    columns = np.concatenate([states, rises[stays], np.maximum(states - down, 0)])
    values = np.concatenate(
        [np.ones(threshold), np.full(int(stays.sum()), -rate), np.full(threshold, rate - 1.0)]
    )
    matrix = coo_matrix((values, (rows, columns)), shape=(threshold, threshold)).tocsc()
    return np.asarray(spsolve(matrix, np.ones(threshold)))


def run_length(*, up: int, down: int, threshold: int, rate: float) -> float:
    """Exact expected observations to alarm from a fresh chart (state 0)."""
    return float(run_lengths(up=up, down=down, threshold=threshold, rate=rate)[0])


def chart_delay(chart: ChartDesign, rate: float) -> float:
    """Exact expected observations for this chart to alarm from zero at a true rate."""
    return _cached_run_length(chart.up, chart.down, chart.threshold, rate)


@lru_cache(maxsize=4096)
def _cached_run_length(up: int, down: int, threshold: int, rate: float) -> float:
    return run_length(up=up, down=down, threshold=threshold, rate=rate)


@lru_cache(maxsize=256)
def design_chart(
    *, healthy_rate: float, degraded_rate: float, calibrated_rate: float, target: float
) -> ChartDesign:
    """The smallest threshold whose exact interval at calibrated_rate reaches target."""
    up, down, unit = chart_lattice(healthy_rate, degraded_rate, target=target)
    return chart_on_lattice(
        healthy_rate, degraded_rate, (up, down, unit), calibrated_rate=calibrated_rate,
        target=target,
    )


def chart_lattice(
    healthy_rate: float, degraded_rate: float, *, target: float
) -> tuple[int, int, float]:
    """The chart's integer increments and unit for a false-alarm interval near target."""
    up_nats, down_nats = llr_steps(healthy_rate, degraded_rate)
    return lattice(up_nats, down_nats, expected_threshold=max(1.0, math.log(target)))


def chart_on_lattice(
    healthy_rate: float,
    degraded_rate: float,
    steps: tuple[int, int, float],
    *,
    calibrated_rate: float,
    target: float,
) -> ChartDesign:
    """The smallest threshold on this lattice whose exact interval reaches target."""
    up, down, unit = steps
    threshold = _smallest_threshold(
        up=up, down=down, unit=unit, rate=calibrated_rate, target=target
    )
    interval = _cached_run_length(up, down, threshold, calibrated_rate)
    return ChartDesign(healthy_rate, degraded_rate, up, down, unit, threshold, interval)


def _smallest_threshold(*, up: int, down: int, unit: float, rate: float, target: float) -> int:
    def arl(threshold: int) -> float:
        return _cached_run_length(up, down, threshold, rate)

    # The run length grows about exponentially in the threshold. Start a little under
    # Wald's bound ln(target), gallop to a bracket, then bisect on the integers: the
    # answer is exact whatever the guess; a good guess only saves solves.
    guess = min(MAX_STATES, max(1, int(0.8 * math.log(target) / unit)))
    step = max(1, guess // 16)
    if arl(guess) >= target:
        high = guess
        low = max(0, high - step)
        while low > 0 and arl(low) >= target:
            high, step = low, step * 2
            low = max(0, high - step)
    else:
        low = guess
        high = low + step
        while arl(high) < target:
            low, step = high, step * 2
            high = low + step
            if high > MAX_STATES:
                raise ValueError(
                    f"a false-alarm interval of {target:,.0f} needs a chart too fine to "
                    "solve; choose a shorter interval or degraded rates further from the "
                    "healthy rate"
                )
    while high - low > 1:
        middle = (low + high) // 2
        if arl(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def bank_rates(low: float, high: float) -> list[float]:
    """Degraded rates spaced geometrically from low to high, at most BANK_SPACING apart."""
    if high <= low:
        return [low]
    count = min(MAX_CHARTS, math.ceil(math.log(high / low) / math.log(BANK_SPACING) - 1e-9) + 1)
    step = (high / low) ** (1.0 / (count - 1))
    return [low * step**index for index in range(count - 1)] + [high]


def design_bank(
    *,
    healthy_rate: float,
    degraded_low: float,
    degraded_high: float,
    target: float,
    calibrated_rate: float | None = None,
) -> BankDesign:
    """Calibrate a bank as a whole: its own simulated interval meets the target."""
    if target < 2:
        raise ValueError(f"a false-alarm interval must be at least 2 observations, got {target}")
    rates = tuple(rate for rate in bank_rates(degraded_low, degraded_high) if rate > healthy_rate)
    if not rates:
        raise ValueError(
            f"the healthy rate {healthy_rate:.4g} is not below the degraded rates "
            f"[{degraded_low:g}, {degraded_high:g}]"
        )
    at = calibrated_rate if calibrated_rate is not None else healthy_rate
    return _calibrated_bank(healthy_rate, rates, at, float(target))


def _charts(
    healthy_rate: float,
    rates: tuple[float, ...],
    steps: list[tuple[int, int, float]],
    at: float,
    per_chart: float,
) -> tuple[ChartDesign, ...]:
    return tuple(
        chart_on_lattice(healthy_rate, rate, lattice_steps, calibrated_rate=at, target=per_chart)
        for rate, lattice_steps in zip(rates, steps, strict=True)
    )


@lru_cache(maxsize=256)
def _calibrated_bank(
    healthy_rate: float, rates: tuple[float, ...], at: float, target: float
) -> BankDesign:
    factor = FIRST_GUESS.get(len(rates), 3.0)
    # The lattices stay fixed while the factor moves, so only thresholds change and the
    # bank's interval moves monotonically with the factor.
    steps = [chart_lattice(healthy_rate, rate, target=target * factor) for rate in rates]
    if len(rates) == 1:
        (chart,) = _charts(healthy_rate, rates, steps, at, target)
        return BankDesign(healthy_rate, at, target, (chart,), 1.0, chart.false_alarm_every, 0.0)
    # The bank's interval grows about in proportion to the factor, so a few proportional
    # corrections land on it. The simulations share their random numbers, so two candidate
    # banks' intervals differ by their thresholds, not by simulation noise.
    first = _charts(healthy_rate, rates, steps, at, target * factor)
    tried: list[BankDesign] = []

    def simulate(
        factor: float, charts: tuple[ChartDesign, ...], near: BankDesign | None = None
    ) -> BankDesign:
        # Raises of a step or a few keep the cycle length of the bank they start from.
        reference = near.lattices() if near is not None else None
        bank = _simulated_bank(healthy_rate, at, target, factor, charts, reference)
        tried.append(bank)
        return bank

    def close_enough(bank: BankDesign) -> bool:
        ratio = bank.interval / target
        return 1.0 - CALIBRATION_TOLERANCE / 2 <= ratio <= 1.0 + CALIBRATION_TOLERANCE

    bank = simulate(factor, first)
    for _ in range(CALIBRATION_ROUNDS):
        if close_enough(bank):
            break
        factor *= (1.0 + CALIBRATION_TOLERANCE / 4) * target / bank.interval
        charts = _charts(healthy_rate, rates, steps, at, target * factor)
        if any(charts == other.charts for other in tried):
            break
        bank = simulate(factor, charts)
    # Whole lattice steps can jump past the target: from the closest bank short of it,
    # raise one chart at a time (the one whose own interval is shortest, skipping a chart
    # whose raise changed nothing) until the bank reaches the target.
    best = min(tried, key=lambda bank: abs(math.log(bank.interval / target)))
    shorts = [bank for bank in tried if bank.interval < target]
    if not close_enough(best) and shorts:
        bank = start = max(shorts, key=lambda bank: bank.interval)
        stuck: set[int] = set()
        for _ in range(MAX_RAISES):
            free = [index for index in range(len(rates)) if index not in stuck]
            if not free:
                break
            weakest = min(free, key=lambda index: bank.charts[index].false_alarm_every)
            raised_charts = list(bank.charts)
            chart = raised_charts[weakest]
            raised = chart.threshold + 1
            raised_charts[weakest] = ChartDesign(
                chart.healthy_rate, chart.degraded_rate, chart.up, chart.down, chart.unit,
                raised, _cached_run_length(chart.up, chart.down, raised, at),
            )
            candidate = simulate(bank.factor, tuple(raised_charts), near=start)
            if candidate.interval > target * (1.0 + CALIBRATION_TOLERANCE):
                stuck.add(weakest)
                continue
            if candidate.interval == bank.interval:
                stuck.add(weakest)
            else:
                stuck.clear()
            bank = candidate
            if close_enough(bank):
                break
        best = min(tried, key=lambda bank: abs(math.log(bank.interval / target)))
    # The figure reported is the bank's own: its cycle length at its own thresholds.
    return _simulated_bank(healthy_rate, at, target, best.factor, best.charts)


def _simulated_bank(
    healthy_rate: float,
    at: float,
    target: float,
    factor: float,
    charts: tuple[ChartDesign, ...],
    length_from: tuple[tuple[int, int, int], ...] | None = None,
) -> BankDesign:
    from agentops.triggers.joint import bank_interval

    estimate = bank_interval(
        tuple((c.up, c.down, c.threshold) for c in charts), rate=at, length_from=length_from
    )
    return BankDesign(healthy_rate, at, target, charts, factor, estimate.value, estimate.error)


def design_measured_bank(
    *,
    successes: int,
    n: int,
    guarantee: float,
    degraded_low: float,
    degraded_high: float,
    target: float,
) -> BankDesign:
    """A bank for a healthy rate counted on n observations, keeping its promise anyway.

    The threshold is calibrated at the rate's one-sided upper bound. The charts' own
    reference rate is the estimate or the bound, whichever detects the middle of the
    degraded range sooner: far below the bound, charts built on the estimate would drift
    up under the bound and need a very high threshold.
    """
    estimate = estimated_healthy_rate(successes, n)
    upper = rate_upper_bound(successes, n, confidence=guarantee)
    middle = math.sqrt(degraded_low * degraded_high)
    problem = f"the healthy rate's upper bound {upper:.4g} is not below the degraded rates"
    # Choose the reference on single charts (exact and cheap), then calibrate only the
    # chosen bank as a whole: a joint calibration costs seconds.
    best: tuple[float, float] | None = None
    for reference in (estimate, upper):
        if reference >= degraded_high:
            continue
        rates = [rate for rate in bank_rates(degraded_low, degraded_high) if rate > reference]
        if not rates:
            continue
        per_chart = target * FIRST_GUESS.get(len(rates), 3.0)
        try:
            delay = min(
                chart_delay(
                    design_chart(
                        healthy_rate=reference, degraded_rate=rate, calibrated_rate=upper,
                        target=per_chart,
                    ),
                    middle,
                )
                for rate in rates
            )
        except ValueError as exc:
            problem = str(exc)
            continue
        if best is None or delay < best[0]:
            best = (delay, reference)
    if best is None:
        raise ValueError(problem)
    return design_bank(
        healthy_rate=best[1],
        degraded_low=degraded_low,
        degraded_high=degraded_high,
        target=target,
        calibrated_rate=upper,
    )


def binomial_cdf(successes: int, n: int, rate: float) -> float:
    """P(X <= successes) for X ~ Binomial(n, rate), summed in log space."""
    if successes >= n:
        return 1.0
    if rate <= 0.0:
        return 1.0
    if rate >= 1.0:
        return 0.0
    log_p, log_q = math.log(rate), math.log1p(-rate)
    total = 0.0
    for k in range(successes + 1):
        total += math.exp(
            math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * log_p + (n - k) * log_q
        )
    return min(total, 1.0)


def rate_upper_bound(successes: int, n: int, *, confidence: float) -> float:
    """One-sided Clopper-Pearson upper confidence bound of a binomial rate (exact)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}, {n}")
    if successes == n:
        return 1.0
    low, high = successes / n, 1.0
    # P(X <= successes | rate) falls as the rate rises: bisect for 1 - confidence.
    for _ in range(60):
        middle = (low + high) / 2
        if binomial_cdf(successes, n, middle) > 1.0 - confidence:
            low = middle
        else:
            high = middle
    return high


def estimated_healthy_rate(successes: int, n: int) -> float:
    """The point estimate used for the charts' increments; never exactly zero."""
    # Half an event when none was seen: a zero rate would make one event infinite evidence.
    return max(successes, 0.5) / n


@dataclass
class ChartState:
    """One chart's running value, on its lattice, and what it has seen since leaving zero."""

    value: int = 0
    left_zero_at: int | None = None
    since_n: int = 0
    since_events: int = 0

    def step(self, *, event: bool, up: int, down: int, position: int) -> None:
        """Add one observation (its 1-based position in the version's stream)."""
        if event:
            if self.value == 0:
                self.left_zero_at = position
                self.since_n = self.since_events = 0
            self.value += up
        else:
            self.value = max(0, self.value - down)
        if self.value == 0:
            self.left_zero_at = None
            self.since_n = self.since_events = 0
        else:
            self.since_n += 1
            self.since_events += int(event)
