"""The composition root: adapters built from settings, the same for every entry point."""

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from agentops.actions.deployer import HttpDeployer
from agentops.actions.sweeper import SweepReport, sweep
from agentops.settings import Settings, get_settings

if TYPE_CHECKING:
    from agentops.deployers.routing import RoutedDeployer


def make_deployer(
    settings: Settings | None = None, *, url: str | None = None
) -> "HttpDeployer | RoutedDeployer | None":
    """The configured deployer (None when neither a deployers file nor a URL is set).

    With AGENTOPS_DEPLOYERS_FILE each agent it names gets its own deployer; the others use
    the HTTP deployer at `url` or AGENTOPS_DEPLOYER_URL.
    """
    settings = settings or get_settings()
    base_url = url or settings.deployer_url
    default = (
        HttpDeployer(
            base_url,
            token=_secret(settings.deployer_token),
            hmac_secret=_secret(settings.deployer_hmac_secret),
        )
        if base_url
        else None
    )
    if settings.deployers_file is None:
        return default
    from agentops.deployers.config import load_deployers_file
    from agentops.deployers.routing import RoutedDeployer

    try:
        config = load_deployers_file(settings.deployers_file)
    except BaseException:
        if default is not None:
            default.close()
        raise
    return RoutedDeployer(config, default=default)


def _secret(value: object) -> str | None:
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if reveal else None


def sweep_with_settings(
    engine: Engine, *, settings: Settings | None = None, deployer_url: str | None = None
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
        )
    finally:
        if deployer is not None:
            deployer.close()
