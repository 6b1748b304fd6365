import json
import math
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from agentops.agents.service import ensure_person, ensure_version, set_live
from agentops.audit.service import iter_events, verify_chain
from agentops.errors import RuleViolation
from agentops.store.models import (
    Agent,
    AgentVersion,
    Conversation,
    Evaluation,
    ItemStatus,
    Outcome,
    Review,
    ReviewItem,
    Role,
    Rubric,
    Sample,
    TriggerSet,
    utcnow,
)
from agentops.triggers.config import (
    EscalationRateTrigger,
    LatencyP95Trigger,
    PolicyAdherenceTrigger,
    TriggerConfigError,
)
from agentops.triggers.evaluate import (
    MAX_EVIDENCE_IDS,
    ConversationSignal,
    ReviewedOutcome,
    evaluate_trigger,
)
from agentops.triggers.service import (
    EvaluationReport,
    evaluate_version,
    get_trigger_set,
    latest_trigger_set,
    load_trigger_set,
    register_trigger_set,
    version_reviews,
)
from agentops.triggers.statistics import wilson_interval, wilson_lower_bound
from factories import agent_named, conversation

T0 = utcnow()
POLICY = PolicyAdherenceTrigger(
    name="policy", kind="policy_adherence", p0=0.05, p1=0.20, alpha=0.05, beta=0.10
)
ESCALATION = EscalationRateTrigger(
    name="escalation", kind="escalation_rate", max_rate=0.25, min_conversations=50
)
LATENCY = LatencyP95Trigger(name="latency", kind="latency_p95", max_ms=4000, min_conversations=50)


def _reviews(violations: list[bool]) -> list[ReviewedOutcome]:
    return [
        ReviewedOutcome(
            review_id=100 + i,
            conversation_id=i,
            violation=v,
            submitted_at=T0 + timedelta(minutes=i),
        )
        for i, v in enumerate(violations)
    ]


def _signals(escalated: int, total: int, latency: int | None = 1000) -> list[ConversationSignal]:
    return [ConversationSignal(i, i < escalated, latency) for i in range(total)]


def _strict_json(evidence: dict) -> dict:
    return json.loads(json.dumps(evidence, allow_nan=False))


def test_policy_breach_records_reviews_needed() -> None:
    reviews = _reviews([False, True, True, True, True] + [False] * 20)
    result = evaluate_trigger(POLICY, reviews=list(reversed(reviews)), conversations=[])
    assert result.outcome == "breach"
    evidence = _strict_json(result.evidence)
    # One clean review (-0.172) then violations of +1.386 each: the third crosses A = 2.890.
    assert evidence["n_used"] == 4
    assert evidence["violations"] == 3
    assert evidence["reviews_total"] == 25
    assert evidence["review_ids"] == [100, 101, 102, 103]
    assert evidence["violation_review_ids"] == [101, 102, 103]
    assert evidence["decided_at_review_id"] == 103
    assert result.statistic == pytest.approx(3 * math.log(4) + math.log(0.80 / 0.95))
    assert result.threshold == pytest.approx(math.log(0.90 / 0.05))


def test_a_version_that_cleared_and_then_degraded_is_still_flagged() -> None:
    # 14 clean reviews clear the version; a single SPRT would stop watching there.
    reviews = _reviews([False] * 14 + [False, True, True, True])
    result = evaluate_trigger(POLICY, reviews=reviews, conversations=[])
    assert result.outcome == "breach"
    evidence = _strict_json(result.evidence)
    assert evidence["all_clears"] == 1
    assert evidence["n_used"] == 4
    assert evidence["review_ids"] == [114, 115, 116, 117]
    assert evidence["decided_at_review_id"] == 117
    assert "after 1 all-clear" in evidence["summary"]


def test_ok_reports_what_happened_since_the_all_clear() -> None:
    result = evaluate_trigger(POLICY, reviews=_reviews([False] * 14 + [True]), conversations=[])
    assert result.outcome == "ok"
    evidence = _strict_json(result.evidence)
    assert (evidence["n_used"], evidence["decided_at_review_id"]) == (14, 113)
    assert evidence["reviews_since_all_clear"] == 1
    assert evidence["violations_since_all_clear"] == 1
    assert result.statistic == pytest.approx(math.log(4))


