"""Reviews plus certified checks in one CUSUM chart, calibrated exactly (pure, numpy).

A policy trigger watches reviewed violations (rate p0 healthy, p1 degraded). A certified
check adds a second stream: its flags on every conversation. The flag rate when healthy,
f0, is measured on the last known-good version, so the false-alarm promise needs no
assumption about the check's quality. When the violation rate rises by p1 - p0, the flag
rate rises by at least (p1 - p0)·(TPR_lower - (1 - TNR_lower)): the degraded flag rate
f1 = f0 + that shift follows from the certification's lower bounds.

The combined detector is one chart on the sum of both streams' log-likelihood ratios (the
likelihood-ratio CUSUM for a change that moves both). Observations arrive mixed: a share
q of them are reviews. Put on one integer lattice, the chart is a Markov chain with four
moves (review or conversation, event or not), and its average run lengths come from one
linear solve, as for the single-stream charts (triggers.cusum): the threshold is the
smallest whose exact healthy run length reaches the promised interval.
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from agentops.triggers.cusum import chart_delay, design_chart, llr_steps

MAX_STATES = 1500


@dataclass(frozen=True)
class Stream:
    """One yes/no stream: its healthy and degraded rates and observations per hour."""

    healthy: float
    degraded: float
    per_hour: float


@dataclass(frozen=True)
class CombinedChart:
    """A lattice chart over several streams: integer (up, down) per stream and a threshold."""

    streams: tuple[Stream, ...]
    steps: tuple[tuple[int, int], ...]
    unit: float
    threshold: int
    false_alarm_hours: float

    @property
    def per_hour(self) -> float:
        """Observations per hour over all streams."""
        return sum(stream.per_hour for stream in self.streams)

    def hours_to_detect(self, rates: tuple[float, ...]) -> float:
        """Exact expected hours to alarm from a fresh chart at these true rates."""
        return _run_length(self.steps, self.shares, rates, self.threshold) / self.per_hour

    @property
    def shares(self) -> tuple[float, ...]:
        """Each stream's share of the observations."""
        return tuple(stream.per_hour / self.per_hour for stream in self.streams)


def flag_rates(
    *, healthy_flag_rate: float, healthy: float, degraded: float, tpr_lower: float, tnr_lower: float
) -> tuple[float, float] | None:
    """(f0, f1): the measured healthy flag rate and the least degraded one; None if no shift."""
    shift = (degraded - healthy) * (tpr_lower - (1.0 - tnr_lower))
    if shift <= 0 or not 0 < healthy_flag_rate < 1 or healthy_flag_rate + shift >= 1:
        return None
    return healthy_flag_rate, healthy_flag_rate + shift


def expected_flag_rate(violation_rate: float, *, tpr: float, tnr: float) -> float:
    """The share of conversations a check with this TPR/TNR flags at a violation rate."""
    return violation_rate * tpr + (1.0 - violation_rate) * (1.0 - tnr)


def design_combined(streams: tuple[Stream, ...], *, false_alarm_hours: float) -> CombinedChart:
    """The smallest threshold whose exact healthy interval is at least false_alarm_hours."""
    per_hour = sum(stream.per_hour for stream in streams)
    target = false_alarm_hours * per_hour
    nats = [llr_steps(stream.healthy, stream.degraded) for stream in streams]
    # One unit for every stream: fine enough that the smallest step has ~8 lattice steps
    # and the threshold stays within MAX_STATES.
    expected = math.log(target)
    unit = max(min(down for _, down in nats) / 8, 1.05 * expected / MAX_STATES)
    steps = tuple((max(1, round(up / unit)), max(1, round(down / unit))) for up, down in nats)
    shares = tuple(stream.per_hour / per_hour for stream in streams)
    healthy = tuple(stream.healthy for stream in streams)

    def arl(threshold: int) -> float:
        return _run_length(steps, shares, healthy, threshold)

    low, high = 1, max(2, int(0.8 * expected / unit))
    while arl(high) < target:
        low, high = high, min(MAX_STATES, high * 2)
        if low == MAX_STATES:
            raise ValueError("the promised interval needs a chart too fine to solve")
    while high - low > 1:
        middle = (low + high) // 2
        if arl(middle) >= target:
            high = middle
        else:
            low = middle
    return CombinedChart(streams, steps, unit, high, arl(high) / per_hour)


@lru_cache(maxsize=1024)
def _run_length(
    steps: tuple[tuple[int, int], ...],
    shares: tuple[float, ...],
    rates: tuple[float, ...],
    threshold: int,
) -> float:
    """Expected observations to alarm from state 0 of the mixed-stream lattice chart."""
    states = np.arange(threshold)
    matrix = np.eye(threshold)
    for (up, down), share, rate in zip(steps, shares, rates, strict=True):
        rises = states + up
        stays = rises < threshold
        np.add.at(matrix, (states[stays], rises[stays]), -share * rate)
        np.add.at(matrix, (states, np.maximum(states - down, 0)), -share * (1.0 - rate))
    return float(np.linalg.solve(matrix, np.ones(threshold))[0])


def hours_to_detect_single(stream: Stream, *, false_alarm_hours: float, rate: float) -> float:
    """Expected hours for one stream's own chart (triggers.cusum) to alarm at a true rate."""
    target = false_alarm_hours * stream.per_hour
    chart = design_chart(
        healthy_rate=stream.healthy,
        degraded_rate=stream.degraded,
        calibrated_rate=stream.healthy,
        target=target,
    )

    return chart_delay(chart, rate) / stream.per_hour


@dataclass(frozen=True)
class DetectionPlan:
    """Expected hours to detect a degraded rate with reviews only, checks only and both."""

    false_alarm_hours: float
    reviews_only: float | None
    checks_only: float | None
    both: float | None

    def to_json(self) -> dict[str, float | None]:
        """JSON-ready form."""
        return {
            "false_alarm_hours": self.false_alarm_hours,
            "reviews_only": self.reviews_only,
            "checks_only": self.checks_only,
            "both": self.both,
        }


def plan_detection(
    *,
    healthy: float,
    degraded: float,
    false_alarm_hours: float,
    reviews_per_hour: float | None,
    conversations_per_hour: float | None,
    tpr: float,
    tnr: float,
    checks_only: bool = True,
) -> DetectionPlan:
    """Time to detect from the expected volumes, the check at the owner's minimum TPR/TNR.

    Each figure designs its own chart (a few linear solves); `checks_only=False` skips
    the checks-only one when it is not shown.
    """
    reviews = Stream(healthy, degraded, reviews_per_hour) if reviews_per_hour else None
    rates = flag_rates(
        healthy_flag_rate=expected_flag_rate(healthy, tpr=tpr, tnr=tnr),
        healthy=healthy,
        degraded=degraded,
        tpr_lower=tpr,
        tnr_lower=tnr,
    )
    check = (
        Stream(rates[0], rates[1], conversations_per_hour)
        if rates is not None and conversations_per_hour
        else None
    )

    def hours(*streams: Stream | None) -> float | None:
        if any(stream is None for stream in streams):
            return None
        chosen = tuple(s for s in streams if s is not None)
        chart = design_combined(chosen, false_alarm_hours=false_alarm_hours)
        return chart.hours_to_detect(tuple(stream.degraded for stream in chosen))

    return DetectionPlan(
        false_alarm_hours,
        hours(reviews),
        hours(check) if checks_only else None,
        hours(reviews, check),
    )
