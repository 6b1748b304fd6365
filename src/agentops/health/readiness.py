"""Every readiness check at once, as `/readyz` and `agentops status` report them."""

from datetime import timedelta

from sqlalchemy.engine import Engine

from agentops.health.prefect_probe import prefect_check
from agentops.health.service import Check, store_checks
from agentops.settings import Settings


def prefect_api_url() -> str | None:
    """The Prefect API this process would talk to (env or active profile)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def readiness(engine: Engine, *, settings: Settings) -> list[Check]:
    """The store's checks, then Prefect's reachability."""
    checks = store_checks(
        engine,
        slack_enabled=settings.slack_enabled,
        max_outbox_lag=timedelta(seconds=settings.ready_max_outbox_lag_s),
        max_sweep_age=timedelta(seconds=settings.ready_max_sweep_age_s),
    )
    return [*checks, prefect_check(prefect_api_url())]
