"""The CUSUM bank's maths: exact run lengths, calibration, the healthy rate's bound."""

import itertools
import math
from datetime import timedelta

import numpy as np
import pytest

from agentops.store.models import utcnow
from agentops.triggers.cusum import (
    MAX_CHARTS,
    ChartState,
    bank_rates,
    binomial_cdf,
    chart_delay,
    design_bank,
    design_chart,
    design_measured_bank,
    lattice,
    llr_steps,
    rate_upper_bound,
    run_length,
)
from agentops.triggers.evaluate import Healthy, Observation, TriggerState, sparkline


def simulated_interval(
    charts: list[tuple[int, int, int]], *, rate: float, chains: int, steps: int, seed: int
) -> tuple[float, float]:
    """Independent Monte Carlo: alarms per observation over many restarted charts."""
    rng = np.random.default_rng(seed)
    ups = np.array([c[0] for c in charts])[:, None]
    downs = np.array([c[1] for c in charts])[:, None]
    limits = np.array([c[2] for c in charts])[:, None]
    state = np.zeros((len(charts), chains), dtype=np.int64)
    alarms = 0
    for events in rng.random((steps, chains)) < rate:
        state = np.where(events, state + ups, np.maximum(state - downs, 0))
        hit = (state >= limits).any(axis=0)
        alarms += int(hit.sum())
        state[:, hit] = 0
    estimate = chains * steps / alarms
    return estimate, estimate / math.sqrt(alarms)


def test_run_length_matches_a_chain_solved_by_hand() -> None:
    # States 0 and 1, +1 on an event, -1 otherwise, alarm at 2: L0 = (1 + p) / p^2.
    for p in (0.1, 0.5, 0.9):
        assert run_length(up=1, down=1, threshold=2, rate=p) == pytest.approx((1 + p) / p**2)


def test_llr_steps_and_lattice_keep_the_ratio() -> None:
    up, down = llr_steps(0.03, 0.06)
    assert up == pytest.approx(math.log(2))
    assert down == pytest.approx(math.log(0.97 / 0.94))
    steps_up, steps_down, unit = lattice(up, down, expected_threshold=10)
    assert math.gcd(steps_up, steps_down) == 1
    assert steps_down * unit == pytest.approx(down)
    assert steps_up * unit == pytest.approx(up, rel=0.03)
    with pytest.raises(ValueError, match="healthy rate < degraded rate"):
        llr_steps(0.06, 0.03)


def test_each_calibrated_threshold_matches_an_independent_monte_carlo() -> None:
    bank = design_bank(healthy_rate=0.05, degraded_low=0.10, degraded_high=0.40, target=600)
    assert [round(c.degraded_rate, 3) for c in bank.charts] == [0.1, 0.159, 0.252, 0.4]
    for index, chart in enumerate(bank.charts):
        # Each chart's own interval is exact and at least the bank's common factor.
        assert chart.false_alarm_every == pytest.approx(
            run_length(up=chart.up, down=chart.down, threshold=chart.threshold, rate=0.05)
        )
        assert chart.false_alarm_every >= 600 * bank.factor
        simulated, error = simulated_interval(
            [(chart.up, chart.down, chart.threshold)],
            rate=0.05,
            chains=600,
            steps=6000,
            seed=index,
        )
        assert abs(simulated - chart.false_alarm_every) < 4 * error, (chart, simulated)


def test_the_bank_is_calibrated_as_a_whole() -> None:
    """The bank's own interval, not a fixed factor, meets the promise, at several designs."""
    for healthy, low, high, target in (
        (0.05, 0.10, 0.40, 600),
        (0.03, 0.06, 0.30, 5000),
        (0.10, 0.15, 0.40, 3000),
    ):
        bank = design_bank(
            healthy_rate=healthy, degraded_low=low, degraded_high=high, target=target
        )
        lattices = [(c.up, c.down, c.threshold) for c in bank.charts]
        # The joint simulation's own figure: on the target (within its 1% tolerance).
        assert abs(bank.interval / target - 1) <= 0.02
        assert bank.interval_error < 0.03 * bank.interval
        # An independent plain Monte Carlo of the bank agrees within the two errors.
        simulated, error = simulated_interval(
            lattices, rate=healthy, chains=2000, steps=3 * target, seed=7
        )
        assert abs(simulated - bank.interval) < 4 * math.hypot(error, bank.interval_error)
        assert simulated > 0.95 * target
        # Not one fixed factor: each design finds its own.
        assert bank.factor != pytest.approx(2.35, abs=0.01)


