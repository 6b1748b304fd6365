"""Hold an action until its owner (or, after escalation, the backup) decides, then run it.

The store is the source of truth for the decision: the Prefect signal only wakes the
flow up, and the flow re-reads the action before doing anything with it.

A deployed run *suspends*: its process exits while it waits, and after `resume_flow_run`
a worker runs the flow again from the top. Everything before the suspend is therefore
idempotent (a cached task, then re-reading the store), and a suspend whose key was
already used returns the input it was resumed with instead of waiting again. A run
called in-process (the demo, tests) has no deployment a worker could restart, so it
pauses in place instead. Escalation and expiry come from the sweeper, never from here.
"""

import logging
import math
import time
from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, RUN_ID
from prefect.concurrency.sync import concurrency
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.runtime import deployment as current_deployment
from prefect.runtime import flow_run as current_flow_run
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.executor import execute_approved, reconcile
from agentops.actions.rules import UNDECIDED_STATUSES
from agentops.actions.service import ExecutionRefused, expire, get_action, open_approval
from agentops.adapters.prefect_runs import resume_waiting_run as resume_waiting_run
from agentops.adapters.prefect_runs import run_is_waiting as run_is_waiting
from agentops.agents.actors import system_actor
from agentops.bootstrap import make_deployer
from agentops.errors import RuleViolation
from agentops.orchestration import ensure_rollout_limit, rollout_limit_name
from agentops.settings import get_settings
from agentops.store.db import engine_scope, write_session
from agentops.store.models import Action, ActionKind, ActionStatus, Agent, Person, utcnow
from agentops.store.retrying import is_transient, with_store_retries
from agentops.worker_paths import require_absolute_paths

FLOW_ACTOR = system_actor("flow:approval-gate")
HEALTH_TIMEOUT_S = 60.0
# A suspended run outlives the final deadline by this much, so the sweeper (every minute)
# expires the action and wakes the run before Prefect gives up on it.
SUSPEND_GRACE_S = 3600
# Each wake without a decision costs a new suspend key; past this many, stop waiting.
MAX_WAKES = 50
# Anything else was settled before this run got here (its cache lost, say): leave it be.
OPENABLE_STATUSES = UNDECIDED_STATUSES | {ActionStatus.proposed}
log = logging.getLogger(__name__)


class ApprovalSignal(BaseModel):
    """The run input that wakes a flow waiting for a decision."""

    action_id: int


@task(name="request-approval", cache_policy=INPUTS + RUN_ID, persist_result=True)
def request_approval(
    *, action_id: int, owner_timeout_s: int, backup_timeout_s: int
) -> dict[str, Any]:
    """Open the approval window once per flow run (cached when the run starts again)."""
    flow_run_id = current_flow_run.id
    return with_store_retries(
        lambda: _open_window(
            action_id=action_id,
            flow_run_id=str(flow_run_id) if flow_run_id else None,
            owner_timeout_s=owner_timeout_s,
            backup_timeout_s=backup_timeout_s,
        ),
        what=f"opening the approval of #{action_id}",
    )


def _open_window(
    *, action_id: int, flow_run_id: str | None, owner_timeout_s: int, backup_timeout_s: int
) -> dict[str, Any]:
    with engine_scope() as store, write_session(store) as session:
        action = get_action(session, action_id=action_id)
        if action.status in OPENABLE_STATUSES:
            action = open_approval(
                session,
                action_id=action_id,
                flow_run_id=flow_run_id,
                owner_timeout_s=owner_timeout_s,
                backup_timeout_s=backup_timeout_s,
            )
        return {
            "opened_at": utcnow().isoformat(),
            "status": action.status.value,
            "owner": _owner_email(session, action),
            "owner_deadline": action.owner_deadline.isoformat() if action.owner_deadline else None,
        }


