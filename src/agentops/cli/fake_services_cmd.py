"""`agentops fake-services`: the demo's stand-in platform and deployer, for trying things out."""

import signal
import threading

import typer

from agentops.cli.common import console, fail, user_errors


@user_errors
def fake_services(
    port: int = typer.Option(8700, min=1, max=65535, help="Loopback port to listen on."),
    live: list[str] = typer.Option(
        [], "--live", help="AGENT=VERSION the fake deployer serves at start; repeat for more."
    ),
) -> None:
    """Serve a fake agent platform and deployer on 127.0.0.1 until stopped (Ctrl-C)."""
    from agentops.demo.fake_services import FakeServices

    pairs = [entry.partition("=") for entry in live]
    if any(not agent or not version for agent, _, version in pairs):
        raise fail("--live takes AGENT=VERSION, e.g. --live airline-assistant=v1")
    services = FakeServices(port=port, rollout_delay_s=0.2)
    for agent, _, version in pairs:
        services.set_live_version(agent, version)
    try:
        url = services.start()
    except (OSError, RuntimeError) as exc:
        raise fail(f"cannot listen on 127.0.0.1:{port}: {exc}") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"fake platform and deployer listening on {url} (Ctrl-C stops it)")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        services.stop()
