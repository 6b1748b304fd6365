"""Read a version's observations for its triggers: what is new since a chart's cursor.

A cursor is the last observation read in (time, id) order and the highest id read. A row
later in that order, or stored afterwards with any time (a higher id), is new. With a
cursor every read is an index range over what is new, so an evaluation costs what arrived
since the last one, not the version's history:
- conversations: (agent_version_id, started_at, id) from the cursor's time on, and
  (agent_version_id, id) above the highest id read;
- reviews: review ids above the highest read, and verdicts settled
  (reviewitem.settled_at) or, for rows from before settlement times, submitted
  (review.submitted_at) since the cursor's time; then the version's among them.
Without a cursor (a new chart, or a replay) the version's whole history is read once.
"""

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, true
from sqlmodel import Session, col, select

from agentops.store.models import Conversation, ItemStatus, Review, ReviewItem
from agentops.triggers.config import (
    AnyTrigger,
    EscalationRateTrigger,
    LatencyTrigger,
    NegativeSentimentTrigger,
    NotContainedTrigger,
)
from agentops.triggers.evaluate import Observation

Cursor = tuple[datetime | None, int | None, int | None]
NO_CURSOR: Cursor = (None, None, None)
# Ids per IN list when the version's rows are picked out of what is new.
ID_CHUNK = 5_000


@dataclass(frozen=True)
class ConversationFacts:
    """A conversation as the conversation triggers see it."""

    id: int
    at: datetime
    escalated: bool
    contained: bool
    sentiment: float
    latency_ms: int | None


def new_observations(
    session: Session,
    *,
    trigger: AnyTrigger,
    version_id: int,
    as_of: datetime,
    cursor: Cursor,
) -> tuple[list[Observation], Cursor]:
    """The version's observations after the cursor and up to as_of, in time order."""
    if trigger.unit == "reviews":
        return new_reviews(session, version_id=version_id, as_of=as_of, cursor=cursor)
    rows, advanced = new_conversations(session, version_id=version_id, as_of=as_of, cursor=cursor)
    return conversation_observations(trigger, rows), advanced


def conversation_observations(
    trigger: AnyTrigger, rows: Iterable[ConversationFacts]
) -> list[Observation]:
    """The trigger's yes/no draws from these conversations (some say nothing, e.g. no latency)."""
    observations = []
    for row in rows:
        event = conversation_event(
            trigger,
            escalated=row.escalated,
            contained=row.contained,
            sentiment=row.sentiment,
            latency_ms=row.latency_ms,
        )
        if event is not None:
            observations.append(Observation(row.id, row.at, event))
    return observations


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


def new_conversations(
    session: Session, *, version_id: int, as_of: datetime, cursor: Cursor
) -> tuple[list[ConversationFacts], Cursor]:
    """The version's conversations after the cursor and up to as_of, in (time, id) order."""
    facts = select(  # type: ignore[call-overload]
        Conversation.id,
        Conversation.started_at,
        Conversation.escalated,
        Conversation.contained,
        Conversation.sentiment,
        Conversation.latency_ms,
    ).where(Conversation.agent_version_id == version_id)
    order = (col(Conversation.started_at), col(Conversation.id))
    at, last_id, max_seen = cursor
    if at is None or last_id is None:
        parts = [_facts(session, facts.where(Conversation.started_at <= as_of).order_by(*order))]
    else:
        parts = [
            _facts(
                session,
                facts.where(
                    Conversation.started_at >= at,
                    Conversation.started_at <= as_of,
                    _after(Conversation.started_at, Conversation.id, cursor),
                ).order_by(*order),
            )
        ]
        if max_seen is not None:
            # Stored since the last read but dated before the cursor. Only the id bounds
            # this query, so it runs on (agent_version_id, id) and not on the version's
            # time index; the dates are checked here.
            late = _facts(session, facts.where(col(Conversation.id) > max_seen).order_by(*order))
            parts.append([row for row in late if row.at < at and row.at <= as_of])
    rows = list(heapq.merge(*parts, key=lambda row: (row.at, row.id)))
    return rows, _advance(cursor, [(row.at, row.id) for row in rows])


def _facts(session: Session, query: Any) -> list[ConversationFacts]:
    return [ConversationFacts(*row) for row in session.exec(query)]


def new_reviews(
    session: Session, *, version_id: int, as_of: datetime, cursor: Cursor
) -> tuple[list[Observation], Cursor]:
    """The version's settled verdicts after the cursor and up to as_of, in time order.

    An item waiting for its blind second review or for adjudication counts in no trigger;
    once settled it counts with its final verdict, at the time it was settled.
    """
    settled_at = _settled_at()
    verdicts = (
        select(
            Review.id,
            settled_at,
            func.coalesce(ReviewItem.final_violation, Review.violation),
            ReviewItem.conversation_id,
        )
        .join(ReviewItem, col(Review.review_item_id) == col(ReviewItem.id))
        .where(_settled(), settled_at <= as_of, _after(settled_at, Review.id, cursor))
    )
    at, last_id, _ = cursor
    if at is None or last_id is None:
        rows = session.exec(
            verdicts.join(Conversation, col(ReviewItem.conversation_id) == col(Conversation.id))
            .where(Conversation.agent_version_id == version_id)
            .order_by(settled_at, col(Review.id))
        ).all()
    else:
        new = _new_verdicts(session, verdicts, cursor)
        mine = _of_version(session, (row[3] for row in new), version_id)
        rows = [row for row in new if row[3] in mine]
    if not rows:
        return [], cursor
    first = _first_settled(session, conversation_ids={row[3] for row in rows})
    observations = [
        Observation(review_id, at, bool(violation))  # type: ignore[arg-type]
        for review_id, at, violation, conversation_id in rows
        if first[conversation_id] == (at, review_id)
    ]
    return observations, _advance(cursor, [(row[1], row[0]) for row in rows])  # type: ignore[misc]


