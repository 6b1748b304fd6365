"""Run one trigger's CUSUM bank over a version's stream of yes/no observations.

Plain Python over plain data: the service feeds new observations in time order and
stores the state between evaluations, so an evaluation costs what is new, not the
version's whole history.
"""

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from agentops.triggers.config import AnyTrigger
from agentops.triggers.cusum import BankDesign, ChartDesign, ChartState

TriggerOutcome = Literal["ok", "breach", "insufficient_data"]

# Evidence keeps every id it used, up to this many; the total is always recorded.
MAX_EVIDENCE_IDS = 500
# The statistic's history for the evidence's small chart: at most this many points.
HISTORY_POINTS = 120
SPARK = "▁▂▃▄▅▆▇█"
# Before every observation: where a reset acknowledged before any data falls.
STREAM_START = (datetime.min.replace(tzinfo=UTC), 0)


@dataclass(frozen=True)
class Observation:
    """One review or conversation: its id, time and whether the watched event happened."""

    id: int
    at: datetime
    event: bool


@dataclass(frozen=True)
class TriggerResult:
    """A trigger's verdict; statistic is the highest chart's share of its threshold."""

    name: str
    kind: str
    outcome: TriggerOutcome
    statistic: float | None
    threshold: float | None
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Healthy:
    """Where the healthy rate came from: stated, or counted on a known-good version."""

    rate: float
    calibrated_rate: float
    source: str
    successes: int | None = None
    n: int | None = None
    guarantee: float | None = None


