"""Execute an approved action through the deployer, and make the store follow what is live.

Plain Python over the deployer port: the CLI, the flows and the sweeper all call it.
After any failure the deployer is asked what actually serves the agent, and that is
recorded; a target that went live unhealthy is rolled back to the version before it.
"""

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.deployer import (
    Deployer,
    DeployerError,
    DeployerTimeout,
    LiveState,
    Rollout,
)
from agentops.actions.service import (
    ExecutionRefused,
    get_action,
    mark_executing,
    record_execution,
)
from agentops.agents.actors import Actor, system_actor
from agentops.audit.service import record_event
from agentops.errors import RuleViolation
from agentops.redaction import redact
from agentops.store.db import write_session
from agentops.store.models import Action, ActionStatus, Agent, AgentVersion
from agentops.store.refusals import refusal_kept

EXECUTOR = system_actor("executor")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeploymentPlan:
    """What one execution switches: the agent, the target and the version it replaces."""

    action_id: int
    agent: str
    target: str
    previous: str
    idempotency_key: str


def execute_approved(
    engine: Engine,
    *,
    action_id: int,
    deployer: Deployer | None,
    health_timeout_s: float,
    actor: Actor = EXECUTOR,
) -> Action:
    """Deploy an approved action's target and verify it; raises ExecutionRefused without proof."""
    plan = _start(engine, action_id=action_id, actor=actor)
    if deployer is None:
        return _finish(
            engine,
            plan,
            succeeded=False,
            detail="no deployer configured: set AGENTOPS_DEPLOYER_URL; nothing was deployed",
            actor=actor,
        )
    try:
        deployment = _deploy(deployer, plan)
        _note_deployment(engine, plan, deployer, deployment, actor=actor)
        health = deployer.wait_until_healthy(
            agent=plan.agent, version=plan.target, timeout_s=health_timeout_s
        )
    except DeployerError as exc:
        return reconcile(
            engine,
            action_id=action_id,
            deployer=deployer,
            problem=str(exc),
            health_timeout_s=health_timeout_s,
            actor=actor,
        )
    except BaseException as exc:
        # Interrupted mid-deploy: try to settle the record now; the sweeper retries otherwise.
        _try_reconcile(engine, action_id, deployer, problem=f"interrupted: {exc!r}", actor=actor)
        raise
    if health.healthy:
        return _finish(
            engine, plan, succeeded=True, detail=f"{deployment}: {health.detail}", actor=actor
        )
    return reconcile(
        engine,
        action_id=action_id,
        deployer=deployer,
        problem=f"{deployment}: {health.detail}",
        health_timeout_s=health_timeout_s,
        actor=actor,
    )


def _deploy(deployer: Deployer, plan: DeploymentPlan) -> str:
    """Post the deployment once; a timed-out post may still roll out, so health decides."""
    try:
        deployment_id = deployer.deploy(
            agent=plan.agent,
            version=plan.target,
            action_id=plan.action_id,
            idempotency_key=plan.idempotency_key,
        )
    except DeployerTimeout as exc:
        return f"deployment of unknown id ({exc})"
    return f"deployment {deployment_id}"


def _note_deployment(
    engine: Engine, plan: DeploymentPlan, deployer: Deployer, deployment: str, *, actor: Actor
) -> None:
    """Keep the deployer's reference on the action; a committed change also goes in the trail.

    A deployer that changes a configuration repository (GitOps) says what it committed
    through an optional `change_record(agent=…)`: the commit and pull request are audited.
    """
    change_record = getattr(deployer, "change_record", None)
    change = change_record(agent=plan.agent) if change_record is not None else None
    with write_session(engine) as session:
        action = session.get(Action, plan.action_id)
        if action is None or action.status != ActionStatus.executing:
            return
        action.deployment_ref = redact(deployment)[:1000]
        session.add(action)
        if change:
            record_event(
                session,
                actor=actor.label,
                kind="action.change_committed",
                entity_type="action",
                entity_id=plan.action_id,
                payload={"agent": plan.agent, **change},
            )


def reconcile(
    engine: Engine,
    *,
    action_id: int,
    deployer: Deployer,
    problem: str,
    health_timeout_s: float = 60,
    actor: Actor = EXECUTOR,
) -> Action:
    """Settle an executing action from what the deployer serves; leave it if it cannot say."""
    return reconcile_explained(
        engine,
        action_id=action_id,
        deployer=deployer,
        problem=problem,
        health_timeout_s=health_timeout_s,
        actor=actor,
    ).action


@dataclass(frozen=True)
class Reconciled:
    """The action after reconciliation, and why it is still executing (None once settled)."""

    action: Action
    waiting: str | None = None


