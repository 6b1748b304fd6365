"""The human review queue: claim an item under a lease, judge it against the rubric."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    exists,
    func,
    or_,
    text,
    update,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from agentops.agents.actors import Actor
from agentops.agents.emails import normalise_email
from agentops.agents.roles import REVIEW_ROLES, NotRegistered, require_role
from agentops.audit.service import add_and_record, record_event
from agentops.errors import NotFoundError, RuleViolation
from agentops.review.queue import (
    STAGE_ADJUDICATION,
    STAGE_DONE,
    STAGE_SECOND,
    is_violation,
    lease_until,
    stage_after_verdict,
    validate_findings,
)
from agentops.review.rubric import criteria_for
from agentops.review.rules import require_notes
from agentops.settings import get_settings
from agentops.store.models import (
    QUEUED_CONDITION,
    Agent,
    Conversation,
    ExtraReview,
    ItemStatus,
    Person,
    Review,
    ReviewFinding,
    ReviewItem,
    ReviewSkip,
    Role,
    Rubric,
    RubricCriterion,
    utcnow,
)
from agentops.triggers.replays import verdict_settled_late, verdict_withdrawn

# SQLite picks then claims in two statements: a lost compare-and-set means another writer
# (outside BEGIN IMMEDIATE) just took the row; a few retries suffice.
CLAIM_ATTEMPTS = 5


class LeaseLost(RuleViolation):
    """The reviewer's claim ended (expired and taken over, released, or reviewed elsewhere)."""


@dataclass(frozen=True)
class ItemDetails:
    """Everything a reviewer needs on screen to judge one item."""

    item: ReviewItem
    conversation: Conversation
    rubric: Rubric
    criteria: list[RubricCriterion]


def claim_next(
    session: Session,
    *,
    reviewer: Actor,
    agent: Agent | None = None,
    now: datetime | None = None,
    lease_minutes: int = 30,
) -> ReviewItem | None:
    """Lease the oldest claimable item to the reviewer, or return the one they already hold."""
    now = now or utcnow()
    expires = lease_until(now, lease_minutes)
    person = registered_reviewer(session, actor=reviewer)
    # The claim only takes an item when the reviewer holds none, so the usual case (the
    # next item after a verdict) is one statement; otherwise they get the one they hold.
    taken = _take_next(session, reviewer=person, agent=agent, now=now, expires=expires)
    if taken is None:
        return _held_claim(session, reviewer=person, agent=agent, now=now)
    item, previous_holder = taken
    record_event(
        session,
        actor=person.email,
        kind="review.claimed",
        entity_type="review_item",
        entity_id=item.id,
        payload={
            "conversation_id": item.conversation_id,
            "lease_expires_at": expires,
            "lease_token": item.lease_token,
            "took_over_from": previous_holder,
        },
    )
    return item


def registered_reviewer(session: Session, *, actor: Actor) -> Person:
    """The registered person behind the actor, provided their role may review (never created)."""
    person = session.get(Person, actor.person_id) if actor.person_id is not None else None
    if person is None:
        raise NotRegistered(actor.label)
    require_role(person.role, REVIEW_ROLES, "reviewing")
    return person


def _held_claim(
    session: Session, *, reviewer: Person, agent: Agent | None, now: datetime
) -> ReviewItem | None:
    """The reviewer's oldest live claim (in the agent's queue, if given)."""
    query = select(ReviewItem).where(
        ReviewItem.status == ItemStatus.claimed,
        ReviewItem.claimed_by_id == reviewer.id,
        ReviewItem.lease_expires_at > now,  # type: ignore[operator]
    )
    if agent is not None:
        query = query.join(Conversation).where(Conversation.agent_id == agent.id)
    return session.exec(query.order_by(ReviewItem.id)).first()  # type: ignore[arg-type]


