"""Evaluations read only what is new, and end where one pass from scratch would."""

import random
import re
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from agentops.agents.actors import Channel, person_actor
from agentops.agents.service import ensure_person
from agentops.review.service import dispute_verdict
from agentops.store.db import write_session
from agentops.store.models import (
    Agent,
    AgentVersion,
    Conversation,
    ItemStatus,
    Review,
    ReviewItem,
    Role,
    Rubric,
    Sample,
    TriggerChart,
    TriggerSet,
    utcnow,
)
from agentops.triggers.evaluate import verdict
from agentops.triggers.observations import NO_CURSOR
from agentops.triggers.service import (
    acknowledge_false_alarm,
    evaluate_version,
    load_trigger_set,
    needed_to_clear,
    new_observations,
    register_trigger_set,
    start_state,
)
from factories import OWNER, breach_rollback, conversation, degraded_fleet, reviewer_as

T0 = utcnow() - timedelta(days=5)
HOUR = timedelta(hours=1)
TRIGGERS = """\
version: 1
agent: airline
triggers:
  - name: policy-adherence
    kind: policy_adherence
    healthy_rate: 0.05
    degraded_rates: [0.15, 0.50]
    false_alarm_every: 2000
  - name: escalation-rate
    kind: escalation_rate
    healthy_rate: 0.10
    degraded_rates: [0.25, 0.60]
    false_alarm_every: 5000
  - name: slow-replies
    kind: latency
    limit_ms: 4000
    healthy_rate: 0.05
    degraded_rates: [0.20, 0.60]
    false_alarm_every: 5000
  - name: unresolved
    kind: not_contained
    healthy_rate: 0.10
    degraded_rates: [0.25, 0.60]
    false_alarm_every: 5000
"""


class History:
    """A version's traffic hour by hour, each conversation reviewed soon after it."""

    def __init__(self, session: Session, agent: Agent, version: AgentVersion) -> None:
        self.session, self.agent, self.version = session, agent, version
        self.rng = random.Random(3)
        self.reviewer = ensure_person(session, email="rev@x.io", role=Role.reviewer)
        self.rubrics = [
            Rubric(name="policy", version=n, content_sha256=str(n) * 64) for n in (1, 2)
        ]
        session.add_all(self.rubrics)
        session.flush()
        self.sample = Sample(
            agent_version_id=version.id,  # type: ignore[arg-type]
            rubric_id=self.rubrics[0].id,  # type: ignore[arg-type]
            window_start=T0,
            window_end=T0 + HOUR,
            seed=0,
            population=0,
            size=0,
            method="test",
        )
        session.add(self.sample)
        session.flush()
        self.waiting: list[ReviewItem] = []
        self.stored: list[Conversation] = []

    def hour(self, number: int, *, violations: float, escalations: float) -> None:
        """Thirty conversations started in hour `number`, most reviewed within minutes."""
        start = T0 + number * HOUR
        for item in self.waiting:  # last hour's blind second reviews come back
            self._settle(item, violation=True, at=start + timedelta(minutes=30))
        self.waiting = []
        for i in range(30):
            escalated = self.rng.random() < escalations
            row = conversation(
                self.agent,
                self.version,
                external_id=f"{self.version.version}-{number}-{i}",
                started_at=start + timedelta(minutes=2 * i),
                escalated=escalated,
                contained=not escalated and self.rng.random() < 0.85,
                latency_ms=None if i % 9 == 0 else self.rng.randint(500, 4400),
            )
            self.session.add(row)
            self.session.flush()
            self.stored.append(row)
            item = self._review(row, violation=self.rng.random() < violations, at=row.started_at)
            if i % 10 == 3:  # drawn for a second review: counts only once it settles
                item.stage, item.settled_at, item.final_violation = "second", None, None
                item.status = ItemStatus.open
                self.waiting.append(item)
        # One conversation reviewed again under the newer rubric: it still counts once.
        if number > 0:
            self._review(self.stored[number * 5], violation=True, at=start + timedelta(minutes=5))
        self.session.flush()

    def _review(self, row: Conversation, *, violation: bool, at: datetime) -> ReviewItem:
        rubric = self.rubrics[1] if row is self.stored[0] or at != row.started_at else None
        item = ReviewItem(
            sample_id=self.sample.id,  # type: ignore[arg-type]
            conversation_id=row.id,  # type: ignore[arg-type]
            rubric_id=(rubric or self.rubrics[0]).id,  # type: ignore[arg-type]
        )
        self.session.add(item)
        self.session.flush()
        self.session.add(
            Review(
                review_item_id=item.id,  # type: ignore[arg-type]
                reviewer_id=self.reviewer.id,  # type: ignore[arg-type]
                violation=violation,
                submitted_at=at + timedelta(minutes=20),
            )
        )
        self._settle(item, violation=violation, at=at + timedelta(minutes=20))
        return item

    def _settle(self, item: ReviewItem, *, violation: bool, at: datetime) -> None:
        item.stage, item.status = "done", ItemStatus.reviewed
        item.final_violation, item.settled_at = violation, at
        self.session.add(item)