def reconcile_explained(
    engine: Engine,
    *,
    action_id: int,
    deployer: Deployer,
    problem: str,
    health_timeout_s: float = 60,
    actor: Actor = EXECUTOR,
) -> Reconciled:
    """Like `reconcile`, and says why an action is left executing.

    A deployer that reports a rollout still under way is believed: the action waits for it
    rather than being judged on a half-finished switch. A failed rollout is unhealthy.
    """
    plan = _plan(engine, action_id)
    if plan is None:
        return Reconciled(_read(engine, action_id))  # someone else settled it meanwhile
    try:
        state = deployer.live(agent=plan.agent)
    except DeployerError as exc:
        log.warning("action #%s: cannot ask the deployer what is live: %s", action_id, exc)
        return Reconciled(
            _read(engine, action_id), waiting=f"the deployer could not say what is live: {exc}"
        )
    if state.rolling_out:
        log.info("action #%s: the deployer is still rolling out: %s", action_id, state.describe())
        return Reconciled(
            _read(engine, action_id),
            waiting=f"the deployer is still rolling out: {state.describe()}",
        )
    if state.version == plan.target and state.serves_healthily:
        detail = f"{problem}; the deployer reports {plan.target} live and healthy"
        return Reconciled(_finish(engine, plan, succeeded=True, detail=detail, actor=actor))
    if state.version == plan.target:
        reverted = _revert(
            engine, plan, deployer, problem=problem, timeout_s=health_timeout_s, actor=actor
        )
        return Reconciled(reverted)
    served = state.version or "no version"
    failed = "; the rollout failed" if state.rollout == Rollout.failed else ""
    detail = f"{problem}; the deployer serves {served}{failed}, so {plan.target} is not live"
    return Reconciled(
        _finish(engine, plan, succeeded=False, detail=detail, observed=state.version, actor=actor)
    )


def settle_if_live(
    engine: Engine, *, action_id: int, deployer: Deployer, actor: Actor = EXECUTOR
) -> Action | None:
    """Settle an executing action as succeeded when its target already serves healthy.

    Only proof of success settles it early: a rollout still under way, or a deployer that
    cannot say, leaves the action to its executor (or to reconcile after the timeout).
    """
    plan = _plan(engine, action_id)
    if plan is None:
        return None
    state = _live_or_none(deployer, plan.agent)
    if state is None or state.version != plan.target or state.rolling_out:
        return None
    if not state.serves_healthily:
        return None
    detail = f"the deployer reports {plan.target} live and healthy (settled by the sweeper)"
    return _finish(engine, plan, succeeded=True, detail=detail, actor=actor)


def _revert(
    engine: Engine,
    plan: DeploymentPlan,
    deployer: Deployer,
    *,
    problem: str,
    timeout_s: float,
    actor: Actor,
) -> Action:
    """The target went live but is unhealthy: put the previous version back, record both."""
    with write_session(engine) as session:
        record_event(
            session,
            actor=actor.label,
            kind="action.reverting",
            entity_type="action",
            entity_id=plan.action_id,
            payload={
                "agent": plan.agent,
                "unhealthy_version": plan.target,
                "restoring": plan.previous,
                "problem": redact(problem),
            },
        )
    try:
        deployer.deploy(
            agent=plan.agent,
            version=plan.previous,
            action_id=plan.action_id,
            idempotency_key=f"{plan.idempotency_key}-revert",
        )
        health = deployer.wait_until_healthy(
            agent=plan.agent, version=plan.previous, timeout_s=timeout_s
        )
        outcome = health.detail
    except DeployerError as exc:
        outcome = f"the revert failed: {exc}"
    after = _live_or_none(deployer, plan.agent)
    detail = (
        f"{plan.target} went live but unhealthy ({problem}); reverted to {plan.previous}: {outcome}"
    )
    observed = after.version if after is not None else plan.target
    return _finish(engine, plan, succeeded=False, detail=detail, observed=observed, actor=actor)


def _start(engine: Engine, *, action_id: int, actor: Actor) -> DeploymentPlan:
    with write_session(engine) as session, refusal_kept(session, ExecutionRefused):
        mark_executing(session, action_id=action_id, actor=actor)
    plan = _plan(engine, action_id)
    assert plan is not None
    return plan


def _plan(engine: Engine, action_id: int) -> DeploymentPlan | None:
    with Session(engine) as session:
        action = get_action(session, action_id=action_id)
        if action.status != ActionStatus.executing:
            return None
        agent = session.get(Agent, action.agent_id)
        target = session.get(AgentVersion, action.to_version_id)
        previous = session.get(AgentVersion, action.from_version_id)
        assert agent is not None and target is not None and previous is not None
        return DeploymentPlan(
            action_id=action_id,
            agent=agent.name,
            target=target.version,
            previous=previous.version,
            idempotency_key=action.idempotency_key or f"agentops-action-{action_id}",
        )


def _finish(
    engine: Engine,
    plan: DeploymentPlan,
    *,
    succeeded: bool,
    detail: str,
    observed: str | None = None,
    actor: Actor = EXECUTOR,
) -> Action:
    try:
        with write_session(engine) as session:
            record_execution(
                session,
                action_id=plan.action_id,
                succeeded=succeeded,
                detail=detail,
                actor=actor,
                observed_live=observed,
            )
    except RuleViolation:
        log.info("action #%s was settled elsewhere meanwhile", plan.action_id)
    return _read(engine, plan.action_id)


def _try_reconcile(
    engine: Engine, action_id: int, deployer: Deployer, *, problem: str, actor: Actor
) -> None:
    try:
        reconcile(engine, action_id=action_id, deployer=deployer, problem=problem, actor=actor)
    except Exception:
        log.exception("action #%s: reconciliation after an interruption failed", action_id)


def _live_or_none(deployer: Deployer, agent: str) -> LiveState | None:
    try:
        return deployer.live(agent=agent)
    except DeployerError:
        return None


def _read(engine: Engine, action_id: int) -> Action:
    with Session(engine) as session:
        return get_action(session, action_id=action_id)
