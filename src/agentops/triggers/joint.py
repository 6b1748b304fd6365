"""A bank of charts calibrated as a whole: its own false-alarm interval and delays.

Each chart's run length is exact (a small Markov chain), but the bank's is not: the
charts read the same stream, so the joint chain has the product of their state counts
(hundreds of millions for four charts), which nothing solves exactly. The bank's interval
comes from a regenerative identity instead, estimated by simulation:

    every time all charts stand at zero together the bank starts afresh, so
    interval = E[observations in a cycle] / P(a cycle ends in an alarm),

where a cycle runs from all-zero to all-zero again or to an alarm. Cycles are short, so
the mean length is plain Monte Carlo. The alarm probability is tiny (one in thousands to
millions) and comes from importance sampling: cycles are drawn at a raised rate (for each
chart, the Siegmund tilt under which its drift turns upward; a defensive mixture over the
charts) and reweighted by the likelihood ratio. Both estimates use fixed seeds (common
random numbers), so the calibration is deterministic and the interval is a smooth, monotone
function of the thresholds; the standard error is reported with it.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# (up, down, threshold) per chart, on each chart's own integer lattice.
Lattice = Sequence[tuple[int, int, int]]
# Cycles drawn for each estimate: about 2% relative error on the interval, in about a second.
TILTED_CYCLES = 16_000
HEALTHY_CYCLES = 40_000
DELAY_RUNS = 3_000
SEED = 20_261_207


@dataclass(frozen=True)
class Estimate:
    """A simulated figure and its standard error."""

    value: float
    error: float

    @property
    def relative_error(self) -> float:
        """The standard error as a share of the value."""
        return self.error / self.value if self.value else math.inf


def _arrays(charts: Lattice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ups = np.array([c[0] for c in charts], dtype=np.int64)[:, None]
    downs = np.array([c[1] for c in charts], dtype=np.int64)[:, None]
    limits = np.array([c[2] for c in charts], dtype=np.int64)[:, None]
    return ups, downs, limits


def siegmund_tilt(*, up: int, down: int, rate: float) -> float:
    """The raised rate q = rate e^(t up), where rate e^(t up) + (1 - rate) e^(-t down) = 1."""
    # The chart's mean step must be negative at a healthy rate for a positive root.
    if rate * up >= (1.0 - rate) * down:
        return rate

    def excess(theta: float) -> float:
        return rate * math.exp(theta * up) + (1.0 - rate) * math.exp(-theta * down) - 1.0

    low, high = 1e-9, 1.0
    while excess(high) < 0:
        high *= 2
    for _ in range(80):
        middle = (low + high) / 2
        if excess(middle) < 0:
            low = middle
        else:
            high = middle
    return min(rate * math.exp(high * up), 0.999)


def alarm_probability(
    charts: Lattice, *, rate: float, cycles: int = TILTED_CYCLES, seed: int = SEED
) -> Estimate:
    """P(a cycle from all-zero alarms before all charts are back at zero), importance-sampled."""
    ups, downs, limits = _arrays(charts)
    tilts = np.array([siegmund_tilt(up=u, down=d, rate=rate) for u, d, _ in charts])
    rng = np.random.default_rng(seed)
    q = tilts[np.arange(cycles) % len(charts)].astype(np.float32)
    # A cycle that opens with a non-event ends at once: every cycle here opens with an
    # event, drawn at its true probability (the factor `rate` below), not tilted.
    events = np.zeros(cycles, dtype=np.int64)
    quiet = np.zeros(cycles, dtype=np.int64)
    alarmed = np.zeros(cycles, dtype=bool)
    ids = np.arange(cycles)
    state = np.repeat(ups, cycles, axis=1)
    while ids.size:
        # Cycle i always reads column i of the draws: common random numbers across banks.
        draws = rng.random(cycles, dtype=np.float32)[ids] < q[ids]
        state = np.where(draws, state + ups, np.maximum(state - downs, 0))
        events[ids] += draws
        quiet[ids] += ~draws
        hit = (state >= limits).any(axis=0)
        alarmed[ids[hit]] = True
        keep = ~(hit | (state == 0).all(axis=0))
        ids, state = ids[keep], state[:, keep]
    # Weight: the path's probability at the true rate over its mixture probability.
    log_true = events * math.log(rate) + quiet * math.log1p(-rate)
    log_each = events[None, :] * np.log(tilts)[:, None] + quiet[None, :] * np.log1p(-tilts)[:, None]
    top = log_each.max(axis=0)
    log_mixture = top + np.log(np.exp(log_each - top).mean(axis=0))
    weights = rate * np.where(alarmed, np.exp(log_true - log_mixture), 0.0)
    return Estimate(float(weights.mean()), float(weights.std() / math.sqrt(cycles)))


@lru_cache(maxsize=256)
def cycle_length(
    charts: tuple[tuple[int, int, int], ...],
    *,
    rate: float,
    cycles: int = HEALTHY_CYCLES,
    seed: int = SEED + 1,
) -> Estimate:
    """Mean observations from all-zero to all-zero again or to an alarm, at the true rate."""
    ups, downs, limits = _arrays(charts)
    rng = np.random.default_rng(seed)
    # As above, the cycles that open with an event; the others last one observation:
    # E[length] = 1 + rate * E[length after an opening event].
    total = np.zeros(0, dtype=np.int64)
    state = np.repeat(ups, cycles, axis=1)
    length = np.zeros(cycles, dtype=np.int64)
    ended = (state >= limits).any(axis=0)
    total, state, length = length[ended], state[:, ~ended], length[~ended]
    while state.shape[1]:
        draws = rng.random(state.shape[1], dtype=np.float32) < rate
        state = np.where(draws, state + ups, np.maximum(state - downs, 0))
        length += 1
        ended = (state >= limits).any(axis=0) | (state == 0).all(axis=0)
        total = np.concatenate([total, length[ended]])
        state, length = state[:, ~ended], length[~ended]
    return Estimate(1.0 + rate * float(total.mean()), rate * float(total.std() / math.sqrt(cycles)))


def bank_interval(
    charts: Lattice,
    *,
    rate: float,
    tilted_cycles: int = TILTED_CYCLES,
    healthy_cycles: int = HEALTHY_CYCLES,
    seed: int = SEED,
    length_from: Lattice | None = None,
) -> Estimate:
    """The bank's expected observations to a false alarm from all-zero at a true rate.

    length_from: take the mean cycle length from these nearby thresholds instead (a
    calibration's search: the length hardly moves with the thresholds, the alarm
    probability does).
    """
    alarm = alarm_probability(charts, rate=rate, cycles=tilted_cycles, seed=seed)
    length = cycle_length(
        tuple(length_from or charts), rate=rate, cycles=healthy_cycles, seed=seed + 1
    )
    value = length.value / alarm.value
    relative = math.hypot(alarm.relative_error, length.relative_error)
    return Estimate(value, value * relative)


def bank_delay(
    charts: Lattice, *, rate: float, runs: int = DELAY_RUNS, seed: int = SEED + 2
) -> Estimate:
    """The bank's expected observations to alarm from a fresh start, simulated."""
    ups, downs, limits = _arrays(charts)
    rng = np.random.default_rng(seed)
    state = np.zeros((len(charts), runs), dtype=np.int64)
    delays = np.zeros(0, dtype=np.int64)
    step = 0
    while state.shape[1]:
        step += 1
        draws = rng.random(state.shape[1], dtype=np.float32) < rate
        state = np.where(draws, state + ups, np.maximum(state - downs, 0))
        hit = (state >= limits).any(axis=0)
        delays = np.concatenate([delays, np.full(int(hit.sum()), step)])
        state = state[:, ~hit]
    return Estimate(float(delays.mean()), float(delays.std() / math.sqrt(runs)))


@lru_cache(maxsize=512)
def cached_bank_delay(charts: tuple[tuple[int, int, int], ...], rate: float) -> Estimate:
    """bank_delay, once per process for each bank and rate."""
    return bank_delay(charts, rate=rate)


@lru_cache(maxsize=512)
def cached_bank_interval(charts: tuple[tuple[int, int, int], ...], rate: float) -> Estimate:
    """bank_interval, once per process for each bank and rate."""
    return bank_interval(charts, rate=rate)