def _claimable(now: Any) -> ColumnElement[bool]:
    """SQL form of queue.can_claim: not reviewed, and open or with a lease run out.

    The first term is the queue index's condition word for word, so both planners use it
    (with a bound parameter neither could prove the index applies); no other term is one
    the status index could serve, which SQLite without statistics would otherwise prefer.
    """
    return and_(
        text(f"reviewitem.{QUEUED_CONDITION}"),
        or_(
            ReviewItem.status == ItemStatus.open,  # type: ignore[arg-type]
            ReviewItem.lease_expires_at.is_(None),  # type: ignore[union-attr]
            ReviewItem.lease_expires_at <= now,
        ),
    )


def queue_order() -> tuple[ColumnElement[datetime], ColumnElement[int]]:
    """Oldest due first; items queued before due times existed fall back to their age."""
    return (
        func.coalesce(ReviewItem.due_at, ReviewItem.created_at),
        ReviewItem.id,  # type: ignore[return-value]
    )


# The claim's statements take parameters, so each shape is built once per process:
# building them costs more CPU than PostgreSQL spends running them.
_MOMENT = ReviewItem.__table__.c.lease_expires_at.type  # type: ignore[attr-defined]
_REVIEWER = bindparam("reviewer_id", type_=Integer)
_AGENT = bindparam("agent_id", type_=Integer)
_NOW = bindparam("now", type_=_MOMENT)
_EXPIRES = bindparam("expires", type_=_MOMENT)
# An UPDATE … RETURNING hands back the row as written: load it into the session's object.
RETURNED_ROWS = {"synchronize_session": False, "populate_existing": True}


@dataclass(frozen=True)
class ClaimStatements:
    """One shape of the claim: the pick (SQLite), the take-by-id (SQLite), and both in one."""

    pick: Select[Any]
    take_by_id: Update
    pick_and_take: Update


@cache
def claim_statements(*, for_agent: bool, senior: bool) -> ClaimStatements:
    """The claim's statements for one shape (an agent's queue or all; senior or not)."""
    pick = _next_claimable(for_agent=for_agent, senior=senior)
    picked = pick.cte("picked")
    claim = {
        "status": ItemStatus.claimed,
        "claimed_by_id": _REVIEWER,
        "claimed_at": _NOW,
        "lease_expires_at": _EXPIRES,
        "lease_token": ReviewItem.lease_token + 1,
    }
    return ClaimStatements(
        pick=pick,
        take_by_id=update(ReviewItem)
        .where(ReviewItem.id == bindparam("item_id", type_=Integer), _claimable(_NOW))  # type: ignore[arg-type]
        .values(claim)
        .returning(ReviewItem),
        # The CTE locks the first row nobody else is taking (FOR NO KEY UPDATE SKIP
        # LOCKED); the UPDATE claims it and RETURNING hands it back: one round trip.
        pick_and_take=update(ReviewItem)
        .where(ReviewItem.id == picked.c.id)  # type: ignore[arg-type]
        .values(claim)
        .returning(ReviewItem, picked.c.previous_holder),
    )


def claim_parameters(
    *, reviewer: Person, agent: Agent | None, now: datetime, expires: datetime
) -> dict[str, Any]:
    """The values the claim statements take."""
    return {
        "reviewer_id": reviewer.id,
        "agent_id": agent.id if agent is not None else None,
        "now": now,
        "expires": expires,
    }