def test_policy_ok_and_insufficient() -> None:
    ok = evaluate_trigger(POLICY, reviews=_reviews([False] * 20), conversations=[])
    assert ok.outcome == "ok"
    assert ok.evidence["n_used"] == 14
    assert ok.evidence["decision"] == "accept_h0"

    waiting = evaluate_trigger(POLICY, reviews=_reviews([False] * 5), conversations=[])
    assert waiting.outcome == "insufficient_data"
    assert waiting.evidence["decision"] == "continue"
    assert waiting.evidence["n_used"] == 5
    assert waiting.evidence["decided_at_review_id"] is None

    none = evaluate_trigger(POLICY, reviews=[], conversations=_signals(10, 100))
    assert none.outcome == "insufficient_data"
    assert none.evidence["violation_rate"] is None


def test_escalation_rate_uses_the_one_sided_wilson_lower_bound() -> None:
    breach = evaluate_trigger(ESCALATION, reviews=[], conversations=_signals(30, 60))
    assert breach.outcome == "breach"
    # 30/60 with z = Phi^-1(0.95) = 1.644854: centre (0.5 + z^2/120) / (1 + z^2/60) = 0.5,
    # half-width z * sqrt(0.25/60 + z^2/14400) / 1.045092 = 0.103859, lower 0.396141.
    assert breach.statistic == pytest.approx(0.396141, abs=1e-6)
    assert breach.statistic == pytest.approx(wilson_lower_bound(30, 60, confidence=0.95))
    assert breach.threshold == 0.25
    evidence = _strict_json(breach.evidence)
    assert (evidence["conversations"], evidence["escalated"], evidence["rate"]) == (60, 30, 0.5)
    assert evidence["escalated_conversation_ids"] == list(range(30))
    assert evidence["test"] == "wilson_one_sided_lower_bound"
    assert evidence["wilson_lower"] == breach.statistic
    assert evidence["summary"] == (
        "escalation rate 30/60: Wilson one-sided 95% lower bound 0.396 exceeds max_rate 0.25"
    )

    # An observed 30% is above max_rate, but with 60 conversations not convincingly so:
    # 18/60 gives centre 0.308629, half-width 0.095579, lower 0.213051.
    ok = evaluate_trigger(ESCALATION, reviews=[], conversations=_signals(18, 60))
    assert ok.outcome == "ok"
    assert ok.evidence["rate"] == pytest.approx(0.30)
    assert ok.statistic == pytest.approx(0.213051, abs=1e-6)
    assert "one-sided 95% lower bound 0.213 does not exceed" in ok.evidence["summary"]

    # 21/60 is convincing at one-sided 95%: centre (0.35 + z^2/120) / 1.045092 = 0.356472,
    # half-width z * sqrt(0.35 * 0.65 / 60 + z^2/14400) / 1.045092 = 0.099286, lower
    # 0.257186 > 0.25. The two-sided 95% interval's lower end (0.241678, a one-sided 97.5%
    # bound) would have called it ok.
    borderline = evaluate_trigger(ESCALATION, reviews=[], conversations=_signals(21, 60))
    assert borderline.outcome == "breach"
    assert borderline.statistic == pytest.approx(0.257186, abs=1e-6)
    assert wilson_interval(21, 60, confidence=0.95)[0] == pytest.approx(0.241678, abs=1e-6)

    few = evaluate_trigger(ESCALATION, reviews=[], conversations=_signals(40, 49))
    assert few.outcome == "insufficient_data"
    assert few.evidence["conversations"] == 49

    empty = evaluate_trigger(ESCALATION, reviews=[], conversations=[])
    assert empty.outcome == "insufficient_data"
    assert empty.statistic is None


