"""Store versioned trigger sets and record each evaluation of an agent version."""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, true
from sqlmodel import Session, col, select

from agentops.actions.service import propose_rollback, rollback_obstacle
from agentops.agents.service import live_version, mark_known_good, require_own_version
from agentops.audit.chain import canonical_sha256, sha256_hex
from agentops.audit.service import add_and_record
from agentops.errors import AgentOpsError, NotFoundError, RuleViolation
from agentops.store.models import (
    Action,
    Agent,
    AgentVersion,
    Conversation,
    Evaluation,
    ItemStatus,
    Outcome,
    Review,
    ReviewItem,
    TriggerChart,
    TriggerSet,
    VersionStatus,
    utcnow,
)
from agentops.triggers.acknowledge import acknowledge_false_alarm, is_false_alarm
from agentops.triggers.config import (
    AnyTrigger,
    EscalationRateTrigger,
    LatencyTrigger,
    NegativeSentimentTrigger,
    NotContainedTrigger,
    TriggerFile,
    parse_trigger_text,
)
from agentops.triggers.cusum import (
    BankDesign,
    design_bank,
    design_measured_bank,
    estimated_healthy_rate,
    rate_upper_bound,
)
from agentops.triggers.evaluate import (
    Healthy,
    Observation,
    TriggerResult,
    TriggerState,
    verdict,
)

__all__ = [
    "EvaluationReport",
    "acknowledge_false_alarm",
    "evaluate_live_version",
    "evaluate_version",
    "is_false_alarm",
    "register_trigger_set",
]


@dataclass
class EvaluationReport:
    """Every trigger's stored verdict for one agent version."""

    evaluations: list[Evaluation]
    marked_known_good: bool = False
    proposed_action: Action | None = None
    not_proposed_reason: str | None = None

    @property
    def breached(self) -> list[Evaluation]:
        """The evaluations whose trigger fired."""
        return [e for e in self.evaluations if e.outcome == Outcome.breach]

    @property
    def all_ok(self) -> bool:
        """True when every trigger had enough data and none fired."""
        return bool(self.evaluations) and all(e.outcome == Outcome.ok for e in self.evaluations)


def register_trigger_set(
    session: Session, *, agent: Agent, text: str, source: str, actor: str
) -> TriggerSet:
    """Validate and store a trigger file; the same content twice returns the stored row."""
    parsed = parse_trigger_text(text, source=source)
    if parsed.agent != agent.name:
        raise RuleViolation(f"{source} is written for agent {parsed.agent!r}, not {agent.name!r}")
    # The exact text, comments included: a stored trigger set is the file as written.
    digest = sha256_hex(text)
    existing = session.exec(
        select(TriggerSet).where(
            TriggerSet.agent_id == agent.id, TriggerSet.content_sha256 == digest
        )
    ).first()
    if existing is not None:
        return existing
    latest = latest_trigger_set(session, agent=agent)
    if latest is not None and parsed.version <= latest.version:
        clash = _find_trigger_set(session, agent=agent, version=parsed.version)
        if clash is not None:
            raise RuleViolation(
                f"{source}: trigger set version {parsed.version} of {agent.name!r} is already "
                f"registered with different content (from {clash.source}); stored versions "
                f"never change, so bump `version:` to {latest.version + 1}"
            )
        raise RuleViolation(
            f"{source}: version {parsed.version} is older than the registered version "
            f"{latest.version} of {agent.name!r}; bump `version:` to {latest.version + 1}"
        )
    trigger_set = TriggerSet(
        agent_id=agent.id,  # type: ignore[arg-type]
        version=parsed.version,
        content=text,
        content_sha256=digest,
        source=source,
    )
    add_and_record(
        session,
        row=trigger_set,
        actor=actor,
        kind="triggers.registered",
        entity_type="trigger_set",
        payload={
            "agent": agent.name,
            "version": parsed.version,
            "sha256": digest,
            "source": source,
            "triggers": [{"name": t.name, "kind": t.kind} for t in parsed.triggers],
        },
    )
    return trigger_set


def latest_trigger_set(session: Session, *, agent: Agent) -> TriggerSet | None:
    """The agent's highest-numbered trigger set, if any is registered."""
    return session.exec(
        select(TriggerSet)
        .where(TriggerSet.agent_id == agent.id)
        .order_by(col(TriggerSet.version).desc(), col(TriggerSet.id).desc())
    ).first()


