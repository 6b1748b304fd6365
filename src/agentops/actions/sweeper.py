"""Move every action on from what the database stores, with no gate process alive.

Idempotent and safe to run from several processes at once: each step re-checks its
condition under the action's write lock, so a second sweeper finds nothing left to do.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.deployer import Deployer, DeployerError
from agentops.actions.executor import execute_approved, reconcile_explained, settle_if_live
from agentops.actions.service import (
    SYSTEM_ACTOR,
    ExecutionRefused,
    approved_before,
    escalate_if_due,
    expire,
    follow_deployer,
    list_actions,
    open_action_for,
    stale_executing,
    undecided_actions,
)
from agentops.agents.actors import Actor, system_actor
from agentops.agents.service import get_agent, list_agents
from agentops.errors import RuleViolation
from agentops.store.db import write_session
from agentops.store.models import ActionStatus, utcnow

SWEEPER = system_actor("sweeper")
log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did, by action id (and agent name for drift)."""

    escalated: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    executed: dict[int, str] = field(default_factory=dict)
    reconciled: dict[int, str] = field(default_factory=dict)
    unsettled: dict[int, str] = field(default_factory=dict)
    followed: dict[str, str] = field(default_factory=dict)
    approved_not_run: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when the sweep moved at least one action or agent on."""
        return bool(
            self.escalated or self.expired or self.executed or self.reconciled or self.followed
        )


def sweep(
    engine: Engine,
    *,
    deployer: Deployer | None,
    deploy_timeout_s: float,
    health_timeout_s: float = 60,
    run_approved_after_s: float | None = None,
    now: datetime | None = None,
    actor: Actor | None = None,
) -> SweepReport:
    """Escalate, expire, run approved actions left behind, reconcile, and follow the deployer.

    With a deployer, an action approved more than `run_approved_after_s` ago and never run
    is executed (None: only reported), a stuck execution is settled from what is live, and
    each agent with nothing in flight takes the live version the deployer reports.
    `actor` names who sweeps in the audit trail (the serve process or a flow run).
    """
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
        in_flight = [
            action.id
            for action in stale_executing(session, older_than=now)
            if action.id not in stale
        ]
    for action_id in undecided:
        assert action_id is not None
        _step_deadlines(
            engine,
            action_id=action_id,
            now=now,
            report=report,
            actor=actor.label if actor else SYSTEM_ACTOR,
        )
    if deployer is not None and run_approved_after_s is not None:
        _run_left_behind(
            engine,
            deployer,
            report,
            cutoff=now - timedelta(seconds=run_approved_after_s),
            health_timeout_s=health_timeout_s,
            actor=actor or SWEEPER,
        )
    for action_id in stale:
        assert action_id is not None
        _settle(
            engine,
            action_id,
            deployer,
            report,
            health_timeout_s=health_timeout_s,
            actor=actor or SWEEPER,
        )
    if deployer is not None:
        # An executor that died after its deploy call leaves its action executing although
        # the target is live: settle it now, not after the deploy timeout.
        for action_id in in_flight:
            assert action_id is not None
            settled = settle_if_live(
                engine, action_id=action_id, deployer=deployer, actor=actor or SWEEPER
            )
            if settled is not None and settled.status != ActionStatus.executing:
                report.reconciled[action_id] = settled.status.value
    if deployer is not None:
        _follow_live_versions(engine, deployer, report, actor=actor or SWEEPER)
    with Session(engine) as session:
        report.approved_not_run = [
            action.id  # type: ignore[misc]
            for action in list_actions(session, status=ActionStatus.approved)
        ]
    return report


def _step_deadlines(
    engine: Engine, *, action_id: int, now: datetime, report: SweepReport, actor: str
) -> None:
    with write_session(engine) as session:
        if escalate_if_due(session, action_id=action_id, now=now, actor=actor):
            report.escalated.append(action_id)
    with write_session(engine) as session:
        if expire(session, action_id=action_id, now=now, actor=actor):
            report.expired.append(action_id)


def _run_left_behind(
    engine: Engine,
    deployer: Deployer,
    report: SweepReport,
    *,
    cutoff: datetime,
    health_timeout_s: float,
    actor: Actor,
) -> None:
    """Execute approvals whose gate never ran them (the gate process died, or none existed)."""
    with Session(engine) as session:
        waiting = [action.id for action in approved_before(session, cutoff=cutoff)]
    for action_id in waiting:
        assert action_id is not None
        try:
            action = execute_approved(
                engine,
                action_id=action_id,
                deployer=deployer,
                health_timeout_s=health_timeout_s,
                actor=actor,
            )
        except ExecutionRefused as refused:
            report.executed[action_id] = f"refused: {refused}"
            continue
        except RuleViolation:
            continue  # another process started it first
        report.executed[action_id] = action.status.value


def _settle(
    engine: Engine,
    action_id: int,
    deployer: Deployer | None,
    report: SweepReport,
    *,
    health_timeout_s: float,
    actor: Actor,
) -> None:
    if deployer is None:
        report.unsettled[action_id] = "no deployer configured to ask what is live"
        return
    result = reconcile_explained(
        engine,
        action_id=action_id,
        deployer=deployer,
        problem="execution outlived its deploy timeout (the executor stopped)",
        health_timeout_s=health_timeout_s,
        actor=actor,
    )
    action = result.action
    if action.status == ActionStatus.executing:
        report.unsettled[action_id] = f"{result.waiting or 'still executing'}; retried next sweep"
    else:
        report.reconciled[action_id] = action.status.value


def _follow_live_versions(
    engine: Engine, deployer: Deployer, report: SweepReport, *, actor: Actor
) -> None:
    """A rollout that finished after its action was settled still reaches the store."""
    with Session(engine) as session:
        agents = list_agents(session)
        idle = [agent.name for agent in agents if open_action_for(session, agent=agent) is None]
    for name in idle:
        try:
            state = deployer.live(agent=name)
        except DeployerError as exc:
            log.info("cannot ask the deployer about %s: %s", name, exc)
            continue
        if state.version is None or state.rolling_out:
            continue  # a rollout under way is followed once it settles
        with write_session(engine) as session:
            agent = get_agent(session, name=name)
            if open_action_for(session, agent=agent) is not None:
                continue  # an action started meanwhile: it owns the outcome
            if follow_deployer(session, agent=agent, observed=state.version, actor=actor):
                report.followed[name] = state.version
