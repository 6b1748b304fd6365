"""Decide an action as a verified actor through one channel, then wake whatever waits on it.

The one entry point the CLI, Slack and (later) the web share: the decision and its
audit event commit in one transaction (a refusal commits too, then is raised), and only
a newly recorded decision wakes the waiter, so a double click never runs anything twice.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.service import ApprovalRefused, decide, get_action, get_approval
from agentops.agents.actors import Actor
from agentops.store.db import write_session
from agentops.store.models import ActionStatus, Decision, Person
from agentops.store.refusals import refusal_kept


@dataclass(frozen=True)
class DecisionOutcome:
    """What a decision call left on record, and whether this call recorded it."""

    action_id: int
    decision: Decision
    newly_recorded: bool
    status: ActionStatus
    flow_run_id: str | None
    decided_by: str
    decided_at: datetime


class Waker(Protocol):
    """Whatever waits on a decision: a paused gate run, an in-process executor, nothing."""

    def wake(self, outcome: DecisionOutcome) -> None:
        """Called once, after the decision is committed."""


class NoWaker:
    """Nothing waits: a gate polling the store (or `agentops actions run`) picks it up."""

    def wake(self, outcome: DecisionOutcome) -> None:
        """Do nothing."""


def decide_and_wake(
    engine: Engine,
    *,
    action_id: int,
    actor: Actor,
    decision: Decision,
    reason: str | None,
    waker: Waker,
    now: datetime | None = None,
) -> DecisionOutcome:
    """Record the decision (raises ApprovalRefused, already committed), then wake the waiter."""
    with write_session(engine) as session, refusal_kept(session, ApprovalRefused):
        result = decide(
            session,
            action_id=action_id,
            actor=actor,
            decision=decision,
            reason=reason,
            now=now,
        )
        approver = session.get(Person, result.approval.approver_id)
        outcome = DecisionOutcome(
            action_id=action_id,
            decision=result.approval.decision,
            newly_recorded=result.newly_recorded,
            status=result.action.status,
            flow_run_id=result.action.flow_run_id,
            decided_by=approver.email if approver else "?",
            decided_at=result.approval.decided_at,
        )
    if outcome.newly_recorded:
        waker.wake(outcome)
    return outcome


def recorded_decision(engine: Engine, *, action_id: int) -> DecisionOutcome | None:
    """The decision already on record for an action, if any (for "already approved by X")."""
    with Session(engine) as session:
        approval = get_approval(session, action_id=action_id)
        if approval is None:
            return None
        action = get_action(session, action_id=action_id)
        approver = session.get(Person, approval.approver_id)
        return DecisionOutcome(
            action_id=action_id,
            decision=approval.decision,
            newly_recorded=False,
            status=action.status,
            flow_run_id=action.flow_run_id,
            decided_by=approver.email if approver else "?",
            decided_at=approval.decided_at,
        )