def get_trigger_set(session: Session, *, agent: Agent, version: int) -> TriggerSet:
    """One stored version of the agent's trigger set."""
    found = _find_trigger_set(session, agent=agent, version=version)
    if found is None:
        raise NotFoundError(f"agent {agent.name!r} has no trigger set version {version}")
    return found


def _find_trigger_set(session: Session, *, agent: Agent, version: int) -> TriggerSet | None:
    return session.exec(
        select(TriggerSet).where(TriggerSet.agent_id == agent.id, TriggerSet.version == version)
    ).first()


def load_trigger_set(trigger_set: TriggerSet) -> TriggerFile:
    """The validated triggers of a stored trigger set."""
    return parse_trigger_text(trigger_set.content, source=trigger_set.source)


def evaluate_version(
    session: Session,
    *,
    agent: Agent,
    version: AgentVersion,
    trigger_set: TriggerSet,
    actor: str,
    as_of: datetime | None = None,
) -> EvaluationReport:
    """Feed each trigger's charts what is new up to as_of (default now) and store verdicts."""
    require_own_version(agent, version)
    if trigger_set.agent_id != agent.id:
        raise RuleViolation(
            f"trigger set version {trigger_set.version} does not belong to agent {agent.name!r}"
        )
    triggers = load_trigger_set(trigger_set)
    # Windows and cursors end at the evaluation time: a conversation dated in the future
    # waits for its time instead of pulling the charts past real traffic.
    as_of = as_of or utcnow()
    backlog = review_backlog(session, version=version, now=as_of)
    results = []
    for trigger in triggers.triggers:
        result = _evaluate_trigger(
            session,
            triggers=triggers,
            trigger=trigger,
            agent=agent,
            version=version,
            trigger_set=trigger_set,
            as_of=as_of,
        )
        if trigger.unit == "reviews" and backlog["unsettled"]:
            # Said out loud: this verdict was reached without part of the sample.
            result.evidence["review_backlog"] = backlog
        results.append(result)
    report = EvaluationReport(
        evaluations=[
            _store_evaluation(
                session,
                agent=agent,
                version=version,
                trigger_set=trigger_set,
                result=result,
                actor=actor,
            )
            for result in results
        ]
    )
    if report.all_ok and version.status == VersionStatus.live:
        report.marked_known_good = mark_known_good(
            session, agent=agent, version=version, actor=actor
        )
    return report


def _evaluate_trigger(
    session: Session,
    *,
    triggers: TriggerFile,
    trigger: AnyTrigger,
    agent: Agent,
    version: AgentVersion,
    trigger_set: TriggerSet,
    as_of: datetime,
) -> TriggerResult:
    chart = _chart_row(session, version=version, trigger_set=trigger_set, name=trigger.name)
    if chart is None:
        try:
            state = start_state(
                session, triggers=triggers, trigger=trigger, agent=agent, version=version,
                before=as_of,
            )
        except HealthyRateUnknown as exc:
            return TriggerResult(
                trigger.name, trigger.kind, "insufficient_data", None, None,
                {"summary": str(exc), "test": "bernoulli_cusum_bank", "unit": trigger.unit},
            )
        chart = TriggerChart(
            agent_version_id=version.id,  # type: ignore[arg-type]
            trigger_set_id=trigger_set.id,  # type: ignore[arg-type]
            trigger_name=trigger.name,
            state=state.to_json(),
        )
    else:
        state = TriggerState.from_json(chart.state)
    new, cursor = new_observations(
        session,
        trigger=trigger,
        version=version,
        as_of=as_of,
        cursor=(chart.cursor_at, chart.cursor_id, chart.max_seen_id),
    )
    state.feed(new)
    chart.cursor_at, chart.cursor_id, chart.max_seen_id = cursor
    chart.state = state.to_json()
    chart.updated_at = utcnow()
    session.add(chart)
    session.flush()
    return verdict(
        trigger,
        state,
        needed=needed_to_clear(state, trigger),
        unit=trigger.unit,
        per_day=triggers.per_day(trigger),
    )