@dataclass
class TriggerState:
    """A trigger's bank on one version: design, running charts, alarm and history."""

    design: list[dict[str, Any]]
    healthy: dict[str, Any]
    target: float
    factor: float
    charts: list[ChartState]
    event_ids: list[list[int]]
    observations: int = 0
    events: int = 0
    alarm: dict[str, Any] | None = None
    history: list[list[float]] = field(default_factory=list)
    stride: int = 1
    resets: int = 0
    # Where each acknowledged false alarm fell in the stream: the cursor's [time, id] then
    # (None: before the first observation). A replay re-applies them at those points.
    reset_marks: list[list[Any]] = field(default_factory=list)
    # Period-to-period variation of the rate measured on the baseline (the last known-good
    # version), per period: the independence the charts assume, checked. None: not measured.
    dependence: dict[str, Any] | None = None

    @classmethod
    def start(cls, bank: BankDesign, healthy: Healthy) -> "TriggerState":
        """A fresh bank, all charts at zero."""
        return cls(
            design=[asdict(chart) for chart in bank.charts],
            healthy=asdict(healthy),
            target=bank.target,
            factor=bank.factor,
            charts=[ChartState() for _ in bank.charts],
            event_ids=[[] for _ in bank.charts],
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TriggerState":
        """Rebuild the state stored by to_json."""
        values = dict(data)
        values["charts"] = [ChartState(**chart) for chart in data["charts"]]
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy for the store."""
        return asdict(self)

    def chart_designs(self) -> list[ChartDesign]:
        """The calibrated charts."""
        return [ChartDesign(**design) for design in self.design]

    def ratio(self) -> float:
        """The highest chart's value as a share of its threshold (1.0 alarms)."""
        return max(  # type: ignore[no-any-return]
            chart.value / design["threshold"]
            for chart, design in zip(self.charts, self.design, strict=True)
        )

    def feed(self, observations: Iterable[Observation]) -> None:
        """Add observations in time order; after an alarm the charts hold still."""
        for observation in observations:
            self.observations += 1
            self.events += int(observation.event)
            if self.alarm is not None:
                continue
            for chart, design, ids in zip(self.charts, self.design, self.event_ids, strict=True):
                was_zero = chart.value == 0
                chart.step(
                    event=observation.event,
                    up=design["up"],
                    down=design["down"],
                    position=self.observations,
                )
                if chart.value == 0 or (was_zero and observation.event):
                    ids.clear()
                if observation.event and chart.value > 0 and len(ids) < MAX_EVIDENCE_IDS:
                    ids.append(observation.id)
            self._remember(self.observations)
            crossed = [
                index
                for index, (chart, design) in enumerate(zip(self.charts, self.design, strict=True))
                if chart.value >= design["threshold"]
            ]
            if crossed:
                self.alarm = {
                    "position": self.observations,
                    "id": observation.id,
                    "at": observation.at.isoformat(),
                    "charts": crossed,
                    "explain": self.explain(),
                }

    def reset(self, *, mark: tuple[datetime, int] | None = None) -> None:
        """Acknowledge a false alarm after the observation `mark`: charts back to zero."""
        self.reset_marks.append([mark[0].isoformat(), mark[1]] if mark else None)  # type: ignore[arg-type]
        self._zero_charts()

    def _zero_charts(self) -> None:
        self.charts = [ChartState() for _ in self.charts]
        self.event_ids = [[] for _ in self.charts]
        self.alarm = None
        self.resets += 1
        self.history.append([float(self.observations), 0.0])

    def replay(self, observations: Iterable[Observation]) -> None:
        """Start again from zero and feed the whole stream, re-applying each reset in place.

        The calibration stays: the result is what feeding this stream from the start,
        with the same acknowledgements, would have given.
        """
        marks = sorted(
            (datetime.fromisoformat(mark[0]), mark[1]) if mark else STREAM_START
            for mark in self.reset_marks
        )
        self.charts = [ChartState() for _ in self.charts]
        self.event_ids = [[] for _ in self.charts]
        self.observations = self.events = self.resets = 0
        self.alarm = None
        self.history, self.stride = [], 1
        pending = iter(marks)
        mark = next(pending, None)
        for observation in observations:
            while mark is not None and (observation.at, observation.id) > mark:
                self._zero_charts()
                mark = next(pending, None)
            self.feed([observation])
        while mark is not None:
            self._zero_charts()
            mark = next(pending, None)

    def _remember(self, position: int) -> None:
        if position % self.stride:
            return
        self.history.append([float(position), round(self.ratio(), 4)])
        if len(self.history) > HISTORY_POINTS:
            # Halve the resolution, keeping each pair's higher point so peaks stay visible.
            pairs = zip(self.history[::2], self.history[1::2], strict=False)
            merged = [max(pair, key=lambda point: point[1]) for pair in pairs]
            if len(self.history) % 2:
                merged.append(self.history[-1])
            self.history = merged
            self.stride *= 2

    def explain(self) -> list[dict[str, Any]]:
        """Each chart's value, threshold, change point and the counts since then."""
        rows = []
        for chart, design, ids in zip(self.charts, self.design, self.event_ids, strict=True):
            unit = design["unit"]
            rows.append(
                {
                    "degraded_rate": round(design["degraded_rate"], 6),
                    "value": round(chart.value * unit, 4),
                    "threshold": round(design["threshold"] * unit, 4),
                    "share_of_threshold": round(chart.value / design["threshold"], 4),
                    "change_point": chart.left_zero_at,
                    "since_change": chart.since_n,
                    "events_since_change": chart.since_events,
                    "event_ids_since_change": list(ids),
                }
            )
        return rows


def sparkline(history: list[list[float]]) -> str:
    """The statistic over time as a terminal sparkline; a full block is the threshold."""
    return "".join(
        SPARK[min(len(SPARK) - 1, max(0, math.floor(point[1] * (len(SPARK) - 1) + 0.5)))]
        for point in history
    )


def verdict(
    trigger: AnyTrigger,
    state: TriggerState,
    *,
    needed: int,
    unit: str,
    per_day: float | None,
) -> TriggerResult:
    """The trigger's outcome and evidence from its current state."""
    ratio = state.ratio() if state.alarm is None else 1.0
    explain = state.alarm["explain"] if state.alarm else state.explain()
    event, events = EVENT_WORDS[trigger.kind]
    healthy = state.healthy
    top = max(range(len(explain)), key=lambda index: explain[index]["share_of_threshold"])
    chart = explain[top]
    if state.alarm is not None:
        outcome: TriggerOutcome = "breach"
        since = chart["since_change"]
        summary = (
            f"{event} rate looks degraded: chart {chart['degraded_rate']:.1%} crossed its "
            f"threshold at {unit[:-1]} #{state.alarm['position']} (id {state.alarm['id']}), "
            f"{chart['events_since_change']} {events} in {since} {unit} since its change point "
            f"(healthy {healthy['rate']:.2%})"
        )
    elif state.observations >= needed:
        outcome = "ok"
        summary = (
            f"{state.events} {events} in {state.observations} {unit}; highest chart at "
            f"{ratio:.0%} of its threshold (healthy {healthy['rate']:.2%})"
        )
    else:
        outcome = "insufficient_data"
        summary = (
            f"{state.observations} of the {needed} {unit} needed to clear the version "
            f"({state.events} {events}; highest chart at {ratio:.0%} of its threshold)"
        )
    evidence: dict[str, Any] = {
        "summary": summary,
        "test": "bernoulli_cusum_bank",
        "event": event,
        "events_word": events,
        "unit": unit,
        "healthy": healthy,
        "degraded_rates": list(trigger.degraded_rates),
        "false_alarm_every": state.target,
        "false_alarm_every_days": state.target / per_day if per_day else None,
        "bank_factor": state.factor,
        "observations": state.observations,
        "events": state.events,
        "needed_to_clear": needed,
        "charts": explain,
        "alarm": (
            {key: value for key, value in state.alarm.items() if key != "explain"}
            if state.alarm
            else None
        ),
        "resets": state.resets,
        "dependence": state.dependence,
        "history": state.history,
        "sparkline": sparkline(state.history),
        f"{unit[:-1]}_ids": chart["event_ids_since_change"],
    }
    return TriggerResult(trigger.name, trigger.kind, outcome, round(ratio, 4), 1.0, evidence)


EVENT_WORDS = {
    "policy_adherence": ("violation", "violations"),
    "escalation_rate": ("escalation", "escalations"),
    "latency": ("slow reply", "slow replies"),
    "negative_sentiment": ("negative conversation", "negative conversations"),
    "not_contained": ("unresolved conversation", "unresolved conversations"),
}