def test_delay_is_exact_and_bounds_the_bank() -> None:
    bank = design_bank(healthy_rate=0.05, degraded_low=0.10, degraded_high=0.40, target=600)
    for rate in (0.10, 0.40):
        delays = [chart_delay(chart, rate) for chart in bank.charts]
        assert bank.delay_bound(rate) == min(delays)
    # Worse degradation is noticed sooner.
    assert bank.delay_bound(0.40) < bank.delay_bound(0.20) < bank.delay_bound(0.10)


def test_bank_rates_are_geometric_and_cover_the_range() -> None:
    rates = bank_rates(0.06, 0.30)
    assert len(rates) == 4 and rates[0] == 0.06 and rates[-1] == 0.30
    ratios = [b / a for a, b in itertools.pairwise(rates)]
    assert max(ratios) == pytest.approx(min(ratios)) and max(ratios) <= 1.71
    assert bank_rates(0.1, 0.1) == [0.1]
    assert len(bank_rates(0.001, 0.9)) == MAX_CHARTS


def test_rate_upper_bound_covers_the_true_rate_at_its_confidence() -> None:
    n = 200
    for true in (0.01, 0.03, 0.1):
        coverage = sum(
            binomial_cdf(k, n, true) - (binomial_cdf(k - 1, n, true) if k else 0.0)
            for k in range(n + 1)
            if rate_upper_bound(k, n, confidence=0.9) >= true
        )
        assert coverage >= 0.9
    assert rate_upper_bound(0, 100, confidence=0.9) == pytest.approx(1 - 0.1 ** (1 / 100))


def test_a_measured_rate_is_calibrated_at_its_upper_bound() -> None:
    stated = design_bank(healthy_rate=0.03, degraded_low=0.06, degraded_high=0.30, target=5000)
    measured = design_measured_bank(
        successes=30, n=1000, guarantee=0.9, degraded_low=0.06, degraded_high=0.30, target=5000
    )
    upper = rate_upper_bound(30, 1000, confidence=0.9)
    assert measured.calibrated_rate == upper > 0.03
    for chart in measured.charts:
        # Exactly the target factor at the upper bound, so more at any lower true rate.
        assert chart_delay(chart, upper) >= 5000 * measured.factor
        assert chart_delay(chart, 0.03) > chart_delay(chart, upper)
    # Uncertainty costs delay.
    assert measured.delay_bound(0.10) > stated.delay_bound(0.10)


def test_an_impossible_design_is_refused() -> None:
    with pytest.raises(ValueError, match="not below the degraded rates"):
        design_bank(healthy_rate=0.5, degraded_low=0.1, degraded_high=0.4, target=1000)
    with pytest.raises(ValueError, match="too fine to solve"):
        design_chart(healthy_rate=0.03, degraded_rate=0.031, calibrated_rate=0.03, target=1e12)


def test_chart_state_tracks_the_change_point() -> None:
    chart = ChartState()
    for position, event in enumerate([False, True, False, True, True], start=1):
        chart.step(event=event, up=5, down=1, position=position)
    assert (chart.value, chart.left_zero_at, chart.since_n, chart.since_events) == (14, 2, 4, 3)
    for position in range(6, 30):
        chart.step(event=False, up=5, down=1, position=position)
    assert (chart.value, chart.left_zero_at, chart.since_n) == (0, None, 0)


def test_trigger_state_alarms_holds_and_resets() -> None:
    bank = design_bank(healthy_rate=0.05, degraded_low=0.10, degraded_high=0.40, target=600)
    state = TriggerState.start(bank, Healthy(0.05, 0.05, "stated"))
    start = utcnow()
    quiet = [Observation(i, start + timedelta(minutes=i), False) for i in range(50)]
    state.feed(quiet)
    assert state.alarm is None and state.ratio() == 0
    burst = [Observation(100 + i, start + timedelta(hours=1, minutes=i), True) for i in range(10)]
    state.feed(burst)
    assert state.alarm is not None
    first = state.alarm["position"]
    assert 50 < first <= 60 and state.alarm["id"] == 100 + first - 51
    crossed = state.alarm["explain"][state.alarm["charts"][0]]
    assert crossed["change_point"] == 51
    assert crossed["event_ids_since_change"][0] == 100
    # The charts hold still after an alarm; the counts go on.
    state.feed(quiet[:5])
    assert state.alarm["position"] == first and state.observations == 65
    round_trip = TriggerState.from_json(state.to_json())
    assert round_trip.alarm == state.alarm
    state.reset()
    assert state.alarm is None and state.ratio() == 0 and state.resets == 1
    assert sparkline([[1, 0.0], [2, 0.5], [3, 1.0]]) == "▁▅█"
