"""Report computations over plain records: action stories, incidents, durations, notice time.

No database and no HTML here; queries.py loads the records and html.py renders them.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agentops.triggers.plan import TriggerPlan

YEAR_SECONDS = 365.25 * 86400


@dataclass(frozen=True)
class EventRecord:
    """One sealed audit event, as the report reads it."""

    seq: int
    occurred_at: datetime
    actor: str
    kind: str
    entity_type: str
    entity_id: str
    payload: dict[str, Any]
    channel: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class VersionRecord:
    """An agent version and when its traffic began."""

    id: int
    agent: str
    version: str
    status: str
    went_live_at: datetime | None
    first_conversation_at: datetime | None


@dataclass(frozen=True)
class EvaluationRecord:
    """One trigger evaluation with its statistic and threshold."""

    id: int
    agent: str
    version_id: int
    version: str
    trigger: str
    kind: str
    outcome: str
    statistic: float | None
    threshold: float | None
    evaluated_at: datetime
    trigger_set_version: int | None = None
    # The newest conversation of the version the store held when the trigger ran: the
    # traffic clock at detection (differs from wall clock when traffic is backfilled).
    traffic_seen_at: datetime | None = None
    summary: str | None = None
    # What the CUSUM bank had seen when it ran, from the evaluation's evidence.
    observations: int | None = None
    unit: str | None = None

    @property
    def share_of_threshold(self) -> float | None:
        """The statistic as a share of its threshold: 1.0 breaches, whatever the scale."""
        if self.statistic is None or not self.threshold:
            return None
        return self.statistic / self.threshold


@dataclass(frozen=True)
class ReviewRecord:
    """One submitted review: when its item was queued, claimed and judged, and by whom."""

    agent: str
    conversation_id: int
    reviewer: str
    queued_at: datetime
    submitted_at: datetime
    violation: bool


@dataclass
class ActionStory:
    """Everything that happened to one rollback or redeploy, from proposal to outcome."""

    correlation_id: str
    action_id: str
    agent: str | None = None
    kind: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    evaluation_id: int | None = None
    reason: str | None = None
    proposed_at: datetime | None = None
    proposed_by: str | None = None
    requested_at: datetime | None = None
    escalated_at: datetime | None = None
    escalated_to: str | None = None
    decided_at: datetime | None = None
    decision: str | None = None
    decided_by: str | None = None
    decision_role: str | None = None
    decision_channel: str | None = None
    decision_reason: str | None = None
    refusals: int = 0
    expired_at: datetime | None = None
    executed_at: datetime | None = None
    succeeded: bool | None = None
    detail: str | None = None
    events: list[EventRecord] = field(default_factory=list)

    @property
    def time_to_decide(self) -> timedelta | None:
        """Request to decision, or to expiry when nobody decided."""
        start = self.requested_at or self.proposed_at
        end = self.decided_at or self.expired_at
        return end - start if start and end else None

    @property
    def time_to_execute(self) -> timedelta | None:
        """Approval to a healthy target version (deploy plus health check)."""
        if self.decision != "approve" or not self.succeeded:
            return None
        return self.executed_at - self.decided_at if self.executed_at and self.decided_at else None

    @property
    def outcome(self) -> str:
        """Where the story ended."""
        if self.expired_at:
            return "expired"
        if self.decision == "reject":
            return "rejected"
        if self.succeeded is True:
            return "succeeded"
        if self.succeeded is False:
            return "failed"
        if self.decision == "approve":
            return "approved, not executed yet"
        return "escalated, waiting" if self.escalated_at else "waiting for a decision"


def story_key(event: EventRecord) -> str | None:
    """The story an event belongs to: its correlation id, or action:ID for action events."""
    if event.correlation_id:
        return event.correlation_id
    if event.entity_type == "action":
        return f"action:{event.entity_id}"
    return None


def build_stories(events: Iterable[EventRecord]) -> list[ActionStory]:
    """Group action events into one story per action, oldest first."""
    stories: dict[str, ActionStory] = {}
    for event in events:
        key = story_key(event)
        if key is None or not key.startswith("action:"):
            continue
        story = stories.get(key)
        if story is None:
            story = stories[key] = ActionStory(correlation_id=key, action_id=key.split(":", 1)[1])
        story.events.append(event)
        _apply(story, event)
    return sorted(stories.values(), key=lambda s: s.proposed_at or s.events[0].occurred_at)


def _apply(story: ActionStory, event: EventRecord) -> None:
    payload, when = event.payload, event.occurred_at
    story.agent = story.agent or payload.get("agent")
    if event.kind == "action.proposed":
        story.kind = payload.get("kind")
        story.from_version = payload.get("from_version")
        story.to_version = payload.get("to_version")
        story.evaluation_id = payload.get("evaluation_id")
        story.reason = payload.get("reason")
        story.proposed_at, story.proposed_by = when, event.actor
    elif event.kind == "approval.requested":
        story.requested_at = story.requested_at or when
    elif event.kind == "approval.escalated":
        story.escalated_at, story.escalated_to = when, payload.get("backup")
    elif event.kind == "approval.decided":
        story.decided_at, story.decision = when, payload.get("decision")
        story.decided_by, story.decision_role = event.actor, payload.get("role")
        story.decision_channel = event.channel or payload.get("channel")
        story.decision_reason = payload.get("reason")
    elif event.kind == "approval.refused":
        story.refusals += 1
    elif event.kind == "action.expired":
        story.expired_at = when
    elif event.kind == "action.executed":
        story.executed_at, story.succeeded = when, bool(payload.get("succeeded"))
        story.detail = payload.get("detail")
        story.kind = story.kind or payload.get("kind")
        story.from_version = story.from_version or payload.get("from_version")
        story.to_version = story.to_version or payload.get("to_version")


@dataclass
class Incident:
    """A trigger breach on one version, and what followed it."""

    agent: str
    version: str
    trigger: str
    kind: str
    evaluation_id: int
    breached_at: datetime
    statistic: float | None
    threshold: float | None
    summary: str | None
    breaches: int
    detect_from_live: timedelta | None
    detect_from_first_conversation: timedelta | None
    rollback: ActionStory | None = None
    fixed_by: ActionStory | None = None

    @property
    def back_to_fixed(self) -> timedelta | None:
        """Breach to a fixed version serving."""
        if self.fixed_by is None or self.fixed_by.executed_at is None:
            return None
        return self.fixed_by.executed_at - self.breached_at


def build_incidents(
    evaluations: Sequence[EvaluationRecord],
    versions: Sequence[VersionRecord],
    stories: Sequence[ActionStory],
) -> list[Incident]:
    """One incident per version and trigger that breached, linked to its rollback and fix."""
    by_version = {version.id: version for version in versions}
    first: dict[tuple[int, str], EvaluationRecord] = {}
    counts: dict[tuple[int, str], int] = defaultdict(int)
    for evaluation in sorted(evaluations, key=lambda e: e.evaluated_at):
        if evaluation.outcome != "breach":
            continue
        key = (evaluation.version_id, evaluation.trigger)
        first.setdefault(key, evaluation)
        counts[key] += 1
    incidents = []
    for key, evaluation in first.items():
        version = by_version.get(evaluation.version_id)
        live = version.went_live_at if version else None
        first_seen = version.first_conversation_at if version else None
        rollback = _rollback_for(evaluation, stories)
        incidents.append(
            Incident(
                agent=evaluation.agent,
                version=evaluation.version,
                trigger=evaluation.trigger,
                kind=evaluation.kind,
                evaluation_id=evaluation.id,
                breached_at=evaluation.evaluated_at,
                statistic=evaluation.statistic,
                threshold=evaluation.threshold,
                summary=evaluation.summary,
                breaches=counts[key],
                detect_from_live=_span(live, evaluation.evaluated_at),
                detect_from_first_conversation=_span(first_seen, evaluation.traffic_seen_at),
                rollback=rollback,
                fixed_by=_fix_after(evaluation, rollback, stories),
            )
        )
    return sorted(incidents, key=lambda i: i.breached_at)


def _span(start: datetime | None, end: datetime | None) -> timedelta | None:
    if start is None or end is None or end < start:
        return None
    return end - start


def _rollback_for(
    evaluation: EvaluationRecord, stories: Sequence[ActionStory]
) -> ActionStory | None:
    for story in stories:
        if story.kind == "rollback" and story.evaluation_id == evaluation.id:
            return story
    # A proposal may cite another trigger's breach evaluated in the same run.
    for story in stories:
        if (
            story.kind == "rollback"
            and story.agent == evaluation.agent
            and story.from_version == evaluation.version
            and story.proposed_at is not None
            and story.proposed_at >= evaluation.evaluated_at
        ):
            return story
    return None


def _fix_after(
    evaluation: EvaluationRecord, rollback: ActionStory | None, stories: Sequence[ActionStory]
) -> ActionStory | None:
    after = rollback.executed_at if rollback and rollback.executed_at else evaluation.evaluated_at
    for story in stories:
        if (
            story.kind == "redeploy"
            and story.agent == evaluation.agent
            and story.succeeded
            and story.executed_at is not None
            and story.executed_at >= after
            and story.to_version != evaluation.version
        ):
            return story
    return None


@dataclass(frozen=True)
class Spread:
    """How a set of durations spreads: count, median, 90th percentile, worst."""

    count: int
    median: timedelta | None
    p90: timedelta | None
    worst: timedelta | None


def spread(values: Iterable[timedelta | None]) -> Spread:
    """Median, p90 (nearest rank) and maximum of the known durations."""
    known = sorted(value for value in values if value is not None)
    if not known:
        return Spread(0, None, None, None)
    p90 = known[max(0, math.ceil(0.9 * len(known)) - 1)]
    middle = len(known) // 2
    median = known[middle] if len(known) % 2 else (known[middle - 1] + known[middle]) / 2
    return Spread(len(known), median, p90, known[-1])


@dataclass(frozen=True)
class ReviewStats:
    """Review turnaround (queued to judged) and agreement between reviewers."""

    reviews: int
    turnaround: Spread
    within_sla: float | None
    agreement_pairs: int
    agreement: float | None


def review_stats(reviews: Sequence[ReviewRecord], *, sla: timedelta) -> ReviewStats:
    """Turnaround against the SLA, and agreement where two reviewers judged one conversation."""
    turnaround = [review.submitted_at - review.queued_at for review in reviews]
    within = sum(1 for value in turnaround if value <= sla)
    by_conversation: dict[int, list[ReviewRecord]] = defaultdict(list)
    for review in reviews:
        by_conversation[review.conversation_id].append(review)
    pairs = agree = 0
    for judged in by_conversation.values():
        for i, left in enumerate(judged):
            for right in judged[i + 1 :]:
                if left.reviewer != right.reviewer:
                    pairs += 1
                    agree += left.violation == right.violation
    return ReviewStats(
        reviews=len(reviews),
        turnaround=spread(turnaround),
        within_sla=within / len(reviews) if reviews else None,
        agreement_pairs=pairs,
        agreement=agree / pairs if pairs else None,
    )


@dataclass(frozen=True)
class NoticeEstimate:
    """What one trigger promises: its false-alarm interval and how soon it notices a rate."""

    trigger: str
    kind: str
    unit: str
    healthy_rate: float | None
    degraded_rates: tuple[float, float]
    promised: float
    false_alarm_every: float | None
    delays: tuple[tuple[float, float], ...]
    per_hour: float | None
    volume: str
    note: str = ""
    written: str = ""

    def hours(self, observations: float) -> float | None:
        """Observations turned into hours of traffic at this estimate's volume."""
        return observations / self.per_hour if self.per_hour else None


