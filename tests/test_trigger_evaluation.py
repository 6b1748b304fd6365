"""Evaluating triggers on stored data: charts read incrementally, verdicts with evidence."""

from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select

from agentops.actions.service import decide
from agentops.agents.service import ensure_person, ensure_version, set_live
from agentops.audit.service import iter_events, verify_chain
from agentops.errors import RuleViolation
from agentops.reactions import evaluate_live_version
from agentops.store.models import (
    Action,
    ActionStatus,
    Agent,
    AgentVersion,
    Conversation,
    Decision,
    Evaluation,
    ItemStatus,
    Outcome,
    Review,
    ReviewItem,
    Role,
    Rubric,
    Sample,
    TriggerChart,
    TriggerSet,
    utcnow,
)
from agentops.triggers.backtest import backtest
from agentops.triggers.config import TriggerConfigError
from agentops.triggers.evaluate import TriggerState
from agentops.triggers.service import (
    EvaluationReport,
    acknowledge_false_alarm,
    evaluate_version,
    get_trigger_set,
    is_false_alarm,
    latest_trigger_set,
    load_trigger_set,
    new_observations,
    register_trigger_set,
)
from factories import agent_named, as_person, conversation, degraded_fleet

# In the past, so every conversation and review is already due at evaluation time.
T0 = utcnow() - timedelta(days=2)

TRIGGERS_V1 = """\
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
"""


def _traffic(
    session: Session,
    *,
    agent: Agent,
    version: AgentVersion,
    total: int,
    escalated: int,
    latency_ms: int,
    violations: list[bool],
    offset: int = 0,
) -> list[Conversation]:
    conversations = [
        conversation(
            agent,
            version,
            external_id=f"{version.version}-{offset + i}",
            started_at=T0 + timedelta(minutes=offset + i),
            escalated=i < escalated,
            latency_ms=latency_ms + i,
        )
        for i in range(total)
    ]
    session.add_all(conversations)
    session.flush()
    reviewer = ensure_person(session, email="reviewer@x.io", role=Role.reviewer)
    rubric = session.exec(select(Rubric)).first()
    if rubric is None:
        rubric = Rubric(name="airline-policy", version=1, content_sha256="0" * 64)
        session.add(rubric)
        session.flush()
    sample = Sample(
        agent_version_id=version.id,  # type: ignore[arg-type]
        rubric_id=rubric.id,  # type: ignore[arg-type]
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        seed=1,
        population=total,
        size=len(violations),
        method="uniform",
    )
    session.add(sample)
    session.flush()
    for i, violated in enumerate(violations):
        item = ReviewItem(
            sample_id=sample.id,  # type: ignore[arg-type]
            conversation_id=conversations[i].id,  # type: ignore[arg-type]
            rubric_id=rubric.id,  # type: ignore[arg-type]
            status=ItemStatus.reviewed,
        )
        session.add(item)
        session.flush()
        # Submitted in reverse id order: the test must follow submission time, not ids.
        session.add(
            Review(
                review_item_id=item.id,  # type: ignore[arg-type]
                reviewer_id=reviewer.id,  # type: ignore[arg-type]
                violation=violated,
                submitted_at=T0 + timedelta(hours=2, minutes=offset) - timedelta(minutes=i),
            )
        )
    session.flush()
    return conversations


def _evaluate(
    session: Session, *, agent: Agent, version: AgentVersion, as_of: datetime | None = None
) -> EvaluationReport:
    """Evaluate the version against TRIGGERS_V1, registering it on first use."""
    trigger_set = register_trigger_set(
        session, agent=agent, text=TRIGGERS_V1, source="triggers.yaml", actor="owner@x.io"
    )
    return evaluate_version(
        session,
        agent=agent,
        version=version,
        trigger_set=trigger_set,
        actor="flow:test",
        as_of=as_of,
    )


def first_review_id(session: Session, first: Conversation) -> int:
    """The id of the earliest submitted review of a conversation."""
    review = session.exec(
        select(Review)
        .join(ReviewItem, Review.review_item_id == ReviewItem.id)  # type: ignore[arg-type]
        .where(ReviewItem.conversation_id == first.id)
        .order_by(Review.submitted_at, Review.id)  # type: ignore[arg-type]
    ).first()
    assert review is not None and review.id is not None
    return review.id