def _trigger_set(session: Session, agent: Agent) -> TriggerSet:
    return register_trigger_set(session, agent=agent, text=TRIGGERS, source="t", actor="t")


def _incremental(session: Session, agent: Agent, version: AgentVersion, as_of: datetime) -> list:
    report = evaluate_version(
        session,
        agent=agent,
        version=version,
        trigger_set=_trigger_set(session, agent),
        actor="flow:test",
        as_of=as_of,
    )
    return [
        _comparable(e.trigger_name, e.outcome, e.statistic, e.evidence) for e in report.evaluations
    ]


def _from_scratch(session: Session, agent: Agent, version: AgentVersion, as_of: datetime) -> list:
    """Every trigger's verdict from a fresh bank fed the version's whole history at once."""
    triggers = load_trigger_set(_trigger_set(session, agent))
    results = []
    for trigger in triggers.triggers:
        state = start_state(
            session, triggers=triggers, trigger=trigger, agent=agent, version=version, before=as_of
        )
        observations, _ = new_observations(
            session, trigger=trigger, version=version, as_of=as_of, cursor=NO_CURSOR
        )
        state.feed(observations)
        result = verdict(
            trigger,
            state,
            needed=needed_to_clear(state, trigger),
            unit=trigger.unit,
            per_day=triggers.per_day(trigger),
        )
        results.append(_comparable(result.name, result.outcome, result.statistic, result.evidence))
    return results


def _comparable(name: str, outcome: Any, statistic: Any, evidence: dict[str, Any]) -> tuple:
    kept = {key: value for key, value in evidence.items() if key != "review_backlog"}
    return name, str(outcome), statistic, kept


def test_evaluating_hour_by_hour_equals_one_pass_from_scratch(session: Session) -> None:
    fleet = degraded_fleet(session)
    history = History(session, fleet.agent, fleet.bad)
    outcomes = set()
    for number in range(6):
        degraded = number >= 3  # the version degrades halfway: the charts must alarm
        history.hour(
            number, violations=0.45 if degraded else 0.03, escalations=0.5 if degraded else 0.05
        )
        as_of = T0 + (number + 1) * HOUR
        incremental = _incremental(session, fleet.agent, fleet.bad, as_of)
        assert incremental == _from_scratch(session, fleet.agent, fleet.bad, as_of)
        outcomes.update(result[1] for result in incremental)
    assert {"breach", "ok"} <= outcomes
    # 180 conversations, each counted once though five were reviewed twice, less the last
    # hour's 3 waiting for a second review and 8 reviewed after the evaluation's time.
    policy = _incremental(session, fleet.agent, fleet.bad, T0 + 6 * HOUR)[0][3]
    assert policy["observations"] == 180 - 3 - 8


def test_a_disputed_verdict_is_replayed_out_and_back_in(session: Session) -> None:
    fleet = degraded_fleet(session)
    history = History(session, fleet.agent, fleet.bad)
    history.hour(0, violations=0.5, escalations=0.1)
    as_of = T0 + 90 * timedelta(minutes=1)  # every review of the hour has settled
    before = _incremental(session, fleet.agent, fleet.bad, as_of)
    counted = session.exec(
        select(ReviewItem)
        .where(ReviewItem.final_violation == True, ReviewItem.stage == "done")  # noqa: E712
        .order_by(col(ReviewItem.id))
    ).first()
    assert counted is not None and counted.settled_at is not None
    owner = person_actor(session, email=OWNER, channel=Channel.web)
    dispute_verdict(
        session,
        item_id=counted.id,  # type: ignore[arg-type]
        actor=owner,
        reason="it asked first",
        now=counted.settled_at + timedelta(minutes=1),
    )
    charts = session.exec(select(TriggerChart)).all()
    assert charts and all(chart.replay for chart in charts)
    without = _incremental(session, fleet.agent, fleet.bad, as_of)
    assert without == _from_scratch(session, fleet.agent, fleet.bad, as_of)
    assert without[0][3]["observations"] == before[0][3]["observations"] - 1
    assert not any(chart.replay for chart in session.exec(select(TriggerChart)))
    # Adjudicated the other way later on: it counts again, as a pass, at that time.
    counted.stage, counted.status = "done", ItemStatus.reviewed
    counted.final_violation, counted.settled_at = False, as_of + timedelta(minutes=5)
    session.add(counted)
    session.flush()
    later = as_of + timedelta(minutes=10)
    after = _incremental(session, fleet.agent, fleet.bad, later)
    assert after == _from_scratch(session, fleet.agent, fleet.bad, later)
    assert after[0][3]["events"] == before[0][3]["events"] - 1
    assert after[0][3]["observations"] == before[0][3]["observations"]