def _next_claimable(*, for_agent: bool, senior: bool) -> Select[Any]:
    """The first item the reviewer may claim, with its previous holder's email (SQL).

    Nothing when the reviewer already holds a live claim (in the agent's queue, if given).
    """
    skipped = exists().where(
        ReviewSkip.review_item_id == ReviewItem.id, ReviewSkip.person_id == _REVIEWER  # type: ignore[arg-type]
    )
    # A second review must be someone else's, and blind; adjudication is for seniors.
    reviewed_first = exists().where(
        Review.review_item_id == ReviewItem.id, Review.reviewer_id == _REVIEWER  # type: ignore[arg-type]
    )
    reviewed_later = exists().where(
        ExtraReview.review_item_id == ReviewItem.id, ExtraReview.reviewer_id == _REVIEWER  # type: ignore[arg-type]
    )
    held = aliased(ReviewItem)
    holds_one = exists().where(
        held.status == ItemStatus.claimed,  # type: ignore[arg-type]
        held.claimed_by_id == _REVIEWER,  # type: ignore[arg-type]
        held.lease_expires_at > _NOW,
    )
    if for_agent:
        holds_one = holds_one.where(
            held.conversation_id.in_(  # type: ignore[attr-defined]
                select(Conversation.id).where(Conversation.agent_id == _AGENT)
            )
        )
    previous = aliased(Person)
    query = (
        select(ReviewItem.id, previous.email.label("previous_holder"))  # type: ignore[attr-defined]
        .outerjoin(previous, previous.id == ReviewItem.claimed_by_id)  # type: ignore[arg-type]
        .where(_claimable(_NOW))
        .where(~skipped, ~reviewed_first, ~reviewed_later, ~holds_one)
    )
    if not senior:
        query = query.where(
            or_(ReviewItem.stage.is_(None), ReviewItem.stage != STAGE_ADJUDICATION)  # type: ignore[arg-type, union-attr]
        )
    if for_agent:
        query = query.join(Conversation, Conversation.id == ReviewItem.conversation_id).where(  # type: ignore[arg-type]
            Conversation.agent_id == _AGENT
        )
    # SKIP LOCKED passes over rows other reviewers are claiming right now; NO KEY UPDATE
    # is the lock an UPDATE of non-key columns takes anyway. SQLite ignores both.
    return (
        query.order_by(*queue_order())  # type: ignore[return-value]
        .limit(1)
        .with_for_update(skip_locked=True, key_share=True, of=ReviewItem)
    )


def _take_next(
    session: Session, *, reviewer: Person, agent: Agent | None, now: datetime, expires: datetime
) -> tuple[ReviewItem, str | None] | None:
    """Claim the first claimable item: (the item, whom it was taken over from), or None."""
    statements = claim_statements(for_agent=agent is not None, senior=is_senior(reviewer))
    values = claim_parameters(reviewer=reviewer, agent=agent, now=now, expires=expires)
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(
            statements.pick_and_take, values, execution_options=RETURNED_ROWS
        ).first()
        return (row[0], row[1]) if row is not None else None
    # SQLite has no row locks: under BEGIN IMMEDIATE the transaction already holds the
    # database's write lock, so picking then claiming is atomic; the compare-and-set
    # guards callers that began an ordinary (deferred) transaction.
    for _attempt in range(CLAIM_ATTEMPTS):
        found = session.execute(statements.pick, values).first()
        if found is None:
            return None
        row = session.execute(
            statements.take_by_id,
            {**values, "item_id": found.id},
            execution_options=RETURNED_ROWS,
        ).first()
        if row is not None:
            return row[0], found.previous_holder
    return None


def _fenced_update(
    session: Session,
    *,
    item: ReviewItem,
    reviewer: Person,
    values: Mapping[str, Any],
    live_at: datetime | None = None,
) -> None:
    """Change the item only if the claim read before is still the reviewer's (one statement).

    The row as read carries the fencing token: a takeover bumps it, a release or verdict
    moves the status, so any change since the read makes this update match nothing.
    With live_at, the lease must also still run at that time.
    """
    query = update(ReviewItem).where(
        ReviewItem.id == item.id,  # type: ignore[arg-type]
        ReviewItem.status == ItemStatus.claimed,  # type: ignore[arg-type]
        ReviewItem.claimed_by_id == reviewer.id,  # type: ignore[arg-type]
        ReviewItem.lease_token == item.lease_token,  # type: ignore[arg-type]
        _same_stage(item.stage),
    )
    if live_at is not None:
        query = query.where(_lease_runs(live_at))
    row = session.execute(
        query.values(dict(values)).returning(ReviewItem),
        execution_options=RETURNED_ROWS,
    ).first()
    if row is None:
        raise _lease_lost(item.id)


def _same_stage(stage: str | None) -> ColumnElement[bool]:
    return ReviewItem.stage.is_(None) if stage is None else ReviewItem.stage == stage  # type: ignore[union-attr,return-value]


