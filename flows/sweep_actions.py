"""Prefect flow: escalate, expire and reconcile actions from their stored deadlines.

It also wakes approval gates still suspended on an action that is settled (decided where
no Prefect API was in reach, or expired by this sweep), so no run waits for nothing.
"""

from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.service import settled_with_gate
from agentops.adapters.prefect_runs import resume_waiting_run, run_is_waiting
from agentops.agents.actors import system_actor
from agentops.bootstrap import sweep_with_settings
from agentops.flows.approval_gate import SUSPEND_GRACE_S
from agentops.health.service import FLOW_SWEEP, beat
from agentops.settings import get_settings
from agentops.store.db import engine_scope
from agentops.store.models import utcnow
from agentops.store.retrying import with_store_retries
from agentops.worker_paths import require_absolute_paths

ACTOR = system_actor("flow:sweep-actions")


@flow(name="sweep-actions")
def sweep_actions(deployer_url: str | None = None) -> dict[str, Any]:
    """One sweep over every action; idempotent, so overlapping runs are harmless."""
    require_absolute_paths(in_deployment=deployment.id is not None)
    with engine_scope() as engine:
        # Every step re-checks its condition under a lock, so a sweep cut short by a
        # dropped connection is simply run again.
        report = with_store_retries(
            lambda: sweep_with_settings(engine, deployer_url=deployer_url, actor=ACTOR),
            what="sweeping",
        )
        woken = with_store_retries(lambda: wake_settled_gates(engine), what="waking gates")
        # Slack messages go out even while `agentops serve` is down (rows are claimed one
        # by one, so serve and this flow never send the same message twice).
        sent = with_store_retries(lambda: drain_slack_outbox(engine), what="sending Slack")
        with_store_retries(lambda: beat(engine, name=FLOW_SWEEP), what="noting the sweep")
    logger = get_run_logger()
    for action_id, why in report.unsettled.items():
        logger.warning("action #%s is still executing: %s", action_id, why)
    summary = {
        "escalated": report.escalated,
        "expired": report.expired,
        "executed": report.executed,
        "reconciled": report.reconciled,
        "followed": report.followed,
        "unsettled": report.unsettled,
        "approved_not_run": report.approved_not_run,
        "woken": woken,
        "slack_sent": sent,
    }
    logger.info("sweep: %s", summary)
    return summary


def drain_slack_outbox(engine: Engine) -> int | None:
    """Collect and send the Slack outbox once; None when Slack is not configured."""
    settings = get_settings()
    if not settings.slack_enabled:
        return None
    from agentops.slack.outbox import collect, deliver
    from agentops.slack.service import make_web_client

    collect(engine)
    report = deliver(
        engine,
        make_web_client(settings),
        agent_channels=settings.slack_agent_channels,
        operators_channel=settings.slack_operators_channel,
    )
    return len(report.sent)


def wake_settled_gates(engine: Engine) -> list[int]:
    """Resume gate runs still waiting on a settled action; returns the action ids woken."""
    # Past the grace, Prefect no longer accepts a resume for the run anyway.
    cutoff = utcnow() - timedelta(seconds=SUSPEND_GRACE_S)
    with Session(engine) as session:
        waiting = [
            (action.id, action.flow_run_id)
            for action in settled_with_gate(session, deadline_after=cutoff)
        ]
    woken = []
    for action_id, flow_run_id in waiting:
        assert action_id is not None and flow_run_id is not None
        if run_is_waiting(flow_run_id) and resume_waiting_run(
            flow_run_id=flow_run_id, action_id=action_id, grace_s=0
        ):
            woken.append(action_id)
    return woken