def test_healthy_live_version_is_marked_known_good(session: Session) -> None:
    agent = agent_named(session)
    v1 = ensure_version(session, agent=agent, version="v1", actor="t")
    set_live(session, agent=agent, version=v1, actor="t")
    _traffic(
        session,
        agent=agent,
        version=v1,
        total=80,
        escalated=4,
        latency_ms=1000,
        violations=[False] * 20,
    )
    report = _evaluate(session, agent=agent, version=v1)
    session.commit()

    assert report.all_ok
    assert report.breached == []
    assert report.marked_known_good
    assert agent.last_known_good_version_id == v1.id
    stored = session.exec(select(Evaluation).order_by(Evaluation.id)).all()
    assert [(e.trigger_name, e.outcome) for e in stored] == [
        ("policy-adherence", Outcome.ok),
        ("escalation-rate", Outcome.ok),
        ("slow-replies", Outcome.ok),
    ]
    trigger_set = latest_trigger_set(session, agent=agent)
    assert trigger_set is not None
    assert all(e.trigger_set_id == trigger_set.id and e.agent_version_id == v1.id for e in stored)
    policy, escalation, latency = (e.evidence for e in stored)
    assert (policy["observations"], policy["events"], policy["unit"]) == (20, 0, "reviews")
    assert (escalation["observations"], escalation["events"]) == (80, 4)
    assert (latency["observations"], latency["events"]) == (80, 0)
    assert policy["needed_to_clear"] <= 20 and escalation["needed_to_clear"] <= 80
    assert stored[0].threshold == 1.0 and 0 <= stored[0].statistic < 1  # type: ignore[operator]
    assert all(chart["value"] < chart["threshold"] for chart in escalation["charts"])
    recorded = list(iter_events(session, kind_prefix="evaluation.recorded"))
    assert [event.entity_id for event in recorded] == [str(e.id) for e in stored]
    assert recorded[0].payload["outcome"] == "ok"
    assert recorded[0].payload["trigger_set_version"] == 1
    assert len(list(iter_events(session, kind_prefix="version.known_good"))) == 1
    assert verify_chain(session) == []


def test_degraded_version_breaches_with_its_evidence(session: Session) -> None:
    agent = agent_named(session)
    v1 = ensure_version(session, agent=agent, version="v1", actor="t")
    v2 = ensure_version(session, agent=agent, version="v2", actor="t")
    set_live(session, agent=agent, version=v2, actor="t")
    # v1's healthy traffic must not dilute v2's evaluation.
    _traffic(
        session,
        agent=agent,
        version=v1,
        total=200,
        escalated=0,
        latency_ms=500,
        violations=[False] * 30,
    )
    _traffic(
        session,
        agent=agent,
        version=v2,
        total=60,
        escalated=30,
        latency_ms=6000,
        violations=[False, False, True, True, True, True, True, False],
    )
    report = _evaluate(session, agent=agent, version=v2)
    session.commit()

    assert not report.all_ok and not report.marked_known_good
    assert {e.trigger_name for e in report.breached} == {
        "policy-adherence",
        "escalation-rate",
        "slow-replies",
    }
    policy = report.evaluations[0].evidence
    # Reviews count in submission order (created last, submitted first here).
    alarm = policy["alarm"]
    crossed = policy["charts"][alarm["charts"][0]]
    assert crossed["value"] >= crossed["threshold"]
    assert crossed["change_point"] == 2  # submitted in reverse: F T T T T T F F
    assert crossed["events_since_change"] <= 5
    assert alarm["position"] < 8  # it did not wait for the last review
    submitted = [
        session.get(Review, review_id).submitted_at  # type: ignore[union-attr]
        for review_id in policy["review_ids"]
    ]
    assert submitted == sorted(submitted) and len(submitted) == crossed["events_since_change"]
    assert report.evaluations[0].statistic == 1.0
    escalation = report.evaluations[1].evidence
    assert escalation["alarm"]["position"] < 30 and escalation["events"] == 30
    assert escalation["sparkline"]
    stored = session.get(Evaluation, report.evaluations[0].id)
    assert stored is not None and stored.evidence["alarm"] == alarm