def _lease_runs(now: datetime) -> ColumnElement[bool]:
    return or_(ReviewItem.lease_expires_at.is_(None), ReviewItem.lease_expires_at > now)  # type: ignore[arg-type, operator, union-attr]


def _lease_lost(item_id: int | None) -> LeaseLost:
    return LeaseLost(
        f"your lease on review item {item_id} was lost (it expired or was taken over): "
        "your verdict was not saved; claim the next item"
    )


def release_claim(
    session: Session,
    *,
    item_id: int,
    reviewer: Actor,
    lease_token: int | None = None,
    now: datetime | None = None,
) -> ReviewItem:
    """Hand an unfinished item back to the queue (only by the holder of the current lease)."""
    now = now or utcnow()
    current = _current(session, item_id=item_id)
    item = current.item
    if lease_token is not None:
        _require_lease(current, reviewer=reviewer, lease_token=lease_token, now=now)
    holder = _claimant(current, reviewer=reviewer)
    _fenced_update(
        session,
        item=item,
        reviewer=holder,
        values=REOPENED,
        live_at=now if lease_token is not None else None,
    )
    record_event(
        session,
        actor=holder.email,
        kind="review.released",
        entity_type="review_item",
        entity_id=item.id,
        payload={"conversation_id": item.conversation_id},
    )
    return item


def renew_lease(
    session: Session,
    *,
    item_id: int,
    reviewer: Actor,
    lease_token: int,
    lease_minutes: int,
    now: datetime | None = None,
) -> ReviewItem:
    """Extend the reviewer's lease (a heartbeat); raises LeaseLost once it is gone."""
    now = now or utcnow()
    expires = lease_until(now, lease_minutes)
    # One statement: the fencing check and the renewal together. Not audited: a heartbeat
    # every few seconds would drown the trail; claims and verdicts are.
    row = session.execute(
        update(ReviewItem)
        .where(
            ReviewItem.id == item_id,  # type: ignore[arg-type]
            ReviewItem.status == ItemStatus.claimed,  # type: ignore[arg-type]
            ReviewItem.lease_token == lease_token,  # type: ignore[arg-type]
            ReviewItem.claimed_by_id == reviewer.person_id,  # type: ignore[arg-type]
            _lease_runs(now),
        )
        .values(lease_expires_at=expires)
        .returning(ReviewItem),
        execution_options=RETURNED_ROWS,
    ).first()
    if row is None:
        if session.get(ReviewItem, item_id) is None:
            raise NotFoundError(f"no review item {item_id}")
        raise _lease_lost(item_id)
    return row[0]  # type: ignore[no-any-return]


def skip_item(
    session: Session,
    *,
    item_id: int,
    reviewer: Actor,
    lease_token: int,
    reason: str,
    now: datetime | None = None,
) -> ReviewItem:
    """Pass an item back with a reason; it is not offered to this reviewer again."""
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation("say why you skip this item")
    if len(reason) > 1000:
        raise RuleViolation("a skip reason is at most 1000 characters")
    item = release_claim(
        session, item_id=item_id, reviewer=reviewer, lease_token=lease_token, now=now
    )
    add_and_record(
        session,
        row=ReviewSkip(
            review_item_id=item.id,  # type: ignore[arg-type]
            person_id=reviewer.person_id,  # type: ignore[arg-type]
            reason=reason,
            skipped_at=now or utcnow(),
        ),
        actor=reviewer.label,
        kind="review.skipped",
        entity_type="review_item",
        payload={"review_item_id": item.id, "reason": reason},
    )
    return item


def _require_lease(
    current: "_Current", *, reviewer: Actor, lease_token: int, now: datetime
) -> None:
    """The fencing check: this reviewer still holds the very claim the token came from."""
    item, holder = current.item, current.holder
    held = (
        item.status == ItemStatus.claimed
        and holder is not None
        and holder.id == reviewer.person_id
        and item.lease_token == lease_token
        and (item.lease_expires_at is None or item.lease_expires_at > now)
    )
    if not held:
        raise _lease_lost(item.id)


