"""Hold an action until its owner (or, after escalation, the backup) decides, then run it.

The store is the source of truth for the decision: the Prefect signal only wakes the
flow up, and the flow re-reads the action before doing anything with it.
"""

import logging
import math
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.runtime import flow_run as current_flow_run
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.executor import execute_approved
from agentops.actions.rules import UNDECIDED_STATUSES
from agentops.actions.service import (
    ExecutionRefused,
    escalate_if_due,
    expire,
    get_action,
    open_approval,
)
from agentops.agents.actors import system_actor
from agentops.bootstrap import make_deployer
from agentops.errors import RuleViolation
from agentops.settings import get_settings
from agentops.store.db import engine_scope, write_session
from agentops.store.models import (
    Action,
    ActionKind,
    ActionStatus,
    Agent,
    Person,
    utcnow,
)

FLOW_ACTOR = system_actor("flow:approval-gate")
HEALTH_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


class ApprovalSignal(BaseModel):
    """The run input that wakes a flow waiting for a decision."""

    action_id: int


def wait_for_approval(
    *,
    action_id: int,
    owner_timeout_s: int,
    backup_timeout_s: int,
    poll_interval_s: int,
    engine: Engine | None = None,
) -> Action:
    """Open the approval window, wait for a decision or expiry, and return the action."""
    borrowed: AbstractContextManager[Engine] = (
        nullcontext(engine) if engine is not None else engine_scope()
    )
    with borrowed as store:
        flow_run_id = current_flow_run.id
        with Session(store) as session:
            action = open_approval(
                session,
                action_id=action_id,
                flow_run_id=str(flow_run_id) if flow_run_id else None,
                owner_timeout_s=owner_timeout_s,
                backup_timeout_s=backup_timeout_s,
            )
            session.commit()
            owner_deadline, final_deadline = action.owner_deadline, action.final_deadline
            owner = _owner_email(session, action)
            if action.status not in UNDECIDED_STATUSES:
                get_run_logger().info(
                    "action #%s was %s before its gate opened", action_id, action.status
                )
                return action
        assert owner_deadline is not None and final_deadline is not None
        get_run_logger().info(
            "action #%s waits for %s until %s UTC (then the backup): "
            "`agentops approve %s --as %s` or `agentops reject %s --as %s --reason ...`",
            action_id,
            owner,
            f"{owner_deadline:%Y-%m-%d %H:%M}",
            action_id,
            owner,
            action_id,
            owner,
        )
        stop_watching = threading.Event()
        if flow_run_id:
            threading.Thread(
                target=_resume_when_decided,
                kwargs={
                    "engine": store,
                    "action_id": action_id,
                    "flow_run_id": str(flow_run_id),
                    "poll_interval_s": poll_interval_s,
                    "stop": stop_watching,
                },
                daemon=True,
            ).start()
        try:
            _pause_until_decided(
                store,
                action_id=action_id,
                seconds_left=_seconds_until(final_deadline),
                poll_interval_s=poll_interval_s,
            )
        finally:
            stop_watching.set()
        _expire_if_undecided(store, action_id=action_id)
        return _read_action(store, action_id)


def resume_waiting_run(*, flow_run_id: str, action_id: int, grace_s: float = 5.0) -> bool:
    """Wake the flow run waiting on this action; False (logged) if it is not waiting."""
    try:
        run_id = UUID(flow_run_id)
    except ValueError:
        log.warning("action #%s: %r is not a flow run id", action_id, flow_run_id)
        return False
    # A decision can land just before the flow reaches its pause: give it a moment.
    give_up_at = time.monotonic() + grace_s
    while True:
        try:
            resume_flow_run(run_id, run_input={"action_id": action_id})
            return True
        except ObjectNotFound:
            log.warning("action #%s: flow run %s not found", action_id, run_id)
            return False
        except FlowPauseTimeout:
            log.warning("action #%s: flow run %s already gave up waiting", action_id, run_id)
            return False
        except NotPausedError:
            if _is_running(run_id) and time.monotonic() < give_up_at:
                time.sleep(0.2)
                continue
            log.info("action #%s: flow run %s is not paused any more", action_id, run_id)
            return False
        except RuntimeError as exc:
            log.warning("action #%s: flow run %s refused to resume: %s", action_id, run_id, exc)
            return False


