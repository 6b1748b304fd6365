"""The composition root: adapters built from settings, the same for every entry point."""

from sqlalchemy.engine import Engine

from agentops.actions.deployer import HttpDeployer
from agentops.actions.sweeper import SweepReport, sweep
from agentops.agents.actors import Actor
from agentops.settings import Settings, get_settings


def make_deployer(
    settings: Settings | None = None, *, url: str | None = None
) -> HttpDeployer | None:
    """The configured deployer client (None when no deployer URL is set)."""
    settings = settings or get_settings()
    base_url = url or settings.deployer_url
    if not base_url:
        return None
    return HttpDeployer(
        base_url,
        token=_secret(settings.deployer_token),
        hmac_secret=_secret(settings.deployer_hmac_secret),
    )


def _secret(value: object) -> str | None:
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if reveal else None


def sweep_with_settings(
    engine: Engine,
    *,
    settings: Settings | None = None,
    deployer_url: str | None = None,
    actor: Actor | None = None,
) -> SweepReport:
    """One sweep with the configured deployer and timeouts (CLI and flow share it)."""
    settings = settings or get_settings()
    deployer = make_deployer(settings, url=deployer_url)
    try:
        return sweep(
            engine,
            deployer=deployer,
            deploy_timeout_s=settings.deploy_timeout_s,
            health_timeout_s=settings.health_timeout_s,
            run_approved_after_s=settings.run_approved_after_s,
            actor=actor,
        )
    finally:
        if deployer is not None:
            deployer.close()
