"""`agentops prefect …`: prepare a Prefect server for the agentops deployments."""

import httpx
import typer

from agentops.agents import service as agents
from agentops.cli.common import console, fail, store_session, user_errors
from agentops.orchestration import WORK_POOL, api_configured, set_up

app = typer.Typer(help="Prepare the Prefect server the deployments run on.")


@app.command("setup")
@user_errors
def setup(
    work_pool: str = typer.Option(WORK_POOL, help="Process work pool the deployments use."),
) -> None:
    """Create the process work pool and one rollout concurrency limit per agent (repeatable)."""
    if not api_configured():
        raise fail("set PREFECT_API_URL to the Prefect server first (e.g. http://host:4200/api)")
    with store_session() as session:
        names = [agent.name for agent in agents.list_agents(session)]
    try:
        report = set_up(agent_names=names, work_pool=work_pool)
    except (httpx.HTTPError, OSError) as exc:
        # Name the failure, not the URL's credentials: the class and status are enough.
        raise fail(f"the Prefect server did not answer: {exc.__class__.__name__}") from None
    console.print(
        f"work pool {work_pool}: {'created' if report.work_pool_created else 'already there'}"
    )
    for name in report.limits_created:
        console.print(f"concurrency limit {name}: created (1 slot)")
    for name in report.limits_existing:
        console.print(f"concurrency limit {name}: already there")
    if not names:
        console.print("no agents registered yet: run this again after `agentops agents register`")
    _set_up_alerts(work_pool)


def _set_up_alerts(work_pool: str) -> None:
    """The automations that tell the operators' Slack channel when flows go wrong."""
    from agentops.settings import get_settings

    settings = get_settings()
    if not settings.slack_enabled or not settings.slack_operators_channel:
        console.print(
            "alerts: not set up (set AGENTOPS_SLACK_BOT_TOKEN, AGENTOPS_SLACK_SIGNING_SECRET "
            "and AGENTOPS_SLACK_OPERATORS_CHANNEL, then run this again)"
        )
        return
    from agentops.prefect_alerts import alerts, ensure_alerts

    assert settings.slack_bot_token is not None
    ensure_alerts(
        work_pool=work_pool,
        channel=settings.slack_operators_channel,
        slack_api_url=settings.slack_api_url,
        bot_token=settings.slack_bot_token.get_secret_value(),
    )
    for alert in alerts(work_pool=work_pool):
        console.print(f"automation {alert.name!r}: alerts {settings.slack_operators_channel}")
