"""`agentops fake-services --traffic`: live conversations that follow the deployed version."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from agentops.demo.fake_services import FakeServices
from agentops.demo.live_traffic import LiveTraffic
from agentops.ingestion.platform_client import PlatformClient
from factories import calls_transfer

AGENT = "airline-assistant"


def _transfer_share(records: list[dict[str, object]]) -> float:
    return sum(calls_transfer(r["messages"]) for r in records) / len(records)  # type: ignore[arg-type]


def test_traffic_follows_the_deployed_version_and_degrades_on_request() -> None:
    with FakeServices(rollout_delay_s=0) as services:
        services.set_live_version(AGENT, "v1")
        traffic = LiveTraffic(services, agents=[AGENT], per_tick=150, degrading={"v2"})
        assert traffic.tick(now=datetime(2026, 12, 7, 10, tzinfo=UTC)) == 150
        httpx.post(
            f"{services.url}/deployments", json={"agent": AGENT, "version": "v2", "action_id": 1}
        ).raise_for_status()
        traffic.tick(now=datetime(2026, 12, 7, 10, 1, tzinfo=UTC))
        with PlatformClient(services.url) as client:
            pulled = list(client.iter_conversations(agent=AGENT))
    assert len(pulled) == len({r["id"] for r in pulled}) == 300
    by_version = {v: [r for r in pulled if r["agent_version"] == v] for v in ("v1", "v2")}
    assert len(by_version["v1"]) == len(by_version["v2"]) == 150
    # The degrading version hands far more chats to a human than the healthy one.
    assert _transfer_share(by_version["v2"]) > _transfer_share(by_version["v1"]) + 0.1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_fake_services_command_serves_live_traffic_and_a_fake_slack(tmp_path: Path) -> None:
    port, slack_port = _free_port(), _free_port()
    command = [
        str(Path(sys.executable).with_name("agentops")),
        "fake-services",
        "--port", str(port),
        "--live", f"{AGENT}=v1",
        "--traffic", "--every", "0.2",
        "--slack-port", str(slack_port),
        "--slack-user", "owner@x.io=UOWNER",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=dict(os.environ), stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        seen = 0
        while time.monotonic() < deadline and seen < 10:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/api/agents/{AGENT}/conversations")
                seen = len(page.json()["items"])
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert seen >= 10, "live traffic reached the platform"
        found = httpx.post(
            f"http://127.0.0.1:{slack_port}/api/users.lookupByEmail",
            headers={"Authorization": "Bearer xoxb-fake-agentops-demo"},
            data={"email": "owner@x.io"},
        ).json()
        assert found["ok"] and found["user"]["id"] == "UOWNER"
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "live traffic every 0.2 s" in out and f"127.0.0.1:{slack_port}/api/" in out


def test_traffic_needs_an_agent_to_follow() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("agentops")), "fake-services", "--traffic"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "error: --traffic needs at least one --live AGENT=VERSION" in result.stderr
