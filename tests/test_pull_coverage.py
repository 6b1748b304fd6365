"""Scheduled pulls against the fake platform store every conversation exactly once.

Conversations are published late (long ones by minutes), runs start off their schedule,
and an outage makes the missed runs start together afterwards; the watermark still covers
every minute once. Then the coverage command and a backfill.
"""

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

import agentops.flows.sample_conversations as sampling_flow
from agentops.agents import service as agents
from agentops.cli.app import app
from agentops.demo.fake_services import FakeServices
from agentops.demo.traffic import DEMO_PROFILES, generate_conversations
from agentops.review.rubric import register_rubric
from agentops.sampling import coverage
from agentops.sampling.windows import Span
from agentops.settings import get_settings
from agentops.store.models import Conversation, PulledWindow

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

ROOT = Path(__file__).resolve().parents[1]
AGENT = "airline-assistant"
MIN = timedelta(minutes=1)
# A past hour, so no conversation is dated in the future of the real clock.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=8)


@pytest.fixture
def services() -> Iterator[FakeServices]:
    with FakeServices(rollout_delay_s=0.1) as running:
        yield running


@pytest.fixture
def agent(engine: Engine, services: FakeServices, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("AGENTOPS_PLATFORM_URL", services.url)
    monkeypatch.setenv("AGENTOPS_PULL_PUBLICATION_DELAY_S", "300")
    monkeypatch.setenv("AGENTOPS_PULL_MAX_CHUNKS", "2")
    get_settings.cache_clear()
    with Session(engine) as session:
        registered = agents.register_agent(
            session, name=AGENT, owner_email="o@x.io", backup_email="b@x.io", actor="t"
        )
        v1 = agents.ensure_version(session, agent=registered, version="v1", actor="t")
        agents.set_live(session, agent=registered, version=v1, actor="t")
        rubric = (ROOT / "deployments" / "rubric.example.yaml").read_text()
        register_rubric(session, text=rubric, source="rubric", actor="t")
        session.commit()
    services.add_conversations(AGENT, [])
    return engine


def _traffic(count: int, *, seed: int) -> list[tuple[datetime, dict[str, Any]]]:
    """Records over three hours from T0, each with the moment the platform publishes it."""
    records = generate_conversations(
        agent=AGENT,
        version="v1",
        profile=DEMO_PROFILES["v1"],
        start=T0,
        count=count,
        spacing=timedelta(seconds=3 * 3600 / count),
        seed=seed,
    )
    rng = random.Random(seed)
    published = []
    for record in records:
        started = datetime.fromisoformat(record["started_at"])
        # Most are published within a minute; long conversations up to ~4.5 minutes late.
        late = rng.uniform(0, 60) if rng.random() < 0.8 else rng.uniform(60, 270)
        published.append((started + timedelta(seconds=late), record))
    return published


def test_late_publication_jitter_and_outage_lose_nothing(
    agent: Engine, services: FakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = _traffic(240, seed=7)
    pending = sorted(traffic, key=lambda entry: entry[0])
    rng = random.Random(3)
    runs: list[tuple[datetime, datetime]] = []  # (scheduled, actual start)
    scheduled_times = [T0 + k * 30 * MIN for k in range(1, 9)]  # T0+30min .. T0+4h
    # A worker outage: the run at T0+90 starts late, together with the one at T0+120.
    late = [T0 + 90 * MIN]
    back = T0 + 120 * MIN + timedelta(seconds=30)
    # A server outage: the runs at T0+150 and T0+180 never happen at all.
    lost = {T0 + 150 * MIN, T0 + 180 * MIN}
    for scheduled in scheduled_times:
        if scheduled in lost or scheduled in late:
            continue
        if scheduled == T0 + 120 * MIN:
            runs += [(missed, back) for missed in late]
        runs.append((scheduled, scheduled + timedelta(seconds=rng.uniform(-8, 8))))

    results = []
    for scheduled, actual in runs:
        # The platform has published what it had by the run's actual start.
        while pending and pending[0][0] <= actual:
            services.add_conversations(AGENT, [pending.pop(0)[1]])
        monkeypatch.setattr(sampling_flow, "scheduled_time", lambda when=scheduled: when)
        results.append(
            sampling_flow.sample_conversations(agent_name=AGENT, window_minutes=30, max_sample=3)
        )
    assert not pending

    # Bounded catch-up: the first run after the server outage took two windows, not three.
    assert max(result["windows"] for result in results) == 2  # type: ignore[type-var]
    imported = sum(result["pulled"]["imported"] for result in results)  # type: ignore[index]
    duplicates = sum(result["pulled"]["duplicates"] for result in results)  # type: ignore[index]
    assert (imported, duplicates) == (len(traffic), 0)  # every one pulled once, none twice
    with Session(agent) as session:
        stored = session.exec(select(Conversation.external_id)).all()
        assert sorted(stored) == sorted(record["id"] for _, record in traffic)
        target = agents.get_agent(session, name=AGENT)
        found = coverage.coverage(session, agent=target)
        assert found.gaps == []
        # The last run scheduled at T0+4h pulled up to its time less the 5-minute delay.
        assert coverage.watermark(session, agent=target) == T0 + 4 * 60 * MIN - 5 * MIN

    # A second run for the same schedule finds nothing new to pull.
    again = sampling_flow.sample_conversations(agent_name=AGENT, window_minutes=30)
    assert again["windows"] == 0 and again["pulled"] == {
        "imported": 0,
        "duplicates": 0,
        "rejected": 0,
    }


def test_coverage_shows_gaps_and_backfill_fills_them(agent: Engine, services: FakeServices) -> None:
    traffic = _traffic(90, seed=11)
    services.add_conversations(AGENT, [record for _, record in traffic])
    with Session(agent) as session:
        target = agents.get_agent(session, name=AGENT)
        for start, end in ((0, 60), (90, 180)):
            coverage.record_window(
                session,
                agent=target,
                span=Span(T0 + start * MIN, T0 + end * MIN),
                source=coverage.SCHEDULE,
            )
        session.commit()
    runner = CliRunner()
    shown = runner.invoke(app, ["coverage", AGENT])
    assert shown.exit_code == 0, shown.output
    assert "GAP" in shown.output and "1 gap(s), 0:30:00 in all" in shown.output
    assert f"{T0 + 60 * MIN:%Y-%m-%d %H:%M:%S}" in shown.output

    gap = [(T0 + 60 * MIN).isoformat(), (T0 + 90 * MIN).isoformat()]
    filled = runner.invoke(app, ["sample", AGENT, "--backfill", *gap])
    assert filled.exit_code == 0, filled.output
    in_gap = [
        r
        for _, r in traffic
        if T0 + 60 * MIN <= datetime.fromisoformat(r["started_at"]) < T0 + 90 * MIN
    ]
    assert f"│ {len(in_gap)} " in filled.output.replace("  ", " ")
    # Run twice: the import is idempotent, the second pulls only known ones.
    twice = runner.invoke(app, ["sample", AGENT, "--backfill", *gap])
    assert twice.exit_code == 0, twice.output
    with Session(agent) as session:
        assert session.exec(select(func.count()).select_from(Conversation)).one() == len(in_gap)
        windows = session.exec(
            select(PulledWindow).where(PulledWindow.source == coverage.BACKFILL)
        ).all()
        assert [(w.imported, w.duplicates) for w in windows] == [
            (len(in_gap), 0),
            (0, len(in_gap)),
        ]
        # The backfill fills the hole but leaves the schedule's watermark where it was.
        target = agents.get_agent(session, name=AGENT)
        assert coverage.coverage(session, agent=target).gaps == []
        assert coverage.watermark(session, agent=target) == T0 + 180 * MIN
        order = session.exec(select(PulledWindow.id).order_by(col(PulledWindow.id))).all()
        assert len(order) == 4
    assert "No gaps" in runner.invoke(app, ["coverage", AGENT]).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backfill", "2026-03-02T10:00", "2026-03-02T09:00"], "must be after FROM"),
        (["--backfill", "2020-01-01", "2026-01-01"], "at most 366 days"),
        (["--backfill", "yesterday", "2026-01-01"], "Invalid value"),
    ],
)
def test_backfill_refuses_bad_periods(agent: Engine, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["sample", AGENT, *args])
    assert result.exit_code != 0
    assert message in result.output
    with Session(agent) as session:
        assert session.exec(select(func.count()).select_from(PulledWindow)).one() == 0


def test_backfill_without_a_platform_says_so(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENTOPS_PLATFORM_URL", raising=False)
    get_settings.cache_clear()
    result = CliRunner().invoke(
        app, ["sample", AGENT, "--backfill", "2026-03-02T09:00", "2026-03-02T10:00"]
    )
    assert result.exit_code == 2
    assert "error: --backfill needs the platform: set AGENTOPS_PLATFORM_URL" in result.output