def wait_for_approval(
    *, action_id: int, opened: dict[str, Any], poll_interval_s: int, engine: Engine
) -> Action:
    """Wait for a decision or expiry on an opened approval window; return the action."""
    action = _read_action(engine, action_id)
    if action.status not in UNDECIDED_STATUSES:
        return action
    owner = opened["owner"]
    get_run_logger().info(
        "action #%s waits for %s until %s UTC (then the backup): "
        "`agentops approve %s --as %s` or `agentops reject %s --as %s --reason ...`",
        action_id,
        owner,
        opened["owner_deadline"],
        action_id,
        owner,
        action_id,
        owner,
    )
    if current_deployment.id:
        _suspend_until_decided(engine, action_id=action_id)
    else:
        _pause_until_decided(engine, action_id=action_id, poll_interval_s=poll_interval_s)
        _expire_if_undecided(engine, action_id=action_id)
    return _read_action(engine, action_id)


def gate_then_execute(
    *,
    action_id: int,
    expected_kind: ActionKind,
    deployer_url: str | None,
    health_timeout_s: float = HEALTH_TIMEOUT_S,
) -> dict[str, Any]:
    """Wait for approval, then deploy and verify; returns a summary of what happened."""
    require_absolute_paths(in_deployment=current_deployment.id is not None)
    settings = get_settings()
    with engine_scope() as engine:
        _require_kind(engine, action_id=action_id, expected_kind=expected_kind)
        opened = request_approval(
            action_id=action_id,
            owner_timeout_s=settings.owner_approval_timeout_s,
            backup_timeout_s=settings.backup_approval_timeout_s,
        )
        action = wait_for_approval(
            action_id=action_id,
            opened=opened,
            poll_interval_s=settings.approval_poll_interval_s,
            engine=engine,
        )
        # From the cached request time: a run started again after a suspend counts the
        # whole wait, not only its last stretch.
        waited_s = (utcnow() - datetime.fromisoformat(opened["opened_at"])).total_seconds()
        if action.status != ActionStatus.approved:
            get_run_logger().info("action #%s ended %s: nothing deployed", action_id, action.status)
            return _summary(action, approval_wait_s=waited_s, executing_s=0.0)
        executing_since = time.monotonic()
        _execute(
            engine,
            action_id=action_id,
            agent_name=_agent_name(engine, action),
            deployer_url=deployer_url or settings.deployer_url,
            health_timeout_s=health_timeout_s,
        )
        executing_s = time.monotonic() - executing_since
        return _summary(
            _read_action(engine, action_id), approval_wait_s=waited_s, executing_s=executing_s
        )


def _execute(
    engine: Engine,
    *,
    action_id: int,
    agent_name: str,
    deployer_url: str | None,
    health_timeout_s: float,
) -> None:
    logger = get_run_logger()
    # The store already allows one open action per agent; the limit also keeps two runs
    # (say, a retried one and a fresh one) from deploying the same agent at once.
    ensure_rollout_limit(agent_name)
    deployer = make_deployer(url=deployer_url)
    try:
        with concurrency(rollout_limit_name(agent_name), occupy=1, strict=True):
            action = execute_approved(
                engine,
                action_id=action_id,
                deployer=deployer,
                health_timeout_s=health_timeout_s,
                actor=FLOW_ACTOR,
            )
    except ExecutionRefused as refused:
        logger.error("action #%s: %s", action_id, refused)
        return
    except Exception as exc:
        if not is_transient(exc) or deployer is None:
            raise
        # The store dropped mid-execution (the deploy call may have gone out): settle the
        # action from what the deployer serves once the store is back, rather than fail a
        # run whose rollback happened.
        logger.warning("action #%s: the store dropped while executing (%s)", action_id, exc)
        problem = f"the store dropped while executing: {type(exc).__name__}"
        action = with_store_retries(
            lambda: reconcile(
                engine,
                action_id=action_id,
                deployer=deployer,
                problem=problem,
                health_timeout_s=health_timeout_s,
                actor=FLOW_ACTOR,
            ),
            what=f"settling #{action_id}",
        )
    finally:
        if deployer is not None:
            deployer.close()
    report = logger.info if action.status.value == "succeeded" else logger.error
    report("action #%s %s: %s", action_id, action.status.value, action.outcome_detail)


