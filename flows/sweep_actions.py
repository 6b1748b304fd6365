"""Prefect flow: escalate, expire and reconcile actions from their stored deadlines."""

from typing import Any

from prefect import flow, get_run_logger

from agentops.bootstrap import sweep_with_settings
from agentops.store.db import engine_scope


@flow(name="sweep-actions")
def sweep_actions(deployer_url: str | None = None) -> dict[str, Any]:
    """One sweep over every action; idempotent, so overlapping runs are harmless."""
    with engine_scope() as engine:
        report = sweep_with_settings(engine, deployer_url=deployer_url)
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
    }
    logger.info("sweep: %s", summary)
    return summary