def needed_to_clear(state: TriggerState, trigger: AnyTrigger) -> int:
    """Observations after which a quiet bank clears the version.

    By then a degradation at the top of the range would, on average, have been noticed.
    """
    bank = BankDesign(
        state.healthy["rate"], state.healthy["calibrated_rate"], state.target,
        tuple(state.chart_designs()),
    )
    return math.ceil(bank.delay_bound(trigger.degraded_high))


class HealthyRateUnknown(AgentOpsError):
    """The healthy rate is to be measured, but there is not enough data to measure it."""


def start_state(
    session: Session,
    *,
    triggers: TriggerFile,
    trigger: AnyTrigger,
    agent: Agent,
    version: AgentVersion,
    before: datetime,
) -> TriggerState:
    """Calibrate a fresh bank for the trigger on this version."""
    target = triggers.observations(trigger)
    try:
        if trigger.healthy_rate is not None:
            healthy = Healthy(trigger.healthy_rate, trigger.healthy_rate, "stated")
            bank = design_bank(
                healthy_rate=trigger.healthy_rate,
                degraded_low=trigger.degraded_low,
                degraded_high=trigger.degraded_high,
                target=target,
            )
        else:
            healthy = measured_healthy(
                session, trigger=trigger, agent=agent, version=version, before=before
            )
            assert healthy.successes is not None and healthy.n is not None
            bank = design_measured_bank(
                successes=healthy.successes,
                n=healthy.n,
                guarantee=trigger.guarantee,
                degraded_low=trigger.degraded_low,
                degraded_high=trigger.degraded_high,
                target=target,
            )
    except ValueError as exc:
        raise HealthyRateUnknown(f"cannot calibrate {trigger.name}: {exc}") from exc
    return TriggerState.start(bank, healthy)


def measured_healthy(
    session: Session,
    *,
    trigger: AnyTrigger,
    agent: Agent,
    version: AgentVersion,
    before: datetime,
) -> Healthy:
    """The healthy rate counted on the last known-good version, with its upper bound."""
    source = session.exec(
        select(AgentVersion)
        .where(
            AgentVersion.agent_id == agent.id,
            AgentVersion.id != version.id,
            col(AgentVersion.known_good_at).is_not(None),
            col(AgentVersion.known_good_at) <= before,
        )
        .order_by(col(AgentVersion.known_good_at).desc(), col(AgentVersion.id).desc())
    ).first()
    if source is None:
        raise HealthyRateUnknown(
            f"{trigger.name} measures its healthy rate on the last known-good version, "
            f"and {agent.name} has none other than {version.version}"
        )
    observations, _ = new_observations(
        session, trigger=trigger, version=source, as_of=before, cursor=(None, None, None)
    )
    n = len(observations)
    if n < trigger.min_healthy_samples:
        raise HealthyRateUnknown(
            f"{trigger.name}: only {n} {trigger.unit} on last known-good {source.version}; "
            f"measuring the healthy rate needs {trigger.min_healthy_samples}"
        )
    successes = sum(observation.event for observation in observations)
    return Healthy(
        rate=estimated_healthy_rate(successes, n),
        calibrated_rate=rate_upper_bound(successes, n, confidence=trigger.guarantee),
        source=f"last known good {source.version}",
        successes=successes,
        n=n,
        guarantee=trigger.guarantee,
    )


def _chart_row(
    session: Session, *, version: AgentVersion, trigger_set: TriggerSet, name: str
) -> TriggerChart | None:
    return session.exec(
        select(TriggerChart).where(
            TriggerChart.agent_version_id == version.id,
            TriggerChart.trigger_set_id == trigger_set.id,
            TriggerChart.trigger_name == name,
        )
    ).first()


Cursor = tuple[datetime | None, int | None, int | None]


def new_observations(
    session: Session,
    *,
    trigger: AnyTrigger,
    version: AgentVersion,
    as_of: datetime,
    cursor: Cursor,
) -> tuple[list[Observation], Cursor]:
    """The version's observations after the cursor and up to as_of, in time order."""
    if trigger.unit == "reviews":
        return _new_reviews(session, version=version, as_of=as_of, cursor=cursor)
    return _new_conversations(session, trigger=trigger, version=version, as_of=as_of, cursor=cursor)


def _after(at_column: Any, id_column: Any, cursor: Cursor) -> Any:
    at, last_id, max_seen = cursor
    if at is None or last_id is None:
        return true()
    later = or_(at_column > at, and_(at_column == at, id_column > last_id))
    return or_(later, id_column > max_seen) if max_seen is not None else later


