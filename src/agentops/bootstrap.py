"""The composition root: adapters built from settings, the same for every entry point."""

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from agentops.actions.deployer import HttpDeployer
from agentops.actions.sweeper import SweepReport, sweep
from agentops.actions.wakers import ServerWaker
from agentops.agents.actors import Actor
from agentops.errors import AgentOpsError
from agentops.ingestion.platform_client import PlatformClient
from agentops.orchestration import api_configured
from agentops.settings import Settings, get_settings

if TYPE_CHECKING:
    from slack_sdk import WebClient

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
            check_service_url(base_url, what="deployer URL"),
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


MAX_URL = 2048


def check_service_url(url: str, *, what: str) -> str:
    """The URL, if it is a plain http(s) URL of sensible length; else a one-line refusal."""
    if len(url) > MAX_URL:
        raise AgentOpsError(f"the {what} is {len(url):,} characters long: at most {MAX_URL}")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise AgentOpsError(f"the {what} contains spaces or control characters")
    if not url.startswith(("http://", "https://")) or len(url.split("/", 3)[2]) == 0:
        raise AgentOpsError(f"the {what} must start with http:// or https:// and name a host")
    return url


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


def make_server_waker(engine: Engine, *, settings: Settings | None = None) -> ServerWaker:
    """The waker of a long-running process (`agentops serve`): built once, for every channel.

    A decision from the web or Slack wakes the gate run waiting on it, or executes the
    approval at once with the configured deployer, whether or not Slack is configured.
    """
    chosen = settings or get_settings()
    return ServerWaker(
        engine,
        deployer=lambda: make_deployer(chosen),
        health_timeout_s=chosen.health_timeout_s,
        resume_run=resume_gate_run,
    )


def resume_gate_run(*, flow_run_id: str, action_id: int) -> bool:
    """Wake the gate run waiting on an action through the Prefect API, when one is set.

    Without a configured API (the demo, a temporary server) the gate polls the store; the
    adapter is imported on use, so only a process that resumes a run loads Prefect.
    """
    if not api_configured():
        return False
    from agentops.adapters.prefect_runs import resume_waiting_run

    return resume_waiting_run(flow_run_id=flow_run_id, action_id=action_id)


def make_slack_client(settings: Settings) -> "WebClient":
    """The bot's Slack client (slack-sdk, imported only when Slack is configured)."""
    from agentops.slack.service import make_web_client

    return make_web_client(settings)


def make_platform_client(
    settings: Settings | None = None, *, url: str | None = None
) -> PlatformClient:
    """The agent platform's API client (at `url`, default the setting) with its token."""
    settings = settings or get_settings()
    base_url = url or settings.platform_url
    if not base_url:
        raise AgentOpsError("no platform URL: set AGENTOPS_PLATFORM_URL")
    return PlatformClient(base_url, token=_secret(settings.platform_token))
