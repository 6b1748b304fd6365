"""Read side of the review queue: ageing per agent and a reviewer's progress (no writes)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, select

from agentops.review.agreement import Agreement, agreement
from agentops.review.queue import AGEING_BUCKETS, ageing_bucket
from agentops.sampling.estimate import Estimate, Observation, hajek
from agentops.store.models import (
    Agent,
    AgentVersion,
    Conversation,
    ExtraReview,
    ItemStatus,
    Person,
    Review,
    ReviewFinding,
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
    today = mine.where(Review.submitted_at >= now - timedelta(days=1))
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
    # Only settled verdicts count: not those waiting for a second review or adjudication.
    rows = session.exec(
        select(
            func.coalesce(ReviewItem.final_violation, Review.violation),
            ReviewItem.inclusion_probability,
            ReviewItem.stratum,
            Sample,
        )
        .select_from(Review)
        .join(ReviewItem, ReviewItem.id == Review.review_item_id)  # type: ignore[arg-type]
        .join(Sample, Sample.id == ReviewItem.sample_id)  # type: ignore[arg-type]
        .where(
            Sample.agent_version_id == version.id,
            or_(ReviewItem.stage.is_(None), ReviewItem.stage == "done"),  # type: ignore[arg-type, union-attr]
        )
    )
    observations = [
        Observation(
            adhered=not bool(violation),
            # Items queued before plans existed were a simple random sample of their window.
            inclusion_probability=probability or sample.size / max(sample.population, 1),
            stratum=stratum or "all",
        )
        for violation, probability, stratum, sample in rows
    ]
    return hajek(observations, confidence=confidence)


@dataclass(frozen=True)
class AgreementRow:
    """Agreement on one criterion (over all pairs) or for one reviewer pair (on verdicts)."""

    label: str
    result: Agreement


def agreement_report(
    session: Session, *, agent: Agent | None = None, resamples: int = 1000
) -> tuple[list[AgreementRow], list[AgreementRow]]:
    """Per criterion and per reviewer pair: first review against the blind second one."""
    query = (
        select(Review, ExtraReview)
        .join(ExtraReview, ExtraReview.review_item_id == Review.review_item_id)  # type: ignore[arg-type]
        .where(ExtraReview.purpose == "second")
        .order_by(Review.id)  # type: ignore[arg-type]
    )
    if agent is not None:
        query = (
            query.join(ReviewItem, ReviewItem.id == Review.review_item_id)  # type: ignore[arg-type]
            .join(Conversation, Conversation.id == ReviewItem.conversation_id)  # type: ignore[arg-type]
            .where(Conversation.agent_id == agent.id)
        )
    pairs = list(session.exec(query))
    if not pairs:
        return [], []
    firsts = [first.id for first, _ in pairs]
    marks: dict[int, dict[str, str]] = {}
    for finding in session.exec(
        select(ReviewFinding).where(ReviewFinding.review_id.in_(firsts))  # type: ignore[attr-defined]
    ):
        mark = "na" if finding.not_applicable else "pass" if finding.passed else "fail"
        marks.setdefault(finding.review_id, {})[finding.criterion_key] = mark
    emails = {p.id: p.email for p in session.exec(select(Person))}
    by_criterion: dict[str, list[tuple[str, str]]] = {}
    by_pair: dict[str, list[tuple[bool, bool]]] = {}
    for first, second in pairs:
        for key, mark in marks.get(first.id, {}).items():  # type: ignore[arg-type]
            if key in second.findings:
                by_criterion.setdefault(key, []).append((mark, second.findings[key]))
        names = sorted([emails[first.reviewer_id], emails[second.reviewer_id]])
        by_pair.setdefault(" & ".join(names), []).append((first.violation, second.violation))
    criteria = [
        AgreementRow(key, agreement(values, categories=("pass", "fail", "na"), resamples=resamples))
        for key, values in sorted(by_criterion.items())
    ]
    reviewer_pairs = [
        AgreementRow(label, agreement(values, categories=(False, True), resamples=resamples))
        for label, values in sorted(by_pair.items())
    ]
    return criteria, reviewer_pairs


@dataclass(frozen=True)
class Verdict:
    """One earlier judgement of an item, as an adjudicator sees it."""

    round: str
    reviewer: str
    violation: bool
    failed: list[str]
    notes: dict[str, str]


def earlier_verdicts(session: Session, *, item_id: int) -> list[Verdict]:
    """Every verdict on the item so far (for adjudication only: second reviews are blind)."""
    emails = {p.id: p.email for p in session.exec(select(Person))}
    verdicts = []
    first = session.exec(select(Review).where(Review.review_item_id == item_id)).first()
    if first is not None:
        findings = list(
            session.exec(select(ReviewFinding).where(ReviewFinding.review_id == first.id))
        )
        verdicts.append(
            Verdict(
                round="first",
                reviewer=emails.get(first.reviewer_id, "?"),
                violation=first.violation,
                failed=[f.criterion_key for f in findings if not f.passed],
                notes={f.criterion_key: f.note for f in findings if f.note},
            )
        )
    for extra in session.exec(
        select(ExtraReview)
        .where(ExtraReview.review_item_id == item_id)
        .order_by(ExtraReview.id)  # type: ignore[arg-type]
    ):
        verdicts.append(
            Verdict(
                round=extra.purpose,
                reviewer=emails.get(extra.reviewer_id, "?"),
                violation=extra.violation,
                failed=sorted(k for k, mark in extra.findings.items() if mark == "fail"),
                notes=dict(extra.notes or {}),
            )
        )
    return verdicts


def settled_items(session: Session, *, agent: Agent, limit: int) -> list[ReviewItem]:
    """The agent's most recently settled items (the ones its owner may dispute)."""
    return list(
        session.exec(
            select(ReviewItem)
            .join(Conversation, Conversation.id == ReviewItem.conversation_id)  # type: ignore[arg-type]
            .where(Conversation.agent_id == agent.id, ReviewItem.settled_at.is_not(None))  # type: ignore[union-attr]
            .order_by(ReviewItem.settled_at.desc())  # type: ignore[union-attr]
            .limit(limit)
        )
    )
