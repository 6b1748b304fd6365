"""Load the report's records from the store: one query per kind of record, no N+1."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, func, select

from agentops.audit.service import iter_events, verify_trail
from agentops.errors import NotFoundError
from agentops.reporting.metrics import (
    ActionStory,
    EvaluationRecord,
    EventRecord,
    Incident,
    NoticeEstimate,
    ReviewRecord,
    ReviewStats,
    VersionRecord,
    build_incidents,
    build_stories,
    notice_estimate,
    review_stats,
)
from agentops.store.models import (
    Agent,
    AgentVersion,
    Conversation,
    Evaluation,
    Person,
    Review,
    ReviewItem,
    Sample,
    TriggerSet,
)
from agentops.triggers.config import TriggerConfigError, parse_trigger_text
from agentops.triggers.plan import plan_trigger

STORY_KINDS = ("action.", "approval.")


@dataclass
class AgentSection:
    """Everything the report shows for one agent."""

    name: str
    owner: str
    backup: str
    live_version: str | None
    incidents: list[Incident]
    stories: list[ActionStory]
    evaluations: list[EvaluationRecord]
    reviews: ReviewStats
    notice: list[NoticeEstimate]
    trigger_set_version: int | None = None
    trigger_set_problem: str | None = None


@dataclass
class Report:
    """The manager report for a period."""

    since: datetime
    until: datetime
    generated_at: datetime
    agents: list[AgentSection]
    trail_events: int
    trail_intact: bool
    trail_problems: list[str] = field(default_factory=list)
    merkle_root: str = ""
    review_sla: timedelta = timedelta(hours=4)

    @property
    def incidents(self) -> list[Incident]:
        """Every agent's incidents, oldest first."""
        return sorted((i for a in self.agents for i in a.incidents), key=lambda i: i.breached_at)

    @property
    def stories(self) -> list[ActionStory]:
        """Every agent's actions."""
        return [story for agent in self.agents for story in agent.stories]


def build_report(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    agent: str | None = None,
    review_sla: timedelta = timedelta(hours=4),
    verify: bool = True,
) -> Report:
    """Read the period's trail and tables and compute every figure of the report."""
    agents = _agents(session, agent)
    events = [
        _event(event)
        for event in iter_events(session, since=since, until=until)
        if event.kind.startswith(STORY_KINDS)
    ]
    stories = build_stories(events)
    versions = _versions(session)
    evaluations = _evaluations(session, since=since, until=until)
    reviews = _reviews(session, since=since, until=until)
    volumes = {
        "reviews": _reviews_per_hour(session, since=since, until=until),
        "conversations": _conversations_per_hour(session, since=since, until=until),
    }
    trigger_sets = _current_trigger_sets(session)
    sections = []
    for row, owner, backup in agents:
        mine = [e for e in evaluations if e.agent == row.name]
        my_stories = [s for s in stories if s.agent == row.name]
        my_versions = [v for v in versions if v.agent == row.name]
        trigger_set = trigger_sets.get(row.id)  # type: ignore[arg-type]
        notice, problem = _notice(trigger_set, volumes=volumes, agent=row.name)
        sections.append(
            AgentSection(
                name=row.name,
                owner=owner,
                backup=backup,
                live_version=next((v.version for v in my_versions if v.status == "live"), None),
                incidents=build_incidents(mine, my_versions, my_stories),
                stories=my_stories,
                evaluations=mine,
                reviews=review_stats(
                    [r for r in reviews if r.agent == row.name], sla=review_sla
                ),
                notice=notice,
                trigger_set_version=trigger_set.version if trigger_set else None,
                trigger_set_problem=problem,
            )
        )
    report = Report(
        since=since,
        until=until,
        generated_at=now,
        agents=sections,
        trail_events=0,
        trail_intact=True,
        review_sla=review_sla,
    )
    if verify:
        result = verify_trail(session)
        report.trail_events, report.trail_intact = result.events, result.intact
        report.trail_problems = [f"event {p.seq}: {p.reason}" for p in result.problems[:10]]
        report.merkle_root = result.merkle_root
    return report