def _advance(cursor: Cursor, observations: list[Observation]) -> Cursor:
    if not observations:
        return cursor
    at, last_id, max_seen = cursor
    newest = max(observations, key=lambda o: (o.at, o.id))
    if at is None or last_id is None or (newest.at, newest.id) > (at, last_id):
        at, last_id = newest.at, newest.id
    highest = max(o.id for o in observations)
    return at, last_id, highest if max_seen is None else max(max_seen, highest)


def _new_conversations(
    session: Session,
    *,
    trigger: AnyTrigger,
    version: AgentVersion,
    as_of: datetime,
    cursor: Cursor,
) -> tuple[list[Observation], Cursor]:
    rows = session.exec(
        select(
            Conversation.id,
            Conversation.started_at,
            Conversation.escalated,
            Conversation.contained,
            Conversation.sentiment,
            Conversation.latency_ms,
        )
        .where(
            Conversation.agent_version_id == version.id,
            Conversation.started_at <= as_of,
            _after(Conversation.started_at, Conversation.id, cursor),
        )
        .order_by(col(Conversation.started_at), col(Conversation.id))
    ).all()
    observations = []
    seen = []
    for conversation_id, started_at, escalated, contained, sentiment, latency in rows:
        seen.append(Observation(conversation_id, started_at, False))  # type: ignore[arg-type]
        event = conversation_event(
            trigger, escalated=escalated, contained=contained, sentiment=sentiment,
            latency_ms=latency,
        )
        if event is not None:
            observations.append(Observation(conversation_id, started_at, event))  # type: ignore[arg-type]
    return observations, _advance(cursor, seen)


def conversation_event(
    trigger: AnyTrigger,
    *,
    escalated: bool,
    contained: bool,
    sentiment: float,
    latency_ms: int | None,
) -> bool | None:
    """Whether a conversation counts as the trigger's event; None if it says nothing."""
    if isinstance(trigger, EscalationRateTrigger):
        return escalated
    if isinstance(trigger, NotContainedTrigger):
        return not contained
    if isinstance(trigger, NegativeSentimentTrigger):
        return sentiment < trigger.below
    if isinstance(trigger, LatencyTrigger):
        return None if latency_ms is None else latency_ms > trigger.limit_ms
    raise TypeError(f"{trigger.kind} is not a conversation trigger")


def _new_reviews(
    session: Session, *, version: AgentVersion, as_of: datetime, cursor: Cursor
) -> tuple[list[Observation], Cursor]:
    # An item waiting for its blind second review or for adjudication counts in no trigger;
    # once settled it counts with its final verdict, at the time it was settled.
    settled_at = _settled_at()
    rows = session.exec(
        select(
            Review.id,
            settled_at,
            func.coalesce(ReviewItem.final_violation, Review.violation),
            ReviewItem.conversation_id,
        )
        .join(ReviewItem, col(Review.review_item_id) == col(ReviewItem.id))
        .join(Conversation, col(ReviewItem.conversation_id) == col(Conversation.id))
        .where(
            Conversation.agent_version_id == version.id,
            _settled(),
            settled_at <= as_of,
            _after(settled_at, Review.id, cursor),
        )
        .order_by(settled_at, col(Review.id))
    ).all()
    if not rows:
        return [], cursor
    # A conversation reviewed again (say under a newer rubric) still counts once: only
    # its first settled review is an observation.
    first: dict[int, tuple[datetime, int]] = {}
    for review_id, at, conversation_id in session.exec(
        select(Review.id, settled_at, ReviewItem.conversation_id)
        .join(ReviewItem, col(Review.review_item_id) == col(ReviewItem.id))
        .where(col(ReviewItem.conversation_id).in_({row[3] for row in rows}), _settled())
    ).all():
        key = (at, review_id)
        if conversation_id not in first or key < first[conversation_id]:
            first[conversation_id] = key  # type: ignore[assignment]
    observations = [
        Observation(review_id, at, bool(violation))  # type: ignore[arg-type]
        for review_id, at, violation, conversation_id in rows
        if first[conversation_id] == (at, review_id)
    ]
    seen = [Observation(r[0], r[1], False) for r in rows]  # type: ignore[arg-type]
    return observations, _advance(cursor, seen)


