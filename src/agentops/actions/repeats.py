"""Rollback requests that keep expiring: back off, and say how many went unanswered.

After a request expires the breach is usually still there, so the next evaluation would
propose again at once: one new request per cycle, forever, with nobody answering. The
next proposal for the same version and trigger instead waits, longer after each expiry,
and the one that is made tells the operators it is the Nth unanswered request.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from agentops.store.models import Action, ActionKind, ActionStatus, Agent, AgentVersion, Evaluation

MAX_BACKOFF = timedelta(days=1)
# How far back a streak is looked for: more expiries than this are "at least this many".
STREAK_LIMIT = 50


@dataclass(frozen=True)
class Streak:
    """Consecutive expired requests for one version and trigger, and when the last expired."""

    unanswered: int
    last_expired_at: datetime | None


def backoff_after(unanswered: int, *, base: timedelta) -> timedelta:
    """How long to wait after the latest of `unanswered` expired requests (doubling, capped)."""
    if unanswered <= 0:
        return timedelta(0)
    factor: int = 2 ** min(unanswered - 1, 20)
    return min(MAX_BACKOFF, base * factor)


def next_allowed(streak: Streak, *, base: timedelta) -> datetime | None:
    """When a new request may be made; None when nothing holds it back."""
    if streak.unanswered == 0 or streak.last_expired_at is None:
        return None
    return streak.last_expired_at + backoff_after(streak.unanswered, base=base)


def unanswered_streak(
    session: Session,
    *,
    agent: Agent,
    from_version: AgentVersion,
    trigger_name: str,
    before_action_id: int | None = None,
) -> Streak:
    """Requests to roll back this version on this trigger that expired in a row, latest first."""
    query = (
        select(Action.status, Action.final_deadline)
        .join(Evaluation, col(Evaluation.id) == col(Action.evaluation_id))
        .where(
            Action.agent_id == agent.id,
            Action.from_version_id == from_version.id,
            Action.kind == ActionKind.rollback,
            Evaluation.trigger_name == trigger_name,
        )
    )
    if before_action_id is not None:
        query = query.where(col(Action.id) < before_action_id)
    rows = session.exec(query.order_by(col(Action.id).desc()).limit(STREAK_LIMIT)).all()
    count, last = 0, None
    for status, deadline in rows:
        if status != ActionStatus.expired:
            break
        if last is None and deadline is not None:
            last = deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)
        count += 1
    return Streak(unanswered=count, last_expired_at=last)
