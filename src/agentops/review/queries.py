"""Read side of the review queue: ageing per agent and a reviewer's progress (no writes)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from agentops.review.queue import AGEING_BUCKETS, ageing_bucket
from agentops.sampling.estimate import Estimate, Observation, hajek
from agentops.store.models import (
    Agent,
    AgentVersion,
    Conversation,
    ItemStatus,
    Person,
    Review,
    ReviewItem,
    Sample,
)


@dataclass
class AgentAgeing:
    """One agent's unreviewed items by ageing bucket, and its reviewed count."""

    agent: str
    buckets: dict[str, int] = field(
        default_factory=lambda: {label: 0 for label, _ in AGEING_BUCKETS}
    )
    open: int = 0
    claimed: int = 0
    reviewed: int = 0

    @property
    def overdue(self) -> int:
        """Unreviewed items past their due time."""
        return sum(n for label, n in self.buckets.items() if label.startswith("overdue"))

    @property
    def left(self) -> int:
        """Items still to review."""
        return self.open + self.claimed


def ageing_by_agent(
    session: Session, *, now: datetime, agent: Agent | None = None
) -> list[AgentAgeing]:
    """Per agent: unreviewed items by ageing bucket, open/claimed/reviewed counts."""
    due = func.coalesce(ReviewItem.due_at, ReviewItem.created_at)
    query = (
        select(Agent.name, ReviewItem.status, due, func.count())
        .select_from(ReviewItem)
        .join(Conversation, Conversation.id == ReviewItem.conversation_id)  # type: ignore[arg-type]
        .join(Agent, Agent.id == Conversation.agent_id)  # type: ignore[arg-type]
        .group_by(Agent.name, ReviewItem.status, due)
    )
    if agent is not None:
        query = query.where(Agent.id == agent.id)
    rows: dict[str, AgentAgeing] = {}
    for name, status, due_at, count in session.exec(query):
        entry = rows.setdefault(name, AgentAgeing(agent=name))
        status = ItemStatus(status)
        if status == ItemStatus.reviewed:
            entry.reviewed += count
            continue
        if status == ItemStatus.open:
            entry.open += count
        else:
            entry.claimed += count
        entry.buckets[ageing_bucket(_aware(due_at), now)] += count
    return [rows[name] for name in sorted(rows)]


@dataclass(frozen=True)
class Progress:
    """What a reviewer has done and what is left for everyone."""

    reviewed_today: int
    reviewed_total: int
    left_in_queue: int
    overdue: int


def reviewer_progress(session: Session, *, person: Person, now: datetime) -> Progress:
    """The reviewer's own counts (today is the last 24 hours) and the queue's remainder."""
    mine = select(func.count()).select_from(Review).where(Review.reviewer_id == person.id)
    today = mine.where(Review.submitted_at >= now - timedelta(days=1))  # type: ignore[operator]
    ageing = ageing_by_agent(session, now=now)
    return Progress(
        reviewed_today=session.exec(today).one(),
        reviewed_total=session.exec(mine).one(),
        left_in_queue=sum(a.left for a in ageing),
        overdue=sum(a.overdue for a in ageing),
    )


def _aware(moment: datetime | str) -> datetime:
    # func.coalesce loses the column type, so SQLite hands back a naive or text UTC value.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def adherence_estimate(
    session: Session, *, version: AgentVersion, confidence: float = 0.95
) -> Estimate:
    """The version's weighted adherence rate over its reviewed sampled conversations."""
    rows = session.exec(
        select(Review.violation, ReviewItem.inclusion_probability, ReviewItem.stratum, Sample)
        .join(ReviewItem, ReviewItem.id == Review.review_item_id)  # type: ignore[arg-type]
        .join(Sample, Sample.id == ReviewItem.sample_id)  # type: ignore[arg-type]
        .where(Sample.agent_version_id == version.id)
    )
    observations = [
        Observation(
            adhered=not violation,
            # Items queued before plans existed were a simple random sample of their window.
            inclusion_probability=probability or sample.size / max(sample.population, 1),
            stratum=stratum or "all",
        )
        for violation, probability, stratum, sample in rows
    ]
    return hajek(observations, confidence=confidence)
