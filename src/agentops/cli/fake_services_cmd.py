"""`agentops fake-services`: the demo's stand-in platform and deployer, for trying things out."""

import signal
import threading
from typing import TYPE_CHECKING

import typer

from agentops.cli.common import console, fail, user_errors

if TYPE_CHECKING:
    from agentops.demo.fake_slack import FakeSlack


@user_errors
def fake_services(
    port: int = typer.Option(8700, min=1, max=65535, help="Loopback port to listen on."),
    live: list[str] = typer.Option(
        [], "--live", help="AGENT=VERSION the fake deployer serves at start; repeat for more."
    ),
    traffic: bool = typer.Option(
        False, "--traffic", help="Publish live conversations for each --live agent's version."
    ),
    degrading: list[str] = typer.Option(
        [], "--degrading", help="With --traffic: a VERSION whose traffic is bad; repeatable."
    ),
    every: float = typer.Option(
        10.0, "--every", min=0.1, max=3600, help="With --traffic: seconds between batches."
    ),
    slack_port: int | None = typer.Option(
        None, "--slack-port", min=1, max=65535, help="Also serve a fake Slack on this port."
    ),
    slack_users: list[str] = typer.Option(
        [], "--slack-user", help="With --slack-port: EMAIL=SLACK_ID the fake Slack knows."
    ),
) -> None:
    """Serve a fake agent platform and deployer on 127.0.0.1 until stopped (Ctrl-C)."""
    from agentops.demo.fake_services import FakeServices
    from agentops.demo.fake_slack import FAKE_SIGNING_SECRET

    pairs = [entry.partition("=") for entry in live]
    if any(not agent or not version for agent, _, version in pairs):
        raise fail("--live takes AGENT=VERSION, e.g. --live airline-assistant=v1")
    services = FakeServices(port=port, rollout_delay_s=0.2)
    for agent, _, version in pairs:
        services.set_live_version(agent, version)
    if (degrading or traffic) and not pairs:
        raise fail("--traffic needs at least one --live AGENT=VERSION to follow")
    try:
        url = services.start()
    except (OSError, RuntimeError) as exc:
        raise fail(f"cannot listen on 127.0.0.1:{port}: {exc}") from None
    users = [entry.partition("=") for entry in slack_users]
    if any(not email or not user for email, _, user in users):
        raise fail("--slack-user takes EMAIL=SLACK_ID, e.g. --slack-user owner@x.io=UOWNER")
    slack = (
        _start_slack(slack_port, {email: user for email, _, user in users}) if slack_port else None
    )
    live_traffic = None
    if traffic:
        from agentops.demo.live_traffic import LiveTraffic

        live_traffic = LiveTraffic(
            services,
            agents=[agent for agent, _, _ in pairs],
            interval_s=every,
            degrading=set(degrading),
        )
        live_traffic.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"fake platform and deployer listening on {url} (Ctrl-C stops it)")
    if live_traffic is not None:
        bad = ", ".join(sorted(degrading)) or "none"
        console.print(f"live traffic every {every:g} s for the deployed version (degrading: {bad})")
    if slack is not None:
        console.print(
            f"fake Slack: AGENTOPS_SLACK_API_URL={slack.api_url} "
            f"AGENTOPS_SLACK_BOT_TOKEN={slack.token} "
            f"AGENTOPS_SLACK_SIGNING_SECRET={FAKE_SIGNING_SECRET}",
            soft_wrap=True,
        )
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if live_traffic is not None:
            live_traffic.stop()
        if slack is not None:
            slack.stop()
        services.stop()


def _start_slack(port: int, users: dict[str, str]) -> "FakeSlack":
    from agentops.demo.fake_slack import FakeSlack

    slack = FakeSlack(users=users)
    slack.port = port
    try:
        slack.start()
    except (OSError, RuntimeError) as exc:
        raise fail(f"cannot listen on 127.0.0.1:{port}: {exc}") from None
    return slack