def test_a_replay_puts_acknowledged_false_alarms_back_where_they_were(session: Session) -> None:
    fleet = degraded_fleet(session)
    history = History(session, fleet.agent, fleet.bad)
    history.hour(0, violations=0.6, escalations=0.05)
    alarmed = _incremental(session, fleet.agent, fleet.bad, T0 + 80 * timedelta(minutes=1))
    assert alarmed[0][1] == "breach"
    reset = acknowledge_false_alarm(session, action=breach_rollback(session, fleet), actor=OWNER)
    assert "policy-adherence" in reset
    history.hour(1, violations=0.05, escalations=0.05)
    as_of = T0 + 2 * HOUR
    settled = _incremental(session, fleet.agent, fleet.bad, as_of)
    assert settled[0][3]["resets"] == 1
    for chart in session.exec(select(TriggerChart)):
        chart.replay = True
        session.add(chart)
    session.flush()
    assert _incremental(session, fleet.agent, fleet.bad, as_of) == settled


def test_evaluations_at_the_same_moment_count_everything_once(engine: Engine) -> None:
    with write_session(engine) as session:
        fleet = degraded_fleet(session)
        history = History(session, fleet.agent, fleet.bad)
        for number in range(3):
            history.hour(number, violations=0.03, escalations=0.05)
        _trigger_set(session, fleet.agent)
        ids = (fleet.agent.id, fleet.bad.id)
    as_of = T0 + 3 * HOUR
    start = threading.Barrier(2)
    seen: list[int] = []
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            start.wait()
            # As the evaluate-triggers flow does: on SQLite the write lock comes first.
            with write_session(engine) as session:
                agent, version = session.get(Agent, ids[0]), session.get(AgentVersion, ids[1])
                results = _incremental(session, agent, version, as_of)  # type: ignore[arg-type]
                seen.append(results[1][3]["observations"])
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert seen == [90, 90]  # the second read on from the first, nothing twice
    with Session(engine) as session:
        charts = session.exec(select(TriggerChart)).all()
        assert len(charts) == 4  # one per trigger, though both evaluations started it
        escalation = next(c for c in charts if c.trigger_name == "escalation-rate")
        assert escalation.state["observations"] == 90


def test_a_later_evaluation_reads_no_history(engine: Engine, session: Session) -> None:
    """Query plans of an evaluation after the first: index ranges only (SQLite)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans by statistics; SQLite without them is the risky one")
    fleet = degraded_fleet(session)
    history = History(session, fleet.agent, fleet.bad)
    for number in range(3):
        history.hour(number, violations=0.03, escalations=0.05)
    _incremental(session, fleet.agent, fleet.bad, T0 + 3 * HOUR)
    history.hour(3, violations=0.03, escalations=0.05)
    statements: list[tuple[str, Any]] = []

    def grab(_conn, _cursor, statement, parameters, _context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT") and not executemany:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        _incremental(session, fleet.agent, fleet.bad, T0 + 4 * HOUR)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    reads = [s for s in statements if re.search(r"FROM (conversation|review|reviewitem)\b", s[0])]
    assert len(reads) >= 6
    for statement, parameters in reads:
        plan = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        details = " | ".join(row[3] for row in plan)
        assert not re.search(r"SCAN (conversation|review|reviewitem)\b", details), details
        assert "transcript" not in statement


def test_a_second_review_settled_behind_the_cursor_is_still_counted(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its first review's id was read long ago; the replay flag brings it in."""
    from agentops.review import service as review
    from agentops.settings import get_settings
    from factories import review_queue

    monkeypatch.setenv("AGENTOPS_REVIEW_DOUBLE_SHARE", "1")
    get_settings.cache_clear()
    agent = review_queue(session, count=3, reviewers=["rita@x.io", "raj@x.io"])
    version = session.exec(select(AgentVersion)).one()
    now = utcnow()
    findings = {"confirm": False, "grounded": True, "tone": True}
    notes = {"confirm": "booked without a yes"}
    for _ in range(3):
        item = review.claim_next(session, reviewer=reviewer_as(session, "rita@x.io"), now=now)
        assert item is not None and item.id is not None
        review.submit_review(
            session, item_id=item.id, reviewer=reviewer_as(session, "rita@x.io"), findings=findings,
            notes=notes, now=now,
        )  # fmt: skip

    def second(minutes: int) -> None:
        item = review.claim_next(session, reviewer=reviewer_as(session, "raj@x.io"), now=now)
        assert item is not None and item.id is not None
        at = now + timedelta(minutes=minutes)
        review.submit_review(
            session, item_id=item.id, reviewer=reviewer_as(session, "raj@x.io"), findings=findings,
            notes=notes, now=at,
        )  # fmt: skip

    second(10)
    as_of = now + timedelta(minutes=20)
    assert _incremental(session, agent, version, as_of)[0][3]["observations"] == 1
    second(5)  # settled at a time the charts have already read past
    assert any(chart.replay for chart in session.exec(select(TriggerChart)))
    caught_up = _incremental(session, agent, version, as_of)
    assert caught_up == _from_scratch(session, agent, version, as_of)
    assert caught_up[0][3]["observations"] == 2
    get_settings.cache_clear()
