"""The manager report, built from a real trail written by the services."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from agentops.actions.executor import EXECUTOR
from agentops.actions.service import (
    decide,
    escalate_if_due,
    mark_executing,
    open_approval,
    propose_redeploy,
    propose_rollback,
    record_execution,
)
from agentops.agents.service import ensure_version
from agentops.cli.app import app
from agentops.reporting.html import render_report
from agentops.reporting.metrics import (
    EvaluationRecord,
    format_duration,
    notice_estimate,
    spread,
)
from agentops.reporting.queries import build_report
from agentops.store.models import (
    Decision,
    Evaluation,
    Outcome,
    Rubric,
    Sample,
    TriggerSet,
    utcnow,
)
from agentops.triggers.config import parse_trigger_text
from agentops.triggers.cusum import design_bank
from agentops.triggers.evaluate import Healthy, Observation, TriggerState, verdict
from agentops.triggers.plan import plan_trigger
from agentops.triggers.service import needed_to_clear, register_trigger_set
from factories import BACKUP, OWNER, as_person, conversation, degraded_fleet

TRIGGERS = """
version: 2
agent: airline
expected_volume:
  reviews_per_day: 30
  conversations_per_day: 1500
triggers:
  - name: policy-adherence
    kind: policy_adherence
    healthy_rate: 0.03
    degraded_rates: [0.06, 0.30]
    false_alarm_every: 5 years
  - name: escalation-rate
    kind: escalation_rate
    healthy_rate: 0.10
    degraded_rates: [0.15, 0.40]
    false_alarm_every: 5 years
"""


def _policy_evaluations(version_id: int, trigger_set_id: int) -> list[Evaluation]:
    """A quiet start, then a run of violations: the policy bank's real verdicts."""
    parsed = parse_trigger_text(TRIGGERS, source="test")
    trigger = parsed.trigger("policy-adherence")
    assert trigger.healthy_rate is not None
    bank = design_bank(
        healthy_rate=trigger.healthy_rate,
        degraded_low=trigger.degraded_low,
        degraded_high=trigger.degraded_high,
        target=parsed.observations(trigger),
    )
    state = TriggerState.start(bank, Healthy(trigger.healthy_rate, trigger.healthy_rate, "test"))
    at = utcnow() - timedelta(hours=1)
    evaluations = []
    for first, events in ((1, [False] * 8 + [True]), (10, [True] * 40)):
        state.feed(
            Observation(first + i, at + timedelta(seconds=first + i), event)
            for i, event in enumerate(events)
        )
        result = verdict(
            trigger,
            state,
            needed=needed_to_clear(state, trigger),
            unit=trigger.unit,
            per_day=parsed.per_day(trigger),
        )
        evaluations.append(
            Evaluation(
                agent_version_id=version_id,
                trigger_set_id=trigger_set_id,
                trigger_name=result.name,
                kind=result.kind,
                outcome=Outcome(result.outcome),
                statistic=result.statistic,
                threshold=result.threshold,
                evidence=result.evidence,
            )
        )
    return evaluations


def _approve_and_run(session: Session, action_id: int, *, approver: str = OWNER) -> None:
    decide(
        session,
        action_id=action_id,
        actor=as_person(session, approver),
        decision=Decision.approve,
        reason=None,
    )
    mark_executing(session, action_id=action_id, actor=EXECUTOR)
    record_execution(
        session, action_id=action_id, succeeded=True, detail="healthy", actor=EXECUTOR
    )
    session.commit()


