"""Store versioned trigger sets and record each evaluation of an agent version."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from agentops.actions.service import propose_rollback, rollback_obstacle
from agentops.agents.service import live_version, mark_known_good, require_own_version
from agentops.audit.chain import canonical_sha256, sha256_hex
from agentops.audit.service import add_and_record
from agentops.errors import NotFoundError, RuleViolation
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
    TriggerSet,
    VersionStatus,
    utcnow,
)
from agentops.triggers.config import TriggerFile, parse_trigger_text
from agentops.triggers.evaluate import (
    ConversationSignal,
    ReviewedOutcome,
    TriggerResult,
    evaluate_trigger,
)


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
) -> EvaluationReport:
    """Run every trigger over the version's conversations and reviews, storing each verdict."""
    require_own_version(agent, version)
    if trigger_set.agent_id != agent.id:
        raise RuleViolation(
            f"trigger set version {trigger_set.version} does not belong to agent {agent.name!r}"
        )
    triggers = load_trigger_set(trigger_set)
    reviews = version_reviews(session, version=version)
    conversations = version_signals(session, version=version)
    backlog = review_backlog(session, version=version, now=utcnow())
    results = [
        evaluate_trigger(trigger, reviews=reviews, conversations=conversations)
        for trigger in triggers.triggers
    ]
    for result in results:
        if result.kind == "policy_adherence" and backlog["unsettled"]:
            # Said out loud: this verdict was reached without part of the window's sample.
            result.evidence["review_backlog"] = backlog
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


def version_reviews(session: Session, *, version: AgentVersion) -> list[ReviewedOutcome]:
    """The first submitted review of each of the version's conversations, in order.

    A conversation reviewed again (say under a newer rubric) still counts once, and the
    sequence the sequential test already read never changes behind it. An item still
    waiting for its second review or for adjudication counts in no trigger; once settled it
    counts with its final verdict, from the moment it was settled.
    """
    # The column type keeps the result a timezone-aware datetime on SQLite too.
    settled_at = func.coalesce(
        ReviewItem.settled_at, Review.submitted_at, type_=ReviewItem.__table__.c.settled_at.type
    )
    rows = session.exec(
        select(
            Review.id,
            ReviewItem.conversation_id,
            func.coalesce(ReviewItem.final_violation, Review.violation),
            settled_at,
        )
        .join(ReviewItem, col(Review.review_item_id) == col(ReviewItem.id))
        .join(Conversation, col(ReviewItem.conversation_id) == col(Conversation.id))
        .where(
            Conversation.agent_version_id == version.id,
            or_(col(ReviewItem.stage).is_(None), col(ReviewItem.stage) == "done"),
        )
        .order_by(settled_at, col(Review.id))
    ).all()
    seen: set[int] = set()
    outcomes: list[ReviewedOutcome] = []
    for review_id, conversation_id, violation, submitted_at in rows:
        if conversation_id in seen:
            continue
        seen.add(conversation_id)
        outcomes.append(
            ReviewedOutcome(
                review_id=review_id,  # type: ignore[arg-type]
                conversation_id=conversation_id,
                violation=bool(violation),
                submitted_at=submitted_at,
            )
        )
    return outcomes


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


def version_signals(session: Session, *, version: AgentVersion) -> list[ConversationSignal]:
    """Escalation, latency and start time of every conversation the version handled."""
    rows = session.exec(
        select(
            Conversation.id,
            Conversation.escalated,
            Conversation.latency_ms,
            Conversation.started_at,
        )
        .where(Conversation.agent_version_id == version.id)
        .order_by(col(Conversation.started_at), col(Conversation.id))
    ).all()
    return [
        ConversationSignal(
            conversation_id=conversation_id,  # type: ignore[arg-type]
            escalated=escalated,
            latency_ms=latency,
            started_at=started_at,
        )
        for conversation_id, escalated, latency, started_at in rows
    ]