def test_latency_p95_breach_ok_and_insufficient() -> None:
    slow = [ConversationSignal(i, False, 5000 + i) for i in range(60)]
    untimed = [ConversationSignal(1000 + i, False, None) for i in range(5)]
    breach = evaluate_trigger(LATENCY, reviews=[], conversations=slow + untimed)
    assert breach.outcome == "breach"
    evidence = _strict_json(breach.evidence)
    assert evidence["conversations"] == 60
    assert evidence["conversations_without_latency"] == 5
    # n = 60, q = 0.95: P(Bin(60, 0.95) <= 53) = 0.0297 <= 0.05 < P(<= 54) = 0.0787, so
    # the one-sided 95% lower bound is X(54) = 5000 + 53.
    assert evidence["p95_lower_ms"] == 5053
    assert evidence["test"] == "order_statistic_one_sided_lower_bound"
    assert "one-sided 95% lower bound 5053 ms exceeds max_ms 4000" in evidence["summary"]
    assert evidence["conversation_ids_total"] == 60
    assert breach.statistic == evidence["p95_lower_ms"]

    # n = 100: P(Bin(100, 0.95) <= 90) = 0.0282 <= 0.05 < P(<= 91) = 0.0631, so X(91).
    fast = [ConversationSignal(i, False, 1000 + 10 * i) for i in range(100)]
    ok = evaluate_trigger(LATENCY, reviews=[], conversations=fast)
    assert ok.outcome == "ok"
    assert ok.evidence["p95_lower_ms"] == 1900
    assert ok.evidence["p95_lower_ms"] <= ok.evidence["p95_ms"]

    few = evaluate_trigger(LATENCY, reviews=[], conversations=slow[:10] + untimed)
    assert few.outcome == "insufficient_data"
    assert few.evidence["conversations"] == 10


def test_latency_breach_needs_only_the_one_sided_rank() -> None:
    # 53 fast conversations and 7 slow ones: X(53) = 3520 ms, X(54) = 4500 ms. The one-sided
    # 95% bound is X(54) (see above) and breaches; the two-sided 95% interval's lower end,
    # X(53) (P(Bin(60, 0.95) <= 52) = 0.0098 <= 0.025 < 0.0297), would not have.
    latencies = [3000 + 10 * i for i in range(53)] + [4500 + 100 * i for i in range(7)]
    signals = [ConversationSignal(i, False, ms) for i, ms in enumerate(reversed(latencies))]
    result = evaluate_trigger(LATENCY, reviews=[], conversations=signals)
    assert result.outcome == "breach"
    assert result.statistic == 4500


def test_evidence_caps_id_lists_and_keeps_the_total() -> None:
    result = evaluate_trigger(ESCALATION, reviews=[], conversations=_signals(0, 600))
    assert len(result.evidence["conversation_ids"]) == MAX_EVIDENCE_IDS
    assert result.evidence["conversation_ids_total"] == 600


# --- the store ---------------------------------------------------------------