def gate_then_execute(
    *,
    action_id: int,
    expected_kind: ActionKind,
    deployer_url: str | None,
    health_timeout_s: float = HEALTH_TIMEOUT_S,
) -> dict[str, Any]:
    """Wait for approval, then deploy and verify; returns a summary of what happened."""
    settings = get_settings()
    with engine_scope() as engine:
        _require_kind(engine, action_id=action_id, expected_kind=expected_kind)
        waiting_since = time.monotonic()
        action = wait_for_approval(
            action_id=action_id,
            owner_timeout_s=settings.owner_approval_timeout_s,
            backup_timeout_s=settings.backup_approval_timeout_s,
            poll_interval_s=settings.approval_poll_interval_s,
            engine=engine,
        )
        waited_s = time.monotonic() - waiting_since
        if action.status != ActionStatus.approved:
            get_run_logger().info("action #%s ended %s: nothing deployed", action_id, action.status)
            return _summary(action, approval_wait_s=waited_s, executing_s=0.0)
        executing_since = time.monotonic()
        _execute(
            engine,
            action_id=action_id,
            deployer_url=deployer_url or settings.deployer_url,
            health_timeout_s=health_timeout_s,
        )
        executing_s = time.monotonic() - executing_since
        return _summary(
            _read_action(engine, action_id), approval_wait_s=waited_s, executing_s=executing_s
        )


def _execute(
    engine: Engine, *, action_id: int, deployer_url: str | None, health_timeout_s: float
) -> None:
    logger = get_run_logger()
    deployer = make_deployer(url=deployer_url)
    try:
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
    finally:
        if deployer is not None:
            deployer.close()
    report = logger.info if action.status.value == "succeeded" else logger.error
    report("action #%s %s: %s", action_id, action.status.value, action.outcome_detail)


def _pause_until_decided(
    engine: Engine, *, action_id: int, seconds_left: float, poll_interval_s: int
) -> None:
    logger = get_run_logger()
    give_up_at = time.monotonic() + seconds_left
    attempt = 0
    # Loop because a resume without a recorded decision must not end the wait early.
    while _read_action(engine, action_id).status in UNDECIDED_STATUSES:
        remaining = give_up_at - time.monotonic()
        if remaining <= 0:
            return
        attempt += 1
        key = f"approval-{action_id}" if attempt == 1 else f"approval-{action_id}-{attempt}"
        try:
            signal = pause_flow_run(
                wait_for_input=ApprovalSignal,
                timeout=math.ceil(remaining),
                poll_interval=poll_interval_s,
                key=key,
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
    with write_session(engine) as session:
        expire(session, action_id=action_id)


def _resume_when_decided(
    *,
    engine: Engine,
    action_id: int,
    flow_run_id: str,
    poll_interval_s: int,
    stop: threading.Event,
) -> None:
    # A decision made where Prefect is out of reach (another host, Slack, the web) is only in
    # the store: this watcher, running beside the paused flow, wakes the flow for it.
    while not stop.wait(poll_interval_s):
        try:
            # The sweeper escalates on the stored deadline; doing it here too keeps a
            # waiting gate prompt without a timer of its own.
            with write_session(engine) as session:
                escalate_if_due(session, action_id=action_id)
            if _read_action(engine, action_id).status in UNDECIDED_STATUSES:
                continue
            resume_waiting_run(flow_run_id=flow_run_id, action_id=action_id, grace_s=0)
        except Exception:
            log.exception("action #%s: could not check for a decision", action_id)
            continue
        return


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
    with Session(engine) as session:
        return get_action(session, action_id=action_id)


def _seconds_until(moment: datetime) -> float:
    return (moment - utcnow()).total_seconds()


def _is_running(run_id: UUID) -> bool:
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
    except ObjectNotFound:
        return False
    return state is not None and state.is_running()


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
