"""Prefect flow: roll an agent back to its last-known-good version once approved."""

from typing import Any

from prefect import flow

from agentops.flows.approval_gate import HEALTH_TIMEOUT_S, gate_then_execute
from agentops.store.models import ActionKind


@flow(name="rollback-agent")
def rollback_agent(
    action_id: int, deployer_url: str | None = None, health_timeout_s: float = HEALTH_TIMEOUT_S
) -> dict[str, Any]:
    """Wait for the owner's (or backup's) approval, then roll back and verify health."""
    return gate_then_execute(
        action_id=action_id,
        expected_kind=ActionKind.rollback,
        deployer_url=deployer_url,
        health_timeout_s=health_timeout_s,
    )
