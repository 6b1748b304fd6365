from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlmodel import Session, select

from agentops.agents.service import ensure_version
from agentops.audit.service import iter_events, verify_chain
from agentops.errors import RuleViolation
from agentops.review.rubric import register_rubric
from agentops.sampling.sampler import draw_sample, required_sample_size
from agentops.sampling.service import SampleResult, sample_window, versions_with_traffic
from agentops.store.models import (
    Agent,
    AgentVersion,
    Conversation,
    ReviewItem,
    Rubric,
    Sample,
    SignalSnapshot,
)
from factories import agent_named, conversation

RUBRIC = """
name: airline-policy
version: 1
criteria:
  - key: explicit-confirmation
    severity: critical
    description: Gets an explicit yes before changing a booking.
"""
T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("population", "expected"),
    [(10_000, 370), (100, 80), (1_000, 278), (1, 1), (0, 0), (10**9, 385)],
)
def test_cochran_sample_size_known_values(population: int, expected: int) -> None:
    assert required_sample_size(population) == expected


def test_sample_size_responds_to_parameters() -> None:
    assert required_sample_size(10_000, margin=0.03) > required_sample_size(10_000)
    assert required_sample_size(10_000, confidence=0.99) > required_sample_size(10_000)
    assert required_sample_size(10_000, expected_rate=0.1) < required_sample_size(10_000)
    # Never more than there is to review.
    assert required_sample_size(50, margin=0.01) == 50
    with pytest.raises(ValueError):
        required_sample_size(100, confidence=1.0)


def test_draw_is_reproducible_and_order_independent() -> None:
    ids = list(range(1, 501))
    first = draw_sample(ids, size=40, seed=7, key="w1")
    shuffled = list(reversed(ids))
    assert draw_sample(shuffled, size=40, seed=7, key="w1") == first
    assert first == sorted(first) and len(set(first)) == 40
    assert set(first) <= set(ids)
    assert draw_sample(ids, size=40, seed=8, key="w1") != first
    assert draw_sample(ids, size=40, seed=7, key="w2") != first
    assert draw_sample(ids[:10], size=40, seed=7, key="w1") == ids[:10]
    assert draw_sample([], size=5, seed=1, key="w") == []


def _setup(session: Session) -> tuple[Agent, AgentVersion, Rubric]:
    agent = agent_named(session)
    version = ensure_version(session, agent=agent, version="v1", actor="t")
    rubric = register_rubric(session, text=RUBRIC, source="rubric.yaml", actor="t")
    return agent, version, rubric


def _conversation(
    agent: Agent, version: AgentVersion, n: int, started_at: datetime, **facts: Any
) -> Conversation:
    return conversation(agent, version, external_id=f"c{n}", started_at=started_at, **facts)


def _sample(
    session: Session, setup: tuple[Agent, AgentVersion, Rubric], **request: Any
) -> SampleResult:
    """sample_window over one day from T0 with seed 1, unless the request says otherwise."""
    agent, version, rubric = setup
    request = {
        "window_start": T0,
        "window_end": T0 + timedelta(days=1),
        "seed": 1,
        "actor": "t",
        **request,
    }
    return sample_window(session, agent=agent, version=version, rubric=rubric, **request)


def test_sample_window_filters_window_and_records_everything(session: Session) -> None:
    setup = _setup(session)
    agent, version, _ = setup
    other = ensure_version(session, agent=agent, version="v0", actor="t")
    inside = [
        _conversation(agent, version, i, T0 + timedelta(minutes=30 * i), escalated=i % 4 == 0)
        for i in range(40)
    ]
    edge_end = _conversation(agent, version, 100, T0 + timedelta(days=1))
    before = _conversation(agent, version, 101, T0 - timedelta(seconds=1))
    other_version = _conversation(agent, other, 102, T0 + timedelta(hours=1))
    session.add_all([*inside, edge_end, before, other_version])
    session.flush()

    result = _sample(session, setup, seed=42, actor="sampler")
    session.commit()

    inside_ids = {c.id for c in inside}
    assert result.sample.population == 40
    assert result.sample.size == required_sample_size(40) == 37
    assert result.sample.method == ("srswor-cochran(margin=0.05,confidence=0.95,expected_rate=0.5)")
    assert {item.conversation_id for item in result.items} <= inside_ids
    assert len(result.items) == 37
    assert all(item.status == "open" for item in result.items)
    assert result.snapshot.conversations == 40
    assert result.snapshot.escalation_rate == pytest.approx(10 / 40)
    assert result.snapshot.p95_latency_ms is None

    drawn = next(iter(iter_events(session, kind_prefix="sample.drawn")))
    assert drawn.payload["seed"] == 42
    assert drawn.payload["population"] == 40
    assert drawn.payload["size"] == 37
    assert drawn.payload["conversation_ids"] == sorted(i.conversation_id for i in result.items)
    recorded = next(iter(iter_events(session, kind_prefix="signals.recorded")))
    assert recorded.entity_id == str(result.snapshot.id)
    assert recorded.payload["conversations"] == 40
    assert verify_chain(session) == []


