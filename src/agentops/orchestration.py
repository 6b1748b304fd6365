"""Prefect-side set-up and links: the work pool, per-agent rollout limits, flow run URLs.

An adapter, not domain logic: Prefect is imported inside the functions, so importing this
module stays cheap for CLI commands that never talk to a Prefect server.
"""

import re
from dataclasses import dataclass, field

WORK_POOL = "agentops"
ROLLOUT_LIMIT_PREFIX = "agentops-rollout-"


@dataclass
class SetupReport:
    """What `agentops prefect setup` created and what already existed."""

    work_pool_created: bool = False
    limits_created: list[str] = field(default_factory=list)
    limits_existing: list[str] = field(default_factory=list)


def rollout_limit_name(agent_name: str) -> str:
    """The global concurrency limit that lets one deploy-and-verify run per agent at a time."""
    # Agent names are plain labels already; anything else becomes "-" to stay a valid name.
    return ROLLOUT_LIMIT_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "-", agent_name)


def api_configured() -> bool:
    """True when PREFECT_API_URL points at a server (not Prefect's temporary one)."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def flow_run_url(flow_run_id: str | None) -> str | None:
    """The Prefect UI page of a flow run, when PREFECT_UI_URL (or the API URL) is set."""
    if not flow_run_id:
        return None
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    base = PREFECT_UI_URL.value() if PREFECT_API_URL.value() else None
    if not base:
        return None
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}"


def ensure_rollout_limit(agent_name: str) -> bool:
    """Create the agent's rollout limit (one slot) unless it exists; True if created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = rollout_limit_name(agent_name)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:  # another process created it in between
            return False
    return True


def ensure_work_pool(name: str = WORK_POOL) -> bool:
    """Create the process work pool unless it exists; True if created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                )
            )
        except ObjectAlreadyExists:
            return False
    return True


def set_up(*, agent_names: list[str], work_pool: str = WORK_POOL) -> SetupReport:
    """Create the work pool and one rollout limit per agent; safe to repeat."""
    report = SetupReport(work_pool_created=ensure_work_pool(work_pool))
    for agent_name in agent_names:
        target = (
            report.limits_created if ensure_rollout_limit(agent_name) else report.limits_existing
        )
        target.append(rollout_limit_name(agent_name))
    return report
