"""Move every action on from the deadlines stored in the database, with no gate process alive.

Idempotent and safe to run from several processes at once: each step re-checks its
condition under the action's write lock, so a second sweeper finds nothing left to do.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.deployer import Deployer
from agentops.actions.executor import reconcile
from agentops.actions.service import (
    escalate_if_due,
    expire,
    list_actions,
    stale_executing,
    undecided_actions,
)
from agentops.store.db import write_session
from agentops.store.models import ActionStatus, utcnow

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did, by action id."""

    escalated: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    reconciled: dict[int, str] = field(default_factory=dict)
    unsettled: dict[int, str] = field(default_factory=dict)
    approved_not_run: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when the sweep moved at least one action on."""
        return bool(self.escalated or self.expired or self.reconciled)


def sweep(
    engine: Engine,
    *,
    deployer: Deployer | None,
    deploy_timeout_s: float,
    health_timeout_s: float = 60,
    now: datetime | None = None,
) -> SweepReport:
    """Escalate, expire and reconcile whatever is due; report approved actions left unrun."""
    now = now or utcnow()
    report = SweepReport()
    with Session(engine) as session:
        undecided = [action.id for action in undecided_actions(session)]
        stale = [
            action.id
            for action in stale_executing(
                session, older_than=now - timedelta(seconds=deploy_timeout_s)
            )
        ]
        report.approved_not_run = [
            action.id  # type: ignore[misc]
            for action in list_actions(session, status=ActionStatus.approved)
        ]
    for action_id in undecided:
        assert action_id is not None
        _step_deadlines(engine, action_id=action_id, now=now, report=report)
    for action_id in stale:
        assert action_id is not None
        _settle(engine, action_id, deployer, report, health_timeout_s=health_timeout_s)
    return report


def _step_deadlines(engine: Engine, *, action_id: int, now: datetime, report: SweepReport) -> None:
    with write_session(engine) as session:
        if escalate_if_due(session, action_id=action_id, now=now):
            report.escalated.append(action_id)
    with write_session(engine) as session:
        if expire(session, action_id=action_id, now=now):
            report.expired.append(action_id)


def _settle(
    engine: Engine,
    action_id: int,
    deployer: Deployer | None,
    report: SweepReport,
    *,
    health_timeout_s: float,
) -> None:
    if deployer is None:
        report.unsettled[action_id] = "no deployer configured to ask what is live"
        return
    action = reconcile(
        engine,
        action_id=action_id,
        deployer=deployer,
        problem="execution outlived its deploy timeout (the executor stopped)",
        health_timeout_s=health_timeout_s,
    )
    if action.status == ActionStatus.executing:
        report.unsettled[action_id] = "the deployer could not say what is live; retried next sweep"
    else:
        report.reconciled[action_id] = action.status.value