def _minutely(session: Session, setup: tuple[Agent, AgentVersion, Rubric], count: int) -> None:
    agent, version, _ = setup
    session.add_all(
        [_conversation(agent, version, i, T0 + timedelta(minutes=i)) for i in range(count)]
    )
    session.flush()


def test_rerun_does_not_queue_twice_and_max_size_caps(session: Session) -> None:
    setup = _setup(session)
    _minutely(session, setup, 200)

    first = _sample(session, setup, max_size=30)
    assert len(first.items) == 30
    assert first.sample.method.endswith(",max_size=30)")

    # Same seed and window: the same conversations are drawn, and none is queued again.
    again = _sample(session, setup, max_size=30)
    assert again.items == []
    assert again.already_queued == sorted(i.conversation_id for i in first.items)

    # A different seed overlaps partly; only the new conversations are queued.
    other = _sample(session, setup, seed=2, max_size=30)
    session.commit()
    queued = session.exec(select(ReviewItem.conversation_id)).all()
    assert len(queued) == len(set(queued)) == 30 + len(other.items)
    assert len(other.items) + len(other.already_queued) == 30
    assert len(session.exec(select(Sample)).all()) == 3
    assert len(session.exec(select(SignalSnapshot)).all()) == 3


def test_same_window_written_in_another_timezone_draws_the_same_sample(session: Session) -> None:
    setup = _setup(session)
    _minutely(session, setup, 100)
    plus2 = timezone(timedelta(hours=2))
    end = T0 + timedelta(hours=2)
    utc_result = _sample(session, setup, seed=3, max_size=10, window_end=end)
    local_result = _sample(
        session,
        setup,
        seed=3,
        max_size=10,
        window_start=T0.astimezone(plus2),
        window_end=end.astimezone(plus2),
    )
    assert len(utc_result.items) == 10
    assert local_result.already_queued == sorted(i.conversation_id for i in utc_result.items)
    assert local_result.items == []
    keys = {event.payload["key"] for event in iter_events(session, kind_prefix="sample.drawn")}
    assert len(keys) == 1


def test_empty_window_and_invalid_requests(session: Session) -> None:
    setup = _setup(session)
    hour = T0 + timedelta(hours=1)
    empty = _sample(session, setup, window_end=hour)
    assert empty.sample.population == 0 and empty.items == []
    assert empty.snapshot.escalation_rate is None

    with pytest.raises(RuleViolation, match="must be after window start"):
        _sample(session, setup, window_end=T0)
    with pytest.raises(RuleViolation, match="timezone"):
        _sample(session, setup, window_start=datetime(2024, 5, 1), window_end=datetime(2024, 5, 2))
    with pytest.raises(RuleViolation, match="cannot size the sample"):
        _sample(session, setup, margin=0, window_end=hour)
    _, version, rubric = setup
    stranger = agent_named(session, "hotel", owner="h@x.io", backup="hb@x.io")
    with pytest.raises(RuleViolation, match="does not belong"):
        _sample(session, (stranger, version, rubric), window_end=hour)


def test_versions_with_traffic_only_lists_versions_seen_in_the_window(session: Session) -> None:
    agent = agent_named(session, "windowed")
    early = ensure_version(session, agent=agent, version="v1", actor="t")
    late = ensure_version(session, agent=agent, version="v2", actor="t")
    ensure_version(session, agent=agent, version="v3", actor="t")  # never served
    start = datetime(2026, 11, 2, 8, tzinfo=UTC)
    session.add(
        conversation(agent, early, external_id="a", started_at=start - timedelta(minutes=1))
    )
    session.add(conversation(agent, late, external_id="b", started_at=start + timedelta(minutes=5)))
    session.commit()
    found = versions_with_traffic(
        session, agent=agent, window_start=start, window_end=start + timedelta(hours=1)
    )
    assert [v.version for v in found] == ["v2"]