def _event(event: Any) -> EventRecord:
    return EventRecord(
        seq=event.seq,
        occurred_at=event.occurred_at,
        actor=event.actor,
        kind=event.kind,
        entity_type=event.entity_type,
        entity_id=event.entity_id,
        payload=event.payload,
        channel=event.channel,
        correlation_id=event.correlation_id,
    )


def _agents(session: Session, name: str | None) -> list[tuple[Agent, str, str]]:
    owner = Person.__table__.alias("owner")  # type: ignore[attr-defined]
    backup = Person.__table__.alias("backup")  # type: ignore[attr-defined]
    query = (
        select(Agent, owner.c.email, backup.c.email)
        .join(owner, owner.c.id == Agent.owner_id)
        .join(backup, backup.c.id == Agent.backup_id)
        .order_by(col(Agent.name))
    )
    if name:
        query = query.where(Agent.name == name)
    rows = [(row[0], row[1], row[2]) for row in session.exec(query)]
    if name and not rows:
        raise NotFoundError(f"no agent named {name!r} (see `agentops agents list`)")
    return rows


def _versions(session: Session) -> list[VersionRecord]:
    first = dict(
        session.exec(
            select(Conversation.agent_version_id, func.min(Conversation.started_at)).group_by(
                col(Conversation.agent_version_id)
            )
        ).all()
    )
    rows = session.exec(
        select(AgentVersion, Agent.name).join(Agent, col(Agent.id) == col(AgentVersion.agent_id))
    ).all()
    return [
        VersionRecord(
            id=version.id,  # type: ignore[arg-type]
            agent=agent_name,
            version=version.version,
            status=version.status.value,
            went_live_at=version.went_live_at,
            first_conversation_at=_aware(first.get(version.id)),  # type: ignore[arg-type]
        )
        for version, agent_name in rows
    ]


def _aware(moment: datetime | None) -> datetime | None:
    # min() over a column loses the column type on SQLite, which then returns text.
    if moment is None or isinstance(moment, datetime):
        return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(moment))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _evaluations(session: Session, *, since: datetime, until: datetime) -> list[EvaluationRecord]:
    rows = session.exec(
        select(Evaluation, AgentVersion.version, Agent.name, TriggerSet.version)
        .join(AgentVersion, col(AgentVersion.id) == col(Evaluation.agent_version_id))
        .join(Agent, col(Agent.id) == col(AgentVersion.agent_id))
        .join(TriggerSet, col(TriggerSet.id) == col(Evaluation.trigger_set_id))
        .where(col(Evaluation.evaluated_at) >= since, col(Evaluation.evaluated_at) < until)
        .order_by(col(Evaluation.evaluated_at), col(Evaluation.id))
    ).all()
    records = []
    for evaluation, version, agent_name, set_version in rows:
        evidence = evaluation.evidence or {}
        seen = None
        if evaluation.outcome.value == "breach":
            seen = _aware(
                session.exec(
                    select(func.max(Conversation.started_at)).where(
                        and_(
                            Conversation.agent_version_id == evaluation.agent_version_id,  # type: ignore[arg-type]
                            col(Conversation.imported_at) <= evaluation.evaluated_at,
                        )
                    )
                ).one()
            )
        records.append(
            EvaluationRecord(
                id=evaluation.id,  # type: ignore[arg-type]
                agent=agent_name,
                version_id=evaluation.agent_version_id,
                version=version,
                trigger=evaluation.trigger_name,
                kind=evaluation.kind,
                outcome=evaluation.outcome.value,
                statistic=evaluation.statistic,
                threshold=evaluation.threshold,
                evaluated_at=evaluation.evaluated_at,
                trigger_set_version=set_version,
                traffic_seen_at=seen,
                summary=evidence.get("summary"),
                observations=evidence.get("observations"),
                unit=evidence.get("unit"),
            )
        )
    return records


def _reviews(session: Session, *, since: datetime, until: datetime) -> list[ReviewRecord]:
    rows = session.exec(
        select(  # type: ignore[call-overload]
            Agent.name,
            ReviewItem.conversation_id,
            Person.email,
            ReviewItem.created_at,
            Review.submitted_at,
            Review.violation,
        )
        .join(ReviewItem, col(ReviewItem.id) == col(Review.review_item_id))
        .join(Conversation, col(Conversation.id) == col(ReviewItem.conversation_id))
        .join(Agent, col(Agent.id) == col(Conversation.agent_id))
        .join(Person, col(Person.id) == col(Review.reviewer_id))
        .where(col(Review.submitted_at) >= since, col(Review.submitted_at) < until)
    ).all()
    return [
        ReviewRecord(
            agent=name,
            conversation_id=conversation_id,
            reviewer=email,
            queued_at=queued_at,
            submitted_at=submitted_at,
            violation=violation,
        )
        for name, conversation_id, email, queued_at, submitted_at, violation in rows
    ]