@pytest.fixture
def trail(session: Session) -> Session:
    """v2 breaches, is rolled back, v3 is redeployed; a later rollback is escalated, rejected."""
    fleet = degraded_fleet(session)
    trigger_set = register_trigger_set(
        session, agent=fleet.agent, text=TRIGGERS, source="test", actor="test"
    )
    rubric = Rubric(name="policy", version=1, content_sha256="r")
    session.add(rubric)
    session.flush()
    start = utcnow() - timedelta(hours=2)
    for minute in range(0, 60, 5):
        session.add(
            conversation(
                fleet.agent,
                fleet.bad,
                external_id=f"c{minute}",
                started_at=start + timedelta(minutes=minute),
            )
        )
    session.add(
        Sample(
            agent_version_id=fleet.bad.id,  # type: ignore[arg-type]
            rubric_id=rubric.id,  # type: ignore[arg-type]
            window_start=start,
            window_end=start + timedelta(hours=1),
            seed=1,
            population=12,
            size=10,
            method="test",
        )
    )
    session.flush()
    evaluations = _policy_evaluations(fleet.bad.id, trigger_set.id)  # type: ignore[arg-type]
    assert [e.outcome for e in evaluations] == [Outcome.insufficient_data, Outcome.breach]
    for evaluation in evaluations:
        session.add(evaluation)
    session.commit()

    rollback = propose_rollback(
        session,
        agent=fleet.agent,
        from_version=fleet.bad,
        evaluation=evaluations[1],
        actor="trigger:policy-adherence",
        reason="policy-adherence breached",
    )
    assert rollback is not None
    open_approval(
        session, action_id=rollback.id, flow_run_id=None, owner_timeout_s=60, backup_timeout_s=60
    )  # type: ignore[arg-type]
    _approve_and_run(session, rollback.id)  # type: ignore[arg-type]

    fixed = ensure_version(session, agent=fleet.agent, version="v3", actor="test")
    redeploy = propose_redeploy(
        session,
        agent=fleet.agent,
        version=fixed,
        actor=as_person(session, "rene@x.io"),
        reason="fix",
    )
    open_approval(
        session, action_id=redeploy.id, flow_run_id=None, owner_timeout_s=60, backup_timeout_s=60
    )  # type: ignore[arg-type]
    _approve_and_run(session, redeploy.id)  # type: ignore[arg-type]

    doubtful = propose_rollback(
        session,
        agent=fleet.agent,
        from_version=fixed,
        evaluation=None,
        actor="ops@x.io",
        reason="looks slow",
    )
    assert doubtful is not None
    open_approval(
        session, action_id=doubtful.id, flow_run_id=None, owner_timeout_s=1, backup_timeout_s=60
    )  # type: ignore[arg-type]
    assert escalate_if_due(session, action_id=doubtful.id, now=utcnow() + timedelta(seconds=5))  # type: ignore[arg-type]
    decide(
        session,
        action_id=doubtful.id,  # type: ignore[arg-type]
        actor=as_person(session, BACKUP),
        decision=Decision.reject,
        reason="latency is the vendor's outage, not v3",
        now=utcnow() + timedelta(seconds=6),
    )
    session.commit()
    return session


def test_report_tells_each_incident_and_action(trail: Session) -> None:
    now = utcnow()
    report = build_report(
        trail, since=now - timedelta(days=1), until=now + timedelta(minutes=1), now=now
    )
    assert report.trail_intact and report.trail_events > 0
    (section,) = report.agents
    (incident,) = section.incidents
    assert (incident.version, incident.trigger) == ("v2", "policy-adherence")
    assert incident.detect_from_live is not None
    assert incident.detect_from_first_conversation == timedelta(minutes=55)
    assert incident.rollback is not None and incident.rollback.outcome == "succeeded"
    assert incident.fixed_by is not None and incident.fixed_by.to_version == "v3"
    assert incident.back_to_fixed is not None and incident.back_to_fixed > timedelta(0)
    outcomes = [story.outcome for story in section.stories]
    assert outcomes == ["succeeded", "succeeded", "rejected"]
    rejected = section.stories[-1]
    assert rejected.escalated_at is not None and rejected.decided_by == BACKUP
    assert all(story.time_to_decide is not None for story in section.stories)
    breach = next(e for e in section.evaluations if e.outcome == "breach")
    assert breach.share_of_threshold == 1.0 and breach.unit == "reviews"
    assert breach.observations == 49

    # The notice figures are the trigger plans' (as `triggers check` prints them), in time
    # at the volume observed: 10 sampled reviews an hour, 12 conversations an hour.
    assert section.trigger_set_version == 2 and section.trigger_set_problem is None
    parsed = parse_trigger_text(TRIGGERS, source="test")
    policy, escalation = section.notice
    for estimate, unit, per_hour in (
        (policy, "reviews", 10.0),
        (escalation, "conversations", 12.0),
    ):
        plan = plan_trigger(parsed, parsed.trigger(estimate.trigger))
        assert plan.bank is not None and estimate.unit == unit
        assert estimate.promised == plan.promised
        assert estimate.false_alarm_every == plan.bank.false_alarm_every
        assert estimate.delays == tuple((r, d) for r, d, *_ in plan.delays)
        assert len(estimate.delays) == 4
        assert (estimate.volume, estimate.per_hour) == ("observed", pytest.approx(per_hour))
        rate, delay = estimate.delays[-1]
        assert rate == plan.trigger.degraded_high
        assert estimate.hours(delay) == pytest.approx(delay / per_hour)

    page = render_report(report)
    assert "latency is the vendor's outage, not v3".replace("'", "&#x27;") in page
    assert page.count("<svg") == 1 and ">breach</text>" in page
    assert f"at 30%: {policy.delays[-1][1]:,.0f} reviews" in page
    assert f"{escalation.promised:,.0f} conversations" in page and "Wald" not in page
    assert "<script" not in page and "<link" not in page and "src=" not in page