def _new_verdicts(session: Session, verdicts: Any, cursor: Cursor) -> list[Any]:
    """Every agent's verdicts new since the cursor, each through its own index."""
    at, _, max_seen = cursor
    ranges = [
        col(ReviewItem.settled_at) >= at,
        and_(col(ReviewItem.settled_at).is_(None), col(Review.submitted_at) >= at),
    ]
    if max_seen is not None:
        ranges.append(col(Review.id) > max_seen)
    found: dict[int, Any] = {}
    for bound in ranges:
        for row in session.exec(verdicts.where(bound)):
            found[row[0]] = row
    return sorted(found.values(), key=lambda row: (row[1], row[0]))


def _of_version(session: Session, conversation_ids: Iterable[int], version_id: int) -> set[int]:
    """Which of these conversations belong to the version (primary-key look-ups)."""
    mine: set[int] = set()
    for chunk in _chunks(sorted(set(conversation_ids))):
        mine.update(
            session.exec(
                select(Conversation.id).where(  # type: ignore[arg-type]
                    col(Conversation.id).in_(chunk), Conversation.agent_version_id == version_id
                )
            )
        )
    return mine


def _first_settled(session: Session, *, conversation_ids: set[int]) -> dict[int, tuple[Any, int]]:
    """Each conversation's first settled review, (time, id): only that one is an observation.

    A conversation reviewed again (say under a newer rubric) still counts once.
    """
    settled_at = _settled_at()
    first: dict[int, tuple[Any, int]] = {}
    for chunk in _chunks(sorted(conversation_ids)):
        for review_id, at, conversation_id in session.exec(
            select(Review.id, settled_at, ReviewItem.conversation_id)
            .join(ReviewItem, col(Review.review_item_id) == col(ReviewItem.id))
            .where(col(ReviewItem.conversation_id).in_(chunk), _settled())
        ):
            key = (at, review_id)
            if conversation_id not in first or key < first[conversation_id]:
                first[conversation_id] = key  # type: ignore[assignment]
    return first


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start : start + ID_CHUNK]


def settled_reviews(session: Session, *, version_id: int, as_of: datetime) -> list[Observation]:
    """Every review observation the version's triggers count, from the start."""
    observations, _ = new_reviews(session, version_id=version_id, as_of=as_of, cursor=NO_CURSOR)
    return observations


def _after(at_column: Any, id_column: Any, cursor: Cursor) -> Any:
    at, last_id, max_seen = cursor
    if at is None or last_id is None:
        return true()
    later = or_(at_column > at, and_(at_column == at, id_column > last_id))
    return or_(later, id_column > max_seen) if max_seen is not None else later


def _advance(cursor: Cursor, keys: list[tuple[datetime, int]]) -> Cursor:
    """The cursor moved past these (time, id) keys."""
    if not keys:
        return cursor
    at, last_id, max_seen = cursor
    newest = max(keys)
    if at is None or last_id is None or newest > (at, last_id):
        at, last_id = newest
    highest = max(key[1] for key in keys)
    return at, last_id, highest if max_seen is None else max(max_seen, highest)


def _settled_at() -> Any:
    # The column type keeps the result a timezone-aware datetime on SQLite too.
    return func.coalesce(
        ReviewItem.settled_at, Review.submitted_at, type_=ReviewItem.__table__.c.settled_at.type  # type: ignore[attr-defined]
    )


def _settled() -> Any:
    return or_(col(ReviewItem.stage).is_(None), col(ReviewItem.stage) == "done")


def review_backlog(session: Session, *, version_id: int, now: datetime) -> dict[str, Any]:
    """The version's sampled items without a settled verdict: how many, how many overdue."""
    due = func.coalesce(
        ReviewItem.due_at, ReviewItem.created_at, type_=ReviewItem.__table__.c.due_at.type  # type: ignore[attr-defined]
    )
    # An unsettled item is always back in the queue (open or claimed): a first review
    # settles it or reopens it for a second review or adjudication. The status index then
    # finds the backlog without reading the version's reviewed history.
    waiting = session.exec(
        select(ReviewItem.conversation_id, due).where(
            col(ReviewItem.status).in_([ItemStatus.open, ItemStatus.claimed]),
            or_(col(ReviewItem.stage).is_(None), col(ReviewItem.stage) != "done"),
        )
    ).all()
    mine = _of_version(session, (conversation_id for conversation_id, _ in waiting), version_id)
    dues = [due_at for conversation_id, due_at in waiting if conversation_id in mine]
    overdue = sum(1 for moment in dues if moment <= now)
    return {
        "unsettled": len(dues),
        "overdue": overdue,
        "note": (
            f"{len(dues)} sampled conversation(s) not yet reviewed ({overdue} overdue): "
            "this evaluation ran without them"
        ),
    }
