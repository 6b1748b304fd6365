"""Overdispersion of a rate, measured on per-period counts of a baseline."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlmodel import Session

from agentops.triggers.dispersion import estimate_dispersion, measure, period_counts
from agentops.triggers.evaluate import Observation
from agentops.triggers.guarded import design_guarded_bank, guarded_delay, guarded_interval
from agentops.triggers.service import evaluate_version, register_trigger_set
from factories import Fleet, conversation, degraded_fleet


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


DEPENDENCE_TRIGGERS = """\
version: 1
agent: airline
triggers:
  - name: escalations
    kind: escalation_rate
    healthy_rate: 0.15
    degraded_rates: [0.30, 0.50]
    false_alarm_every: 2000
"""


def _days_of_traffic(
    session: Session, fleet: Fleet, *, rates: list[float], per_day: int
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day, rate in enumerate(rates):
        escalated = round(rate * per_day)
        for index in range(per_day):
            session.add(
                conversation(
                    fleet.agent,
                    fleet.good,
                    external_id=f"d{day}-{index}",
                    started_at=start + timedelta(days=day, minutes=10 * index),
                    escalated=index < escalated,
                )
            )
    session.flush()


def test_an_evaluation_shows_the_baselines_dispersion(session: Session) -> None:
    fleet = degraded_fleet(session)
    # A healthy v1 whose escalation rate swings from day to day: 5% and 25%, alternately.
    _days_of_traffic(session, fleet, rates=[0.05, 0.25] * 10, per_day=100)
    trigger_set = register_trigger_set(
        session, agent=fleet.agent, text=DEPENDENCE_TRIGGERS, source="t", actor="t"
    )
    report = evaluate_version(
        session, agent=fleet.agent, version=fleet.bad, trigger_set=trigger_set, actor="t"
    )
    dependence = report.evaluations[0].evidence["dependence"]
    assert dependence["source"] == "last known good v1"
    day = dependence["day"]
    assert day["periods"] == 20 and not day["homogeneous"] and not day["too_short"]
    # Days of 100 at 5% or 25%: phi = 100 * 0.01 / (0.15 * 0.85) + about 1, about 8.8.
    assert day["phi"] == pytest.approx(1 + 100 * 0.01 / (0.15 * 0.85), rel=0.1)
    assert "NOT independent" in day["summary"]
    assert "warning" not in dependence


def test_a_short_baseline_warns(session: Session) -> None:
    fleet = degraded_fleet(session)
    _days_of_traffic(session, fleet, rates=[0.15, 0.15, 0.15], per_day=40)
    trigger_set = register_trigger_set(
        session, agent=fleet.agent, text=DEPENDENCE_TRIGGERS, source="t", actor="t"
    )
    report = evaluate_version(
        session, agent=fleet.agent, version=fleet.bad, trigger_set=trigger_set, actor="t"
    )
    dependence = report.evaluations[0].evidence["dependence"]
    assert dependence["day"]["too_short"]
    assert "too short to measure day-to-day variation" in dependence["warning"]


def test_a_guarded_bank_keeps_its_promise_on_overdispersed_days() -> None:
    """Calibrated at the measured rho, the promise holds on such days (another seed).

    About 20 s on a quiet machine: a calibration bisects the common threshold over
    simulated days, and this is the one test of that calibration under dependence.
    """
    bank = design_guarded_bank(
        healthy_rate=0.10, degraded_low=0.15, degraded_high=0.40, target=10_000,
        period_size=50, rho=0.02,
    )
    assert bank.inflation == pytest.approx(1.98)
    held = guarded_interval(bank, rate=0.10, rho=0.02, seed=5)
    assert 0.8 <= held.value / 10_000 <= 1.25
    # Days twice as dispersed as measured break the promise: rho must be measured.
    broken = guarded_interval(bank, rate=0.10, rho=0.06, seed=5)
    assert broken.value < 0.8 * 10_000
    # A degraded rate is still noticed within days.
    assert guarded_delay(bank, rate=0.40, rho=0.02, runs=300).value <= 3 * 50
