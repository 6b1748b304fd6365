"""Live simulated traffic for the fake platform: it follows whatever version is deployed.

Every tick each agent's live version (as the fake deployer serves it) gets a few new
conversations, healthy or degraded: a version marked degrading behaves like the demo's
bad release, so triggers breach, a rollback is proposed, and once the deployer switches
back the traffic is healthy again. Conversations are published a little after they start.
"""

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from agentops.demo.fake_services import FakeServices
from agentops.demo.traffic import DEMO_PROFILES, VersionProfile, generate_conversations

HEALTHY = DEMO_PROFILES["v1"]
DEGRADED = DEMO_PROFILES["v2"]


def profile_for(version: str, *, degrading: set[str]) -> VersionProfile:
    """The behaviour of a version: the demo's bad release when marked degrading."""
    return replace(DEGRADED if version in degrading else HEALTHY, version=version)


class LiveTraffic:
    """Publishes conversations for the agents' live versions every `interval_s` seconds."""

    def __init__(
        self,
        services: FakeServices,
        *,
        agents: list[str],
        per_tick: int = 5,
        interval_s: float = 10.0,
        degrading: set[str] | None = None,
    ) -> None:
        if per_tick < 1 or interval_s <= 0:
            raise ValueError("per_tick must be at least 1 and interval_s positive")
        self.services = services
        self.agents = list(agents)
        self.per_tick = per_tick
        self.interval_s = interval_s
        self.degrading = set(degrading or ())
        self.published = 0
        self._tick = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, *, now: datetime | None = None) -> int:
        """Publish one interval's conversations for every agent; returns how many."""
        now = now or datetime.now(UTC)
        spacing = timedelta(seconds=self.interval_s / self.per_tick)
        start = now - timedelta(seconds=self.interval_s)
        count = 0
        for agent in self.agents:
            version = self.services.live_version(agent)
            if version is None:
                continue
            records = generate_conversations(
                agent=agent,
                version=version,
                profile=profile_for(version, degrading=self.degrading),
                start=start,
                count=self.per_tick,
                spacing=spacing,
                seed=self._tick,
            )
            self.services.add_conversations(agent, records)
            count += len(records)
        self._tick += 1
        self.published += count
        return count

    def start(self) -> None:
        """Publish in a background thread until stop()."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="live-traffic", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop publishing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval_s)
