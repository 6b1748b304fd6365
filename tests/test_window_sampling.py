"""Sampling reads the window through its index: same signals and sample as a full load."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from agentops.agents.service import ensure_version
from agentops.review.rubric import register_rubric
from agentops.sampling.plan import SamplePlan, Unit, draw, draw_streamed
from agentops.sampling.sampler import PopulationChanged, draw_positions, draw_sample
from agentops.sampling.service import sample_window
from agentops.signals.compute import SignalInput, compute_signals
from agentops.signals.window import Window, window_signals
from agentops.store.models import Agent, AgentVersion, Conversation, ReviewItem, Rubric
from factories import REVIEW_RUBRIC, agent_named, conversation

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _store(session: Session, *, count: int = 400) -> tuple[Agent, AgentVersion, Rubric]:
    """v1 traffic around and inside [START, START + 1h), some of it v2's, in shuffled order."""
    agent = agent_named(session)
    v1 = ensure_version(session, agent=agent, version="v1", actor="t")
    v2 = ensure_version(session, agent=agent, version="v2", actor="t")
    rubric = register_rubric(session, text=REVIEW_RUBRIC, source="r.yaml", actor="t")
    rng = random.Random(5)
    rows = []
    for i in range(count):
        escalated = rng.random() < 0.2
        rows.append(
            conversation(
                agent,
                v2 if i % 7 == 0 else v1,
                external_id=f"c{i}",
                # Stored out of time order: ids and times disagree, as with late imports.
                started_at=START + timedelta(seconds=rng.uniform(-1800, 5400)),
                escalated=escalated,
                contained=not escalated and rng.random() < 0.9,
                sentiment=rng.uniform(-1, 1),
                latency_ms=None if i % 11 == 0 else rng.randint(200, 9000),
                channel=rng.choice(["chat", "voice", ""]),
                intent=rng.choice(["booking", "change", None]),
            )
        )
    session.add_all(rows)
    session.flush()
    return agent, v1, rubric


def _loaded(session: Session, version: AgentVersion) -> list[Conversation]:
    """The window as the previous implementation loaded it: whole rows, in id order."""
    return list(
        session.exec(
            select(Conversation)
            .where(
                Conversation.agent_version_id == version.id,
                Conversation.started_at >= START,
                Conversation.started_at < START + HOUR,
            )
            .order_by(col(Conversation.id))
        )
    )


def test_window_signals_equal_the_python_computation(session: Session) -> None:
    _, version, _ = _store(session)
    loaded = _loaded(session, version)
    expected = compute_signals(
        [SignalInput(c.escalated, c.contained, c.sentiment, c.latency_ms) for c in loaded]
    )
    counted = window_signals(session, window=Window(version.id, START, START + HOUR))  # type: ignore[arg-type]
    assert counted.signals == expected  # exactly: the mean is summed in the same order
    assert counted.signals.conversations == len(loaded) > 100
    assert counted.last_id == max(c.id for c in loaded)  # type: ignore[type-var]
    empty = window_signals(session, window=Window(version.id, START - 10 * HOUR, START - 9 * HOUR))  # type: ignore[arg-type]
    assert empty.signals == compute_signals([]) and empty.last_id is None


def test_simple_sample_equals_the_draw_over_the_loaded_window(session: Session) -> None:
    agent, version, rubric = _store(session)
    loaded = _loaded(session, version)
    result = sample_window(
        session,
        agent=agent,
        version=version,
        rubric=rubric,
        window_start=START,
        window_end=START + HOUR,
        seed=9,
        margin=0.1,
        actor="t",
    )
    window = f"{START.isoformat()}/{(START + HOUR).isoformat()}"
    key = f"airline/v1/{rubric.name}@v{rubric.version}/{window}"
    expected = draw_sample([c.id for c in loaded], size=result.sample.size, seed=9, key=key)  # type: ignore[misc]
    assert [item.conversation_id for item in result.items] == expected
    assert result.sample.population == len(loaded)
    assert {item.inclusion_probability for item in result.items} == {len(expected) / len(loaded)}
    assert result.snapshot.conversations == len(loaded)


def test_stratified_sample_equals_the_plan_over_the_loaded_window(session: Session) -> None:
    agent, version, rubric = _store(session)
    loaded = _loaded(session, version)
    plan = SamplePlan(half_width=0.12, floor=2, salt="pepper", allocation="neyman")
    result = sample_window(
        session,
        agent=agent,
        version=version,
        rubric=rubric,
        window_start=START,
        window_end=START + HOUR,
        seed=0,
        plan=plan,
        actor="t",
    )
    units = [Unit(c.id, c.external_id, c.channel, c.intent, c.escalated) for c in loaded]  # type: ignore[arg-type]
    expected = draw(plan, units)
    stored = session.exec(select(ReviewItem).order_by(col(ReviewItem.conversation_id))).all()
    assert [(i.conversation_id, i.stratum, i.inclusion_probability) for i in stored] == [
        (d.id, d.stratum, d.inclusion_probability) for d in expected
    ]
    assert len({d.stratum for d in expected}) > 4 and result.sample.population == len(loaded)


def test_draws_from_a_stream_keep_the_old_semantics() -> None:
    ids = list(range(3, 900, 3))
    positions = draw_positions(len(ids), size=25, seed=4, key="k")
    assert [ids[p] for p in positions] == draw_sample(ids, size=25, seed=4, key="k")
    units = [Unit(i, f"e{i}", "chat" if i % 2 else "voice", None, i % 5 == 0) for i in ids]
    plan = SamplePlan(half_width=0.1, salt="s")
    sizes = {"chat|-|contained": 1}
    with pytest.raises(PopulationChanged):
        draw_streamed(plan, units, sizes=sizes)


def test_a_window_is_read_through_the_version_time_index(
    engine: Engine, session: Session
) -> None:
    """Never the version's whole history, never the transcripts (query plans, SQLite)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans by statistics; SQLite without them is the risky one")
    agent, version, rubric = _store(session)
    statements: list[tuple[str, object]] = []

    def grab(_conn, _cursor, statement, parameters, _context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "FROM conversation" in statement and statement.lstrip().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        for plan in (None, SamplePlan(half_width=0.2)):
            sample_window(
                session,
                agent=agent,
                version=version,
                rubric=rubric,
                window_start=START,
                window_end=START + HOUR,
                seed=1,
                plan=plan,
                actor="t",
            )
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    window_reads = [s for s in statements if "started_at >=" in s[0]]
    assert len(window_reads) >= 5
    for statement, parameters in window_reads:
        assert "transcript" not in statement
        plan_rows = session.connection().exec_driver_sql(
            f"EXPLAIN QUERY PLAN {statement}", parameters  # type: ignore[arg-type]
        )
        details = " ".join(row[3] for row in plan_rows)
        assert "ix_conversation_version_time (agent_version_id=? AND started_at>?" in details
        assert "SCAN conversation" not in details