def submit_review(
    session: Session,
    *,
    item_id: int,
    reviewer: Actor,
    findings: Mapping[str, bool],
    notes: dict[str, str] | None = None,
    comment: str | None = None,
    not_applicable: Collection[str] = (),
    lease_token: int | None = None,
    now: datetime | None = None,
) -> Review | ExtraReview:
    """Record the reviewer's judgement on every criterion and the resulting verdict.

    Criteria named in `not_applicable` count as passed; with `lease_token` the submit is
    refused (LeaseLost) unless it comes from the reviewer's current claim. The rules are
    checked on the item as read; one fenced update then applies the verdict only if that
    claim is still the reviewer's, so the row is locked just from there to commit.
    """
    now = now or utcnow()
    notes = notes or {}
    current = _current(session, item_id=item_id)
    item, rubric = current.item, current.rubric
    if lease_token is not None:
        _require_lease(current, reviewer=reviewer, lease_token=lease_token, now=now)
    person = _claimant(current, reviewer=reviewer)
    if item.lease_expires_at is not None and item.lease_expires_at <= now:
        raise RuleViolation(
            f"your claim on review item {item.id} expired at {item.lease_expires_at.isoformat()}: "
            "claim it again before submitting"
        )
    criteria = criteria_for(session, rubric=rubric)
    severities = {c.key: c.severity for c in criteria}
    validate_findings(set(severities), findings)
    if stray := sorted(notes.keys() - severities.keys()):
        raise RuleViolation(f"notes refer to unknown criteria: {', '.join(stray)}")
    if stray := sorted(set(not_applicable) - severities.keys()):
        raise RuleViolation(f"not-applicable names unknown criteria: {', '.join(stray)}")
    findings = {key: passed or key in not_applicable for key, passed in findings.items()}
    require_notes(findings, severities, notes)
    violation = is_violation(findings, severities)
    marks = {
        key: "na" if key in not_applicable else "pass" if findings[key] else "fail"
        for key in severities
    }
    if item.stage in {STAGE_SECOND, STAGE_ADJUDICATION}:
        return _later_review(
            session,
            item=item,
            reviewer=person,
            violation=violation,
            marks=marks,
            notes=notes,
            now=now,
        )
    stage = stage_after_verdict(
        stage=item.stage, needs_second=item.needs_second, violation=violation, first_violation=None
    )
    # Back to the queue for someone else, who will not see this verdict; or settled.
    _fenced_update(
        session,
        item=item,
        reviewer=person,
        values=_after_verdict(stage, violation=violation, now=now),
        live_at=now,
    )
    review = Review(
        review_item_id=item.id,  # type: ignore[arg-type]
        reviewer_id=person.id,  # type: ignore[arg-type]
        violation=violation,
        notes=comment,
        submitted_at=now,
    )
    session.add(review)
    session.flush()
    _add_findings(
        session,
        review=review,
        criteria=criteria,
        findings=findings,
        notes=notes,
        not_applicable=not_applicable,
    )
    record_event(
        session,
        actor=person.email,
        kind="review.submitted",
        entity_type="review",
        entity_id=review.id,
        payload={
            "review_item_id": item.id,
            "conversation_id": item.conversation_id,
            "rubric": {"name": rubric.name, "version": rubric.version},
            "verdict": "violation" if violation else "pass",
            "failed": [c.key for c in criteria if not findings[c.key]],
            "not_applicable": sorted(not_applicable),
            "round": "first",
            "second_review_due": item.needs_second,
        },
    )
    return review


# An unclaimed item back in the queue.
REOPENED: Mapping[str, Any] = {
    "status": ItemStatus.open,
    "claimed_by_id": None,
    "claimed_at": None,
    "lease_expires_at": None,
}


def _after_verdict(stage: str, *, violation: bool, now: datetime) -> dict[str, Any]:
    """The item's new columns: settled with the verdict that counts from now on, or reopened."""
    if stage != STAGE_DONE:
        return {**REOPENED, "stage": stage}
    return {
        "stage": STAGE_DONE,
        "status": ItemStatus.reviewed,
        "final_violation": violation,
        "settled_at": now,
    }


