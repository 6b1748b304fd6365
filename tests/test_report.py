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
from agentops.reporting.metrics import format_duration, spread, sprt_expected_reviews
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
from factories import BACKUP, OWNER, as_person, conversation, degraded_fleet

TRIGGERS = """
version: 1
agent: airline
triggers:
  - name: policy-adherence
    kind: policy_adherence
    p0: 0.05
    p1: 0.20
    alpha: 0.05
    beta: 0.10
"""


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
    trigger_set = TriggerSet(
        agent_id=fleet.agent.id,  # type: ignore[arg-type]
        version=1,
        content=TRIGGERS,
        content_sha256="t",
        source="test",
    )
    session.add(trigger_set)
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
    evaluations = [
        Evaluation(
            agent_version_id=fleet.bad.id,  # type: ignore[arg-type]
            trigger_set_id=trigger_set.id,  # type: ignore[arg-type]
            trigger_name="policy-adherence",
            kind="policy_adherence",
            outcome=outcome,
            statistic=statistic,
            threshold=2.89,
            evidence={"summary": f"llr {statistic}"},
        )
        for outcome, statistic in ((Outcome.insufficient_data, 0.4), (Outcome.breach, 3.1))
    ]
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
    assert section.notice[0].hours_at_p1 == pytest.approx(section.notice[0].reviews_at_p1 / 10)

    page = render_report(report)
    assert "latency is the vendor's outage, not v3".replace("'", "&#x27;") in page
    assert page.count("<svg") == 1 and ">breach</text>" in page
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


def test_report_arithmetic() -> None:
    # Wald's approximation for the example trigger (the Monte Carlo median is 16 at p1).
    assert sprt_expected_reviews(p=0.2, p0=0.05, p1=0.2, alpha=0.05, beta=0.1) == pytest.approx(
        17.0, abs=0.05
    )
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
    assert datetime(2026, 1, 1, tzinfo=UTC)  # keeps the UTC import honest for readers