def test_evaluations_read_only_what_is_new(session: Session) -> None:
    fleet = degraded_fleet(session)
    first = _traffic(
        session,
        agent=fleet.agent,
        version=fleet.bad,
        total=30,
        escalated=0,
        latency_ms=100,
        violations=[False] * 10,
    )
    _evaluate(session, agent=fleet.agent, version=fleet.bad)
    chart = session.exec(
        select(TriggerChart).where(TriggerChart.trigger_name == "escalation-rate")
    ).one()
    assert (chart.cursor_id, chart.max_seen_id) == (first[-1].id, first[-1].id)
    more = [
        conversation(
            fleet.agent,
            fleet.bad,
            external_id=f"more-{i}",
            started_at=T0 + timedelta(hours=3, minutes=i),
            escalated=i % 2 == 0,
        )
        for i in range(20)
    ]
    session.add_all(more)
    session.flush()
    cursor = (chart.cursor_at, chart.cursor_id, chart.max_seen_id)
    trigger = load_trigger_set(latest_trigger_set(session, agent=fleet.agent)).trigger(  # type: ignore[arg-type]
        "escalation-rate"
    )
    new, _ = new_observations(
        session, trigger=trigger, version=fleet.bad, as_of=utcnow(), cursor=cursor
    )
    assert [o.id for o in new] == [c.id for c in more]
    report = _evaluate(session, agent=fleet.agent, version=fleet.bad)
    escalation = report.evaluations[1].evidence
    assert (escalation["observations"], escalation["events"]) == (50, 10)
    # The incremental state equals one pass over the whole history.
    replay = backtest(
        session,
        agent=fleet.agent,
        triggers=load_trigger_set(
            latest_trigger_set(session, agent=fleet.agent)  # type: ignore[arg-type]
        ),
    )
    incremental = TriggerState.from_json(session.get(TriggerChart, chart.id).state)  # type: ignore[union-attr]
    assert replay[1].observations["escalation-rate"] == incremental.observations == 50
    assert escalation["charts"] == incremental.explain()


def test_conversations_dated_ahead_wait_for_their_time(session: Session) -> None:
    fleet = degraded_fleet(session)
    now = utcnow()
    session.add_all(
        [
            conversation(
                fleet.agent, fleet.bad, external_id="past", started_at=now - timedelta(hours=1)
            ),
            conversation(
                fleet.agent,
                fleet.bad,
                external_id="future",
                started_at=now + timedelta(days=2),
                escalated=True,
            ),
        ]
    )
    session.flush()
    report = _evaluate(session, agent=fleet.agent, version=fleet.bad, as_of=now)
    assert report.evaluations[1].evidence["observations"] == 1
    # A conversation stored late with an earlier time is still read, once.
    session.add(
        conversation(
            fleet.agent, fleet.bad, external_id="late", started_at=now - timedelta(hours=5)
        )
    )
    session.flush()
    report = _evaluate(session, agent=fleet.agent, version=fleet.bad, as_of=now)
    assert report.evaluations[1].evidence["observations"] == 2
    report = _evaluate(session, agent=fleet.agent, version=fleet.bad, as_of=now + timedelta(days=3))
    assert (
        report.evaluations[1].evidence["observations"],
        report.evaluations[1].evidence["events"],
    ) == (3, 1)


def test_version_without_data_is_insufficient_not_ok(session: Session) -> None:
    agent = agent_named(session)
    v1 = ensure_version(session, agent=agent, version="v1", actor="t")
    set_live(session, agent=agent, version=v1, actor="t")
    report = _evaluate(session, agent=agent, version=v1)
    assert [e.outcome for e in report.evaluations] == [Outcome.insufficient_data] * 3
    assert "needed to clear" in report.evaluations[0].evidence["summary"]
    assert not report.all_ok and report.breached == []
    assert agent.last_known_good_version_id is None


def test_candidate_version_all_ok_is_not_marked_known_good(session: Session) -> None:
    agent = agent_named(session)
    candidate = ensure_version(session, agent=agent, version="v9", actor="t")
    _traffic(
        session,
        agent=agent,
        version=candidate,
        total=80,
        escalated=0,
        latency_ms=1000,
        violations=[False] * 20,
    )
    report = _evaluate(session, agent=agent, version=candidate)
    assert report.all_ok
    assert not report.marked_known_good
    assert agent.last_known_good_version_id is None