def _later_review(
    session: Session,
    *,
    item: ReviewItem,
    reviewer: Person,
    violation: bool,
    marks: dict[str, str],
    notes: Mapping[str, str],
    now: datetime,
) -> ExtraReview:
    """The blind second review, or the adjudication that settles a disagreement."""
    purpose = item.stage
    if reviewer.id in _reviewer_ids(session, item_id=item.id):  # type: ignore[arg-type]
        raise RuleViolation(f"you already reviewed item {item.id}: someone else must")
    if purpose == STAGE_ADJUDICATION and not is_senior(reviewer):
        raise RuleViolation(f"item {item.id} waits for adjudication by a senior reviewer")
    # The first review is never changed once written, so reading it unlocked is safe.
    first = session.exec(select(Review).where(Review.review_item_id == item.id)).one()
    stage = stage_after_verdict(
        stage=purpose, needs_second=item.needs_second, violation=violation,
        first_violation=first.violation,
    )  # fmt: skip
    _fenced_update(
        session,
        item=item,
        reviewer=reviewer,
        values=_after_verdict(stage, violation=violation, now=now),
        live_at=now,
    )
    extra = ExtraReview(
        review_item_id=item.id,  # type: ignore[arg-type]
        reviewer_id=reviewer.id,  # type: ignore[arg-type]
        purpose=purpose,  # type: ignore[arg-type]
        violation=violation,
        findings=marks,
        notes=dict(notes) or None,
        submitted_at=now,
    )
    session.add(extra)
    session.flush()
    if stage == STAGE_DONE:
        verdict_settled_late(session, conversation_id=item.conversation_id, settled_at=now)
    outcome = "disagreement: sent to adjudication" if stage == STAGE_ADJUDICATION else "settled"
    record_event(
        session,
        actor=reviewer.email,
        kind="review.adjudicated" if purpose == STAGE_ADJUDICATION else "review.second_submitted",
        entity_type="review_item",
        entity_id=item.id,
        payload={
            "conversation_id": item.conversation_id,
            "verdict": "violation" if violation else "pass",
            "first_verdict": "violation" if first.violation else "pass",
            "failed": sorted(key for key, mark in marks.items() if mark == "fail"),
            "outcome": outcome,
        },
    )
    return extra


def is_senior(person: Person) -> bool:
    """Admins and the configured senior reviewers adjudicate."""
    seniors = {
        normalise_email(email)
        for email in get_settings().review_seniors.split(",")
        if email.strip()
    }
    return person.role == Role.admin or person.email in seniors


def _reviewer_ids(session: Session, *, item_id: int) -> set[int]:
    first = session.exec(select(Review.reviewer_id).where(Review.review_item_id == item_id))
    later = session.exec(
        select(ExtraReview.reviewer_id).where(ExtraReview.review_item_id == item_id)
    )
    return set(first) | set(later)