def notice_estimate(plan: TriggerPlan, *, observed_per_hour: float | None) -> NoticeEstimate:
    """The "how long would it take to notice" figures of one trigger's calibrated plan.

    Time uses the volume observed in the period, else the trigger file's expected volume.
    """
    trigger, bank = plan.trigger, plan.bank
    if observed_per_hour:
        per_hour, volume = observed_per_hour, "observed"
    elif plan.per_day:
        per_hour, volume = plan.per_day / 24, "expected"
    else:
        per_hour, volume = None, "unknown"
    return NoticeEstimate(
        trigger=trigger.name,
        kind=trigger.kind,
        unit=trigger.unit,
        healthy_rate=bank.healthy_rate if bank else trigger.healthy_rate,
        degraded_rates=(trigger.degraded_low, trigger.degraded_high),
        promised=plan.promised,
        false_alarm_every=bank.false_alarm_every if bank else None,
        # The report shows the bank's own expected delay at each rate (not its error or bound).
        delays=tuple((rate, delay) for rate, delay, _error, _bound in plan.delays),
        per_hour=per_hour,
        volume=volume,
        note=plan.note,
        written=str(trigger.false_alarm_every),
    )


def format_duration(value: timedelta | None) -> str:
    """A duration read at a glance: 850 ms, 2.2 s, 4 min 05 s, 1 h 00 min, 3 d 4 h, 5.0 years."""
    if value is None:
        return "-"
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= YEAR_SECONDS:
        return f"{seconds / YEAR_SECONDS:.1f} years"
    return f"{int(seconds // 86400)} d {int(seconds % 86400 // 3600)} h"