def test_healthy_rate_measured_on_the_last_known_good_version(session: Session) -> None:
    fleet = degraded_fleet(session)
    measured = TRIGGERS_V1.replace(
        "    healthy_rate: 0.10\n",
        "    healthy_from: last_known_good\n    min_healthy_samples: 100\n",
    )
    trigger_set = register_trigger_set(
        session, agent=fleet.agent, text=measured, source="t.yaml", actor="t"
    )
    few = [
        conversation(
            fleet.agent,
            fleet.good,
            external_id=f"g{i}",
            started_at=T0 + timedelta(minutes=i),
            escalated=i % 10 == 0,
        )
        for i in range(60)
    ]
    session.add_all(few)
    session.flush()
    report = evaluate_version(
        session, agent=fleet.agent, version=fleet.bad, trigger_set=trigger_set, actor="t"
    )
    escalation = report.evaluations[1]
    assert escalation.outcome == Outcome.insufficient_data
    assert "only 60 conversations on last known-good v1" in escalation.evidence["summary"]
    more = [
        conversation(
            fleet.agent,
            fleet.good,
            external_id=f"h{i}",
            started_at=T0 + timedelta(hours=2, minutes=i),
            escalated=i % 10 == 0,
        )
        for i in range(60)
    ]
    session.add_all(more)
    session.flush()
    report = evaluate_version(
        session, agent=fleet.agent, version=fleet.bad, trigger_set=trigger_set, actor="t"
    )
    healthy = report.evaluations[1].evidence["healthy"]
    assert (healthy["successes"], healthy["n"], healthy["source"]) == (
        12,
        120,
        "last known good v1",
    )
    assert healthy["calibrated_rate"] > 12 / 120 and healthy["guarantee"] == 0.9


def test_a_false_alarm_resets_the_charts_and_a_second_breach_proposes_again(
    session: Session,
) -> None:
    fleet = degraded_fleet(session)
    _traffic(
        session,
        agent=fleet.agent,
        version=fleet.bad,
        total=20,
        escalated=0,
        latency_ms=100,
        violations=[True] * 8,
    )
    register_trigger_set(session, agent=fleet.agent, text=TRIGGERS_V1, source="t", actor="t")
    _, report = evaluate_live_version(session, agent=fleet.agent, actor="flow:test")
    action = report.proposed_action
    assert action is not None and action.id is not None
    # The owner's rejection with the reason "false alarm" resets the charts itself.
    decide(
        session,
        action_id=action.id,
        actor=as_person(session, "owner@x.io"),
        decision=Decision.reject,
        reason="False alarm",
    )
    assert is_false_alarm("False alarm.") and not is_false_alarm("not now")
    assert acknowledge_false_alarm(session, action=action, actor="owner@x.io") == []
    [event] = iter_events(session, kind_prefix="triggers.false_alarm_acknowledged")
    assert (
        event.payload["action_id"] == action.id and event.payload["trigger"] == "policy-adherence"
    )
    _, quiet = evaluate_live_version(session, agent=fleet.agent, actor="flow:test")
    assert quiet.breached == [] and quiet.proposed_action is None
    assert quiet.evaluations[0].evidence["resets"] == 1
    _traffic(
        session,
        agent=fleet.agent,
        version=fleet.bad,
        total=20,
        escalated=0,
        latency_ms=100,
        violations=[True] * 8,
        offset=100,
    )
    _, again = evaluate_live_version(session, agent=fleet.agent, actor="flow:test")
    assert [e.trigger_name for e in again.breached] == ["policy-adherence"]
    assert again.proposed_action is not None and again.proposed_action.id != action.id
    assert session.get(Action, action.id).status == ActionStatus.rejected  # type: ignore[union-attr]
    assert verify_chain(session) == []


def test_backtest_replays_history_and_compares_with_the_real_rollback(session: Session) -> None:
    fleet = degraded_fleet(session)
    _traffic(
        session,
        agent=fleet.agent,
        version=fleet.good,
        total=40,
        escalated=2,
        latency_ms=100,
        violations=[False] * 15,
    )
    _traffic(
        session,
        agent=fleet.agent,
        version=fleet.bad,
        total=40,
        escalated=0,
        latency_ms=100,
        violations=[False] * 3 + [True] * 6,
        offset=100,
    )
    register_trigger_set(session, agent=fleet.agent, text=TRIGGERS_V1, source="t", actor="t")
    _, report = evaluate_live_version(session, agent=fleet.agent, actor="flow:test")
    assert report.proposed_action is not None
    real_alarm = report.breached[0].evidence["alarm"]
    events_before = len(list(iter_events(session)))
    replays = backtest(
        session,
        agent=fleet.agent,
        triggers=load_trigger_set(latest_trigger_set(session, agent=fleet.agent)),  # type: ignore[arg-type]
    )
    assert [r.version for r in replays] == ["v1", "v2"]
    assert replays[0].alarms == [] and replays[0].real is None
    [alarm] = replays[1].alarms
    assert (alarm.trigger, alarm.position, alarm.observation_id) == (
        "policy-adherence",
        real_alarm["position"],
        real_alarm["id"],
    )
    assert replays[1].real is not None and replays[1].real.action_id == report.proposed_action.id
    # The same crossing, in data time: no difference (wall-clock times would not compare).
    assert replays[1].difference() == timedelta(0)
    assert replays[1].real.alarm_trigger == "policy-adherence"
    assert len(list(iter_events(session))) == events_before  # a backtest writes nothing