def settled_reviews(
    session: Session, *, version: AgentVersion, as_of: datetime | None = None
) -> list[Observation]:
    """Every review observation the version's triggers count, from the start."""
    observations, _ = _new_reviews(
        session, version=version, as_of=as_of or utcnow(), cursor=(None, None, None)
    )
    return observations


def _settled_at() -> Any:
    # The column type keeps the result a timezone-aware datetime on SQLite too.
    return func.coalesce(
        ReviewItem.settled_at, Review.submitted_at, type_=ReviewItem.__table__.c.settled_at.type
    )


def _settled() -> Any:
    return or_(col(ReviewItem.stage).is_(None), col(ReviewItem.stage) == "done")


def review_backlog(session: Session, *, version: AgentVersion, now: datetime) -> dict[str, Any]:
    """The version's sampled items without a settled verdict: how many, how many overdue."""
    due = func.coalesce(
        ReviewItem.due_at, ReviewItem.created_at, type_=ReviewItem.__table__.c.due_at.type
    )
    rows = session.exec(
        select(due)
        .select_from(ReviewItem)
        .join(Conversation, col(ReviewItem.conversation_id) == col(Conversation.id))
        .where(
            Conversation.agent_version_id == version.id,
            or_(col(ReviewItem.stage).is_(None), col(ReviewItem.stage) != "done"),
            or_(col(ReviewItem.stage).is_not(None), ReviewItem.status != ItemStatus.reviewed),
        )
    ).all()
    overdue = sum(1 for moment in rows if moment <= now)
    return {
        "unsettled": len(rows),
        "overdue": overdue,
        "note": (
            f"{len(rows)} sampled conversation(s) not yet reviewed ({overdue} overdue): "
            "this evaluation ran without them"
        ),
    }


def evaluate_live_version(
    session: Session, *, agent: Agent, actor: str, trigger_set: TriggerSet | None = None
) -> tuple[AgentVersion, EvaluationReport]:
    """Evaluate the live version on the agent's triggers; a breach proposes a rollback."""
    trigger_set = trigger_set or latest_trigger_set(session, agent=agent)
    if trigger_set is None:
        raise NotFoundError(
            f"no triggers registered for {agent.name}: use `agentops triggers register FILE`"
        )
    version = live_version(session, agent=agent)
    if version is None:
        raise NotFoundError(f"{agent.name} has no live version to evaluate")
    report = evaluate_version(
        session, agent=agent, version=version, trigger_set=trigger_set, actor=actor
    )
    if report.breached:
        names = ", ".join(evaluation.trigger_name for evaluation in report.breached)
        report.proposed_action = propose_rollback(
            session,
            agent=agent,
            from_version=version,
            evaluation=report.breached[0],
            actor=actor,
            reason=f"trigger breached on {version.version}: {names}",
        )
        if report.proposed_action is None:
            # Rare path: ask again for the reason propose_rollback put on the audit trail.
            report.not_proposed_reason = rollback_obstacle(
                session, agent=agent, from_version=version
            )
    return version, report


def _store_evaluation(
    session: Session,
    *,
    agent: Agent,
    version: AgentVersion,
    trigger_set: TriggerSet,
    result: TriggerResult,
    actor: str,
) -> Evaluation:
    evaluation = Evaluation(
        agent_version_id=version.id,  # type: ignore[arg-type]
        trigger_set_id=trigger_set.id,  # type: ignore[arg-type]
        trigger_name=result.name,
        kind=result.kind,
        outcome=Outcome(result.outcome),
        statistic=result.statistic,
        threshold=result.threshold,
        evidence=result.evidence,
    )
    add_and_record(
        session,
        row=evaluation,
        actor=actor,
        kind="evaluation.recorded",
        entity_type="evaluation",
        payload={
            "agent": agent.name,
            "version": version.version,
            "trigger_set_version": trigger_set.version,
            "trigger": result.name,
            "kind": result.kind,
            "outcome": result.outcome,
            "statistic": result.statistic,
            "threshold": result.threshold,
            "summary": result.evidence.get("summary"),
            # The evidence row is not chained itself; its digest here makes edits visible.
            "evidence_sha256": canonical_sha256(result.evidence),
        },
    )
    return evaluation



