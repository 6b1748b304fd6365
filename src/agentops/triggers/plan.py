"""What a trigger file promises before launch: thresholds, false-alarm interval, delays."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentops.triggers.config import AnyTrigger, TriggerFile
from agentops.triggers.cusum import (
    BankDesign,
    design_bank,
    design_measured_bank,
    rate_upper_bound,
)

# Sample sizes shown for a healthy rate measured on data.
PLANNING_SAMPLES = (300, 1000, 3000)


@dataclass(frozen=True)
class TriggerPlan:
    """One trigger's calibration and expected delays, in its unit and in days."""

    trigger: AnyTrigger
    promised: float
    per_day: float | None
    bank: BankDesign | None
    # (true rate, the bank's own simulated delay, its standard error, the exact bound).
    delays: list[tuple[float, float, float, float]] = field(default_factory=list)
    data_needed: list[dict[str, float]] = field(default_factory=list)
    note: str = ""

    def days(self, observations: float) -> float | None:
        """Observations converted to days at the file's expected volume."""
        return observations / self.per_day if self.per_day else None

    def to_json(self) -> dict[str, Any]:
        """The machine-readable form printed by `triggers check --json`."""
        trigger, bank = self.trigger, self.bank
        return {
            "name": trigger.name,
            "kind": trigger.kind,
            "unit": trigger.unit,
            "promised_false_alarm_every": self.promised,
            "false_alarm_every": bank.false_alarm_every if bank else None,
            "false_alarm_every_days": self.days(bank.false_alarm_every) if bank else None,
            "healthy_rate": bank.healthy_rate if bank else trigger.healthy_rate,
            "calibrated_rate": bank.calibrated_rate if bank else None,
            "healthy_from": trigger.healthy_from,
            "false_alarm_every_error": bank.interval_error if bank else None,
            "bank_factor": bank.factor if bank else None,
            "thresholds": [
                {
                    "degraded_rate": chart.degraded_rate,
                    "threshold": chart.threshold_nats,
                    "chart_false_alarm_every": chart.false_alarm_every,
                    "lattice": {"up": chart.up, "down": chart.down, "steps": chart.threshold},
                }
                for chart in (bank.charts if bank else ())
            ],
            "delays": [
                {
                    "rate": rate,
                    "expected_delay": delay,
                    "expected_delay_error": error,
                    "expected_delay_days": self.days(delay),
                    "delay_bound": bound,
                }
                for rate, delay, error, bound in self.delays
            ],
            "data_needed": self.data_needed,
            "note": self.note,
        }


def default_rates(trigger: AnyTrigger) -> list[float]:
    """Where to report delays by default: the low and high ends and two rates between."""
    low, high = trigger.degraded_low, trigger.degraded_high
    if high <= low:
        return [low]
    return [low * (high / low) ** (step / 3) for step in range(4)]


def plan_trigger(
    triggers: TriggerFile, trigger: AnyTrigger, *, rates: Sequence[float] | None = None
) -> TriggerPlan:
    """Calibrate the trigger as an evaluation would and report what it promises."""
    promised = triggers.observations(trigger)
    per_day = triggers.per_day(trigger)
    chosen = list(rates) if rates else default_rates(trigger)
    healthy = trigger.healthy_rate
    if healthy is None:
        healthy = trigger.expected_healthy_rate
        if healthy is None:
            return TriggerPlan(
                trigger, promised, per_day, None,
                note=(
                    f"healthy rate measured on the last known-good version (at least "
                    f"{trigger.min_healthy_samples} {trigger.unit}); add "
                    "expected_healthy_rate to see thresholds and delays here"
                ),
            )
        samples = sorted({trigger.min_healthy_samples, *PLANNING_SAMPLES})
        data_needed = [
            _with_samples(trigger, promised=promised, healthy=healthy, n=n) for n in samples
        ]
        successes = round(healthy * trigger.min_healthy_samples)
        calibrated = rate_upper_bound(
            successes, trigger.min_healthy_samples, confidence=trigger.guarantee
        )
        bank = design_measured_bank(
            successes=successes,
            n=trigger.min_healthy_samples,
            guarantee=trigger.guarantee,
            degraded_low=trigger.degraded_low,
            degraded_high=trigger.degraded_high,
            target=promised,
        )
        note = (
            f"healthy rate measured on the last known-good version; shown for an expected "
            f"{healthy:.2%} from {trigger.min_healthy_samples:,} {trigger.unit}, calibrated at "
            f"its one-sided {trigger.guarantee:.0%} upper bound {calibrated:.2%} so the "
            f"promise holds with probability {trigger.guarantee:.0%}"
        )
    else:
        data_needed, note = [], ""
        bank = design_bank(
            healthy_rate=healthy,
            degraded_low=trigger.degraded_low,
            degraded_high=trigger.degraded_high,
            target=promised,
        )
    delays = [
        (rate, own.value, own.error, bank.delay_bound(rate))
        for rate in chosen
        for own in [bank.delay(rate)]
    ]
    return TriggerPlan(trigger, promised, per_day, bank, delays, data_needed, note)


def _with_samples(
    trigger: AnyTrigger, *, promised: float, healthy: float, n: int
) -> dict[str, float]:
    upper = rate_upper_bound(round(healthy * n), n, confidence=trigger.guarantee)
    try:
        bank = design_measured_bank(
            successes=round(healthy * n),
            n=n,
            guarantee=trigger.guarantee,
            degraded_low=trigger.degraded_low,
            degraded_high=trigger.degraded_high,
            target=promised,
        )
    except ValueError:
        return {"samples": n, "calibrated_rate": upper, "delay_low": math.inf}
    return {
        "samples": n,
        "calibrated_rate": upper,
        "delay_low": bank.delay_bound(trigger.degraded_low),
        "delay_high": bank.delay_bound(trigger.degraded_high),
    }