def test_trigger_set_versioning_rules(session: Session) -> None:
    agent = agent_named(session)
    first = register_trigger_set(
        session, agent=agent, text=TRIGGERS_V1, source="triggers.yaml", actor="t"
    )
    again = register_trigger_set(
        session, agent=agent, text=TRIGGERS_V1, source="elsewhere.yaml", actor="t"
    )
    assert again.id == first.id
    assert len(list(iter_events(session, kind_prefix="triggers.registered"))) == 1

    changed = TRIGGERS_V1.replace("healthy_rate: 0.10", "healthy_rate: 0.12")
    with pytest.raises(RuleViolation, match=r"version 1 .* already registered with different"):
        register_trigger_set(session, agent=agent, text=changed, source="t.yaml", actor="t")

    second = register_trigger_set(
        session,
        agent=agent,
        text=changed.replace("version: 1", "version: 2"),
        source="t.yaml",
        actor="t",
    )
    assert second.version == 2
    assert latest_trigger_set(session, agent=agent).id == second.id  # type: ignore[union-attr]
    assert get_trigger_set(session, agent=agent, version=1).id == first.id
    assert load_trigger_set(second).trigger("escalation-rate").healthy_rate == 0.12

    older = changed.replace("healthy_rate: 0.12", "healthy_rate: 0.11")
    with pytest.raises(RuleViolation, match="bump `version:` to 3"):
        register_trigger_set(session, agent=agent, text=older, source="t.yaml", actor="t")

    event = list(iter_events(session, kind_prefix="triggers.registered"))[-1]
    assert event.payload["version"] == 2
    assert event.payload["sha256"] == second.content_sha256
    assert [t["name"] for t in event.payload["triggers"]] == [
        "policy-adherence",
        "escalation-rate",
        "slow-replies",
    ]
    session.commit()
    assert len(session.exec(select(TriggerSet)).all()) == 2


def test_trigger_set_for_another_agent_or_invalid_is_refused(session: Session) -> None:
    agent = agent_named(session)
    with pytest.raises(RuleViolation, match="written for agent 'someone-else'"):
        register_trigger_set(
            session,
            agent=agent,
            text=TRIGGERS_V1.replace("agent: airline", "agent: someone-else"),
            source="t.yaml",
            actor="t",
        )
    with pytest.raises(
        TriggerConfigError,
        match=r"t.yaml:6:19: triggers\[0\].healthy_rate: Input should be less than 1",
    ):
        register_trigger_set(
            session,
            agent=agent,
            text=TRIGGERS_V1.replace("healthy_rate: 0.05", "healthy_rate: 1.5", 1),
            source="t.yaml",
            actor="t",
        )
    assert latest_trigger_set(session, agent=agent) is None


def test_a_conversation_reviewed_under_two_rubrics_counts_once(session: Session) -> None:
    agent = agent_named(session, "twice")
    version = ensure_version(session, agent=agent, version="v1", actor="t")
    [first] = _traffic(
        session,
        agent=agent,
        version=version,
        total=1,
        escalated=0,
        latency_ms=100,
        violations=[True],
    )
    newer = Rubric(name="airline-policy", version=2, content_sha256="1" * 64)
    session.add(newer)
    session.flush()
    sample = session.exec(select(Sample)).one()
    item = ReviewItem(
        sample_id=sample.id,  # type: ignore[arg-type]
        conversation_id=first.id,  # type: ignore[arg-type]
        rubric_id=newer.id,  # type: ignore[arg-type]
        status=ItemStatus.reviewed,
    )
    session.add(item)
    session.flush()
    reviewer = ensure_person(session, email="reviewer@x.io", role=Role.reviewer)
    session.add(
        Review(
            review_item_id=item.id,  # type: ignore[arg-type]
            reviewer_id=reviewer.id,  # type: ignore[arg-type]
            violation=False,
            submitted_at=T0 + timedelta(hours=5),
        )
    )
    session.flush()
    trigger = load_trigger_set(
        register_trigger_set(
            session,
            agent=agent,
            text=TRIGGERS_V1.replace("agent: airline", "agent: twice"),
            source="t",
            actor="t",
        )
    ).trigger("policy-adherence")
    outcomes, _ = new_observations(
        session, trigger=trigger, version=version, as_of=utcnow(), cursor=(None, None, None)
    )
    assert [(o.id, o.event) for o in outcomes] == [(first_review_id(session, first), True)]