def test_report_command(trail: Session, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--since", "7d", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 incident(s), 3 action(s); trail intact" in " ".join(result.output.split())
    assert out.read_text().startswith("<!doctype html>")
    for args, message in (
        (["--since", "30x"], "30x"),
        (["-o", str(tmp_path)], "is a directory"),
        (["--since", "1d", "--until", "2d"], "must be after"),
        (["--agent", "nobody"], "no agent named"),
    ):
        result = runner.invoke(app, ["report", *args])
        lines = result.output.strip().splitlines()
        assert (
            result.exit_code == 2 and message in result.output and "Traceback" not in result.output
        )
        assert len(lines) <= 2, lines


def test_notice_without_traffic_uses_the_files_volume() -> None:
    parsed = parse_trigger_text(TRIGGERS, source="test")
    plan = plan_trigger(parsed, parsed.trigger("escalation-rate"))
    estimate = notice_estimate(plan, observed_per_hour=None)
    assert (estimate.volume, estimate.per_hour) == ("expected", 1500 / 24)
    hours = estimate.hours(estimate.promised)
    assert hours is not None and hours / 24 / 365.25 == pytest.approx(5.0)
    assert format_duration(timedelta(hours=hours)) == "5.0 years"


def test_notice_for_a_measured_healthy_rate_says_what_is_missing() -> None:
    text = TRIGGERS.replace("healthy_rate: 0.10", "healthy_from: last_known_good")
    parsed = parse_trigger_text(text, source="test")
    plan = plan_trigger(parsed, parsed.trigger("escalation-rate"))
    estimate = notice_estimate(plan, observed_per_hour=60.0)
    assert plan.bank is None and estimate.false_alarm_every is None and estimate.delays == ()
    assert estimate.promised == plan.promised and "expected_healthy_rate" in estimate.note


def test_old_format_trigger_set_is_named_not_estimated(session: Session) -> None:
    fleet = degraded_fleet(session)
    old = "version: 1\nagent: airline\ntriggers:\n  - name: p\n    kind: policy_adherence\n"
    session.add(
        TriggerSet(
            agent_id=fleet.agent.id,  # type: ignore[arg-type]
            version=1,
            content=old + "    p0: 0.05\n    p1: 0.2\n",
            content_sha256="old",
            source="old.yaml",
        )
    )
    session.commit()
    now = utcnow()
    report = build_report(session, since=now - timedelta(days=1), until=now, now=now)
    (section,) = report.agents
    assert section.notice == [] and section.trigger_set_version == 1
    assert section.trigger_set_problem is not None
    assert "old trigger format" in section.trigger_set_problem
    assert "old trigger format" in render_report(report)


def test_chart_scales_any_statistic_to_its_threshold() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    record = EvaluationRecord(
        id=1, agent="a", version_id=1, version="v1", trigger="t", kind="policy_adherence",
        outcome="ok", statistic=1.445, threshold=2.89, evaluated_at=at,
    )  # fmt: skip
    assert record.share_of_threshold == pytest.approx(0.5)
    assert EvaluationRecord(**{**record.__dict__, "threshold": None}).share_of_threshold is None


def test_report_arithmetic() -> None:
    values = [timedelta(seconds=s) for s in (1, 2, 3, 4, 100)]
    result = spread([*values, None])
    assert (result.count, result.median, result.p90, result.worst) == (
        5,
        timedelta(seconds=3),
        timedelta(seconds=100),
        timedelta(seconds=100),
    )
    assert [format_duration(timedelta(seconds=s)) for s in (0.25, 2.2, 245, 3600, 90000)] == [
        "250 ms",
        "2.2 s",
        "4 min 05 s",
        "1 h 00 min",
        "1 d 1 h",
    ]
    assert format_duration(None) == "-"