def dispute_verdict(
    session: Session,
    *,
    item_id: int,
    actor: Actor,
    reason: str,
    now: datetime | None = None,
) -> ReviewItem:
    """The agent's owner (or backup) sends a settled verdict to adjudication, with a reason."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation("a dispute needs a reason")
    item = _locked_item(session, item_id=item_id)
    conversation = session.get(Conversation, item.conversation_id)
    agent = session.get(Agent, conversation.agent_id)  # type: ignore[union-attr]
    assert agent is not None
    if actor.person_id is None or actor.person_id not in {agent.owner_id, agent.backup_id}:
        raise RuleViolation(f"only {agent.name}'s owner or backup may dispute its verdicts")
    settled = item.settled_at
    if item.status != ItemStatus.reviewed or settled is None:
        raise RuleViolation(f"review item {item.id} has no settled verdict to dispute")
    window = timedelta(hours=get_settings().dispute_window_hours)
    if now - settled > window:
        raise RuleViolation(
            f"the dispute window for item {item.id} closed at {(settled + window).isoformat()}"
        )
    previous = item.final_violation
    item.stage = STAGE_ADJUDICATION
    for column, value in REOPENED.items():
        setattr(item, column, value)
    item.final_violation = None
    item.settled_at = None
    verdict_withdrawn(session, version_id=conversation.agent_version_id)  # type: ignore[union-attr]
    item.disputed_by_id = actor.person_id
    item.disputed_at = now
    item.dispute_reason = reason
    add_and_record(
        session,
        row=item,
        actor=actor.label,
        kind="review.disputed",
        entity_type="review_item",
        payload={
            "conversation_id": item.conversation_id,
            "verdict": "violation" if previous else "pass",
            "reason": reason,
            "channel": actor.channel.value,
        },
    )
    return item


def _add_findings(
    session: Session,
    *,
    review: Review,
    criteria: list[RubricCriterion],
    findings: Mapping[str, bool],
    notes: Mapping[str, str],
    not_applicable: Collection[str],
) -> None:
    session.add_all(
        ReviewFinding(
            review_id=review.id,  # type: ignore[arg-type]
            criterion_key=c.key,
            severity=c.severity,
            passed=bool(findings[c.key]),
            note=notes.get(c.key),
            not_applicable=c.key in not_applicable,
        )
        for c in criteria
    )


def _locked_item(session: Session, *, item_id: int) -> ReviewItem:
    item = session.exec(
        select(ReviewItem).where(ReviewItem.id == item_id).with_for_update()
    ).first()
    if item is None:
        raise NotFoundError(f"no review item {item_id}")
    return item


@dataclass(frozen=True)
class _Current:
    """An item as stored now, with the person holding its claim and its rubric."""

    item: ReviewItem
    holder: Person | None
    rubric: Rubric


def _current(session: Session, *, item_id: int) -> _Current:
    """Read the item, its holder and its rubric in one query, without a lock.

    The fenced update that applies a change re-checks the claim read here.
    """
    row = session.exec(
        select(ReviewItem, Person, Rubric)
        .outerjoin(Person, Person.id == ReviewItem.claimed_by_id)  # type: ignore[arg-type]
        .join(Rubric, Rubric.id == ReviewItem.rubric_id)  # type: ignore[arg-type]
        .where(ReviewItem.id == item_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise NotFoundError(f"no review item {item_id}")
    return _Current(*row)


def _claimant(current: _Current, *, reviewer: Actor) -> Person:
    """The reviewer, provided they hold the claim on this still-unreviewed item."""
    item, holder = current.item, current.holder
    if item.status == ItemStatus.reviewed:
        raise RuleViolation(f"review item {item.id} has already been reviewed")
    if item.status != ItemStatus.claimed or holder is None:
        raise RuleViolation(f"review item {item.id} is not claimed: claim it first")
    if holder.id != reviewer.person_id:
        raise RuleViolation(
            f"review item {item.id} is claimed by {holder.email}, not {reviewer.label}"
        )
    return holder


def queue_counts(session: Session, *, agent: Agent | None = None) -> dict[str, int]:
    """Number of items in each stored status (an expired claim still counts as claimed)."""
    query = select(ReviewItem.status, func.count()).group_by(ReviewItem.status)
    if agent is not None:
        query = query.join(Conversation).where(Conversation.agent_id == agent.id)
    counts = {status.value: 0 for status in ItemStatus}
    for status, count in session.exec(query):
        counts[ItemStatus(status).value] = count
    return counts


def item_details(session: Session, *, item_id: int) -> ItemDetails:
    """The item with its conversation, rubric and criteria, for display."""
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFoundError(f"no review item {item_id}")
    conversation = session.get(Conversation, item.conversation_id)
    rubric = session.get(Rubric, item.rubric_id)
    if conversation is None or rubric is None:
        raise NotFoundError(f"review item {item_id} refers to missing data")
    return ItemDetails(
        item=item,
        conversation=conversation,
        rubric=rubric,
        criteria=criteria_for(session, rubric=rubric),
    )
