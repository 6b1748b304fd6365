"""Prefect flow: escalate, expire and reconcile actions from their stored deadlines."""

from typing import Any

from prefect import flow, get_run_logger

from agentops.actions.sweeper import sweep
from agentops.bootstrap import make_deployer
from agentops.settings import get_settings
from agentops.store.db import engine_scope


@flow(name="sweep-actions")
def sweep_actions(deployer_url: str | None = None) -> dict[str, Any]:
    """One sweep over every action; idempotent, so overlapping runs are harmless."""
    settings = get_settings()
    deployer = make_deployer(settings, url=deployer_url)
    try:
        with engine_scope() as engine:
            report = sweep(
                engine,
                deployer=deployer,
                deploy_timeout_s=settings.deploy_timeout_s,
                health_timeout_s=settings.health_timeout_s,
            )
    finally:
        if deployer is not None:
            deployer.close()
    logger = get_run_logger()
    for action_id, why in report.unsettled.items():
        logger.warning("action #%s is still executing: %s", action_id, why)
    summary = {
        "escalated": report.escalated,
        "expired": report.expired,
        "reconciled": report.reconciled,
        "unsettled": report.unsettled,
        "approved_not_run": report.approved_not_run,
    }
    logger.info("sweep: %s", summary)
    return summary