TRIGGERS_V1 = """\
version: 1
agent: airline
triggers:
  - name: policy-adherence
    kind: policy_adherence
    p0: 0.05
    p1: 0.20
  - name: escalation-rate
    kind: escalation_rate
    max_rate: 0.25
    min_conversations: 50
  - name: p95-latency
    kind: latency_p95
    max_ms: 4000
    min_conversations: 50
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
) -> list[Conversation]:
    conversations = [
        conversation(
            agent,
            version,
            external_id=f"{version.version}-{i}",
            started_at=T0 + timedelta(minutes=i),
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
                submitted_at=T0 + timedelta(hours=2) - timedelta(minutes=i),
            )
        )
    session.flush()
    return conversations


def _evaluate(session: Session, *, agent: Agent, version: AgentVersion) -> EvaluationReport:
    """Evaluate the version against TRIGGERS_V1, registering it on first use."""
    trigger_set = register_trigger_set(
        session, agent=agent, text=TRIGGERS_V1, source="triggers.yaml", actor="owner@x.io"
    )
    return evaluate_version(
        session, agent=agent, version=version, trigger_set=trigger_set, actor="flow:test"
    )


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
        ("p95-latency", Outcome.ok),
    ]
    trigger_set = latest_trigger_set(session, agent=agent)
    assert trigger_set is not None
    assert all(e.trigger_set_id == trigger_set.id and e.agent_version_id == v1.id for e in stored)
    assert stored[0].evidence["n_used"] == 14
    assert stored[1].evidence["conversations"] == 80
    recorded = list(iter_events(session, kind_prefix="evaluation.recorded"))
    assert [event.entity_id for event in recorded] == [str(e.id) for e in stored]
    assert recorded[0].payload["outcome"] == "ok"
    assert recorded[0].payload["trigger_set_version"] == 1
    assert len(list(iter_events(session, kind_prefix="version.known_good"))) == 1
    assert verify_chain(session) == []


def test_degraded_version_breaches_and_is_not_marked(session: Session) -> None:
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
        violations=[False, True, True, True, False, True, False, False],
    )
    report = _evaluate(session, agent=agent, version=v2)
    session.commit()

    assert not report.all_ok
    assert not report.marked_known_good
    assert {e.trigger_name for e in report.breached} == {
        "policy-adherence",
        "escalation-rate",
        "p95-latency",
    }
    assert agent.last_known_good_version_id is None
    policy = report.evaluations[0]
    # Reviews count in submission order (last created first here): F F T F T T crosses A.
    assert policy.evidence["n_used"] == 6
    assert policy.evidence["violations"] == 3
    submitted = [
        session.get(Review, review_id).submitted_at  # type: ignore[union-attr]
        for review_id in policy.evidence["review_ids"]
    ]
    assert submitted == sorted(submitted)
    escalation = report.evaluations[1]
    assert escalation.evidence["conversations"] == 60
    assert escalation.evidence["escalated"] == 30
    assert session.get(Evaluation, policy.id).evidence["decision"] == "accept_h1"  # type: ignore[union-attr]


def test_version_without_data_is_insufficient_not_ok(session: Session) -> None:
    agent = agent_named(session)
    v1 = ensure_version(session, agent=agent, version="v1", actor="t")
    set_live(session, agent=agent, version=v1, actor="t")
    report = _evaluate(session, agent=agent, version=v1)
    assert [e.outcome for e in report.evaluations] == [Outcome.insufficient_data] * 3
    assert not report.all_ok
    assert report.breached == []
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

    changed = TRIGGERS_V1.replace("max_rate: 0.25", "max_rate: 0.30")
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
    assert load_trigger_set(second).trigger("escalation-rate").max_rate == 0.30  # type: ignore[union-attr]

    older = changed.replace("max_rate: 0.30", "max_rate: 0.35")
    with pytest.raises(RuleViolation, match="bump `version:` to 3"):
        register_trigger_set(session, agent=agent, text=older, source="t.yaml", actor="t")

    event = list(iter_events(session, kind_prefix="triggers.registered"))[-1]
    assert event.payload["version"] == 2
    assert event.payload["sha256"] == second.content_sha256
    assert [t["name"] for t in event.payload["triggers"]] == [
        "policy-adherence",
        "escalation-rate",
        "p95-latency",
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
        TriggerConfigError, match=r"t.yaml:6:9: triggers\[0\].p0: Input should be less than 1"
    ):
        register_trigger_set(
            session,
            agent=agent,
            text=TRIGGERS_V1.replace("p0: 0.05", "p0: 1.5"),
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
    outcomes = version_reviews(session, version=version)
    assert [(o.conversation_id, o.violation) for o in outcomes] == [(first.id, True)]


def test_window_hours_judges_recent_traffic_only() -> None:
    # A day of clean traffic, then an hour in which every conversation escalates.
    calm = [
        ConversationSignal(i, False, 1000, started_at=T0 + timedelta(minutes=10 * i))
        for i in range(144)
    ]
    storm_start = T0 + timedelta(hours=24)
    storm = [
        ConversationSignal(1000 + i, True, 1000, started_at=storm_start + timedelta(minutes=i))
        for i in range(60)
    ]
    lifetime = EscalationRateTrigger(
        name="escalation", kind="escalation_rate", max_rate=0.25, min_conversations=50
    )
    recent_only = lifetime.model_copy(update={"window_hours": 1.0})
    diluted = evaluate_trigger(lifetime, reviews=[], conversations=calm + storm)
    assert diluted.outcome == "ok"  # 60 of 204: the lower bound stays under 25%
    focused = evaluate_trigger(recent_only, reviews=[], conversations=calm + storm)
    assert focused.outcome == "breach"
    assert focused.evidence["conversations"] == 60
    assert focused.evidence["window_hours"] == 1.0
    assert focused.evidence["summary"].startswith("last 1 h of traffic")