def _reviews_per_hour(session: Session, *, since: datetime, until: datetime) -> dict[str, float]:
    """Sampled reviews per hour of traffic, from the samples drawn in the period."""
    rows = session.exec(
        select(Agent.name, Sample.window_start, Sample.window_end, Sample.size)
        .join(AgentVersion, col(AgentVersion.id) == col(Sample.agent_version_id))
        .join(Agent, col(Agent.id) == col(AgentVersion.agent_id))
        .where(col(Sample.created_at) >= since, col(Sample.created_at) < until)
    ).all()
    hours: dict[str, float] = defaultdict(float)
    sizes: dict[str, int] = defaultdict(int)
    windows: dict[str, set[tuple[datetime, datetime]]] = defaultdict(set)
    for name, start, end, size in rows:
        sizes[name] += size
        # Versions sampled over the same window share its hours.
        if (start, end) not in windows[name]:
            windows[name].add((start, end))
            hours[name] += (end - start).total_seconds() / 3600
    return {name: sizes[name] / hours[name] for name in sizes if hours[name] > 0}


def _conversations_per_hour(
    session: Session, *, since: datetime, until: datetime
) -> dict[str, float]:
    """Conversations per hour of traffic: those started in the period over the hours they span."""
    rows = session.exec(
        select(
            Agent.name,
            func.count(col(Conversation.id)),
            func.min(Conversation.started_at),
            func.max(Conversation.started_at),
        )
        .join(Agent, col(Agent.id) == col(Conversation.agent_id))
        .where(col(Conversation.started_at) >= since, col(Conversation.started_at) < until)
        .group_by(col(Agent.name))
    ).all()
    rates = {}
    for name, count, first, last in rows:
        start, end = _aware(first), _aware(last)
        hours = (end - start).total_seconds() / 3600 if start and end else 0.0
        if count > 1 and hours > 0:
            # n arrivals span n - 1 gaps.
            rates[name] = (count - 1) / hours
    return rates


def _current_trigger_sets(session: Session) -> dict[int, TriggerSet]:
    """Each agent's current trigger set: its highest version, as evaluations use."""
    current: dict[int, TriggerSet] = {}
    for trigger_set in session.exec(
        select(TriggerSet).order_by(col(TriggerSet.version), col(TriggerSet.id))
    ):
        current[trigger_set.agent_id] = trigger_set
    return current


def _notice(
    trigger_set: TriggerSet | None, *, volumes: dict[str, dict[str, float]], agent: str
) -> tuple[list[NoticeEstimate], str | None]:
    """Every trigger's plan (calibrations are cached by the CUSUM module), or why not."""
    if trigger_set is None:
        return [], None
    try:
        parsed = parse_trigger_text(trigger_set.content, source=trigger_set.source)
    except TriggerConfigError as exc:
        return [], f"trigger set v{trigger_set.version} cannot be read: {exc.problems[0]}"
    estimates = []
    for trigger in parsed.triggers:
        observed = volumes[trigger.unit].get(agent)
        try:
            plan = plan_trigger(parsed, trigger)
        except ValueError as exc:
            estimates.append(
                NoticeEstimate(
                    trigger=trigger.name,
                    kind=trigger.kind,
                    unit=trigger.unit,
                    healthy_rate=trigger.healthy_rate,
                    degraded_rates=(trigger.degraded_low, trigger.degraded_high),
                    promised=parsed.observations(trigger),
                    false_alarm_every=None,
                    delays=(),
                    per_hour=observed,
                    volume="observed" if observed else "unknown",
                    note=f"cannot calibrate: {exc}",
                    written=str(trigger.false_alarm_every),
                )
            )
            continue
        estimates.append(notice_estimate(plan, observed_per_hour=observed))
    return estimates, None