def _suspend_until_decided(engine: Engine, *, action_id: int) -> None:
    logger = get_run_logger()
    # Keys already used return their input at once, so a run started again by a resume
    # walks past its earlier suspends; a wake without a decision suspends with the next key.
    for attempt in range(1, MAX_WAKES + 1):
        action = _read_action(engine, action_id)
        if action.status not in UNDECIDED_STATUSES:
            return
        assert action.final_deadline is not None
        signal = suspend_flow_run(
            wait_for_input=ApprovalSignal,
            timeout=max(1, math.ceil(_seconds_until(action.final_deadline))) + SUSPEND_GRACE_S,
            key=f"approval-{action_id}-{attempt}",
        )
        if signal is not None and signal.action_id != action_id:
            logger.warning("action #%s: woken by a signal for #%s", action_id, signal.action_id)
    logger.error(
        "action #%s: woken %s times without a decision; stop waiting", action_id, MAX_WAKES
    )


def _pause_until_decided(engine: Engine, *, action_id: int, poll_interval_s: int) -> None:
    logger = get_run_logger()
    attempt = 0
    # Loop because a resume without a recorded decision must not end the wait early.
    while (action := _read_action(engine, action_id)).status in UNDECIDED_STATUSES:
        assert action.final_deadline is not None
        remaining = _seconds_until(action.final_deadline)
        if remaining <= 0:
            return
        attempt += 1
        try:
            signal = pause_flow_run(
                wait_for_input=ApprovalSignal,
                timeout=math.ceil(remaining),
                poll_interval=poll_interval_s,
                key=f"approval-{action_id}-{attempt}",
            )
        except FlowPauseTimeout:
            logger.info("action #%s: nobody decided in time", action_id)
            return
        if signal.action_id != action_id:
            logger.warning("action #%s: woken by a signal for #%s", action_id, signal.action_id)


def _expire_if_undecided(engine: Engine, *, action_id: int) -> None:
    action = _read_action(engine, action_id)
    if action.status not in UNDECIDED_STATUSES or action.final_deadline is None:
        return
    # Prefect's pause clock may run out a moment before ours: wait for the real deadline.
    time.sleep(max(0.0, _seconds_until(action.final_deadline)))

    def expire_now() -> None:
        with write_session(engine) as session:
            expire(session, action_id=action_id)

    with_store_retries(expire_now, what=f"expiring #{action_id}")


def _agent_name(engine: Engine, action: Action) -> str:
    def read() -> str:
        with Session(engine) as session:
            agent = session.get(Agent, action.agent_id)
            assert agent is not None
            return agent.name

    return with_store_retries(read, what=f"reading the agent of #{action.id}")


def _require_kind(engine: Engine, *, action_id: int, expected_kind: ActionKind) -> None:
    action = _read_action(engine, action_id)
    if action.kind != expected_kind:
        raise RuleViolation(
            f"action #{action_id} is a {action.kind}, not a {expected_kind}: use the "
            f"{action.kind}-agent flow"
        )


def _owner_email(session: Session, action: Action) -> str:
    agent = session.get(Agent, action.agent_id)
    owner = session.get(Person, agent.owner_id) if agent else None
    return owner.email if owner else "the owner"


def _read_action(engine: Engine, action_id: int) -> Action:
    def read() -> Action:
        with Session(engine) as session:
            return get_action(session, action_id=action_id)

    return with_store_retries(read, what=f"reading action #{action_id}")


def _seconds_until(moment: datetime) -> float:
    return (moment - utcnow()).total_seconds()


def _summary(action: Action, *, approval_wait_s: float, executing_s: float) -> dict[str, Any]:
    return {
        "action_id": action.id,
        "kind": action.kind.value,
        "status": action.status.value,
        "detail": action.outcome_detail,
        "timings": {
            "approval_wait_s": round(approval_wait_s, 3),
            "executing_s": round(executing_s, 3),
        },
    }
