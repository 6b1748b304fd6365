"""The runbook across its stages: platform pull, sampling, review, triggers, CLI approval."""

import importlib.util
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from agentops.actions.service import decide, get_action, propose_rollback
from agentops.adapters.prefect_runs import run_is_waiting
from agentops.agents import service as agents
from agentops.audit.service import iter_events, verify_chain
from agentops.cli.app import app
from agentops.demo.fake_services import FakeServices
from agentops.demo.reviewers import SimulatedReviewer
from agentops.demo.scenario import work_review_queue
from agentops.demo.traffic import DEMO_PROFILES, generate_conversations
from agentops.flows.evaluate_triggers import evaluate_triggers
from agentops.flows.rollback_agent import rollback_agent
from agentops.flows.sample_conversations import sample_conversations
from agentops.flows.sweep_actions import sweep_actions
from agentops.review.rubric import register_rubric
from agentops.settings import get_settings
from agentops.store.db import write_session
from agentops.store.models import (
    ActionStatus,
    Approval,
    Decision,
    Evaluation,
    Outcome,
    ReviewItem,
    VersionStatus,
)
from agentops.triggers.service import register_trigger_set
from factories import as_person
from waiting import wait_for

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

ROOT = Path(__file__).resolve().parents[1]
AGENT, OWNER, BACKUP = "airline-assistant", "owner@x.io", "backup@x.io"
WINDOW_START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def read_example(name: str) -> str:
    return (ROOT / "deployments" / f"{name}.example.yaml").read_text()


@pytest.fixture
def services() -> Iterator[FakeServices]:
    with FakeServices(rollout_delay_s=0.1) as running:
        yield running


@pytest.fixture
def degraded_agent(engine: Engine, services: FakeServices) -> Engine:
    """v1 known good, v2 live and serving an hour of degraded traffic on the platform."""
    with Session(engine) as session:
        agent = agents.register_agent(
            session, name=AGENT, owner_email=OWNER, backup_email=BACKUP, actor=OWNER
        )
        v1 = agents.ensure_version(session, agent=agent, version="v1", actor=OWNER)
        agents.set_live(session, agent=agent, version=v1, actor=OWNER)
        agents.mark_known_good(session, agent=agent, version=v1, actor=OWNER)
        v2 = agents.ensure_version(session, agent=agent, version="v2", actor=OWNER)
        agents.set_live(session, agent=agent, version=v2, actor=OWNER)
        register_rubric(session, text=read_example("rubric"), source="rubric", actor=OWNER)
        register_trigger_set(
            session, agent=agent, text=read_example("triggers"), source="triggers", actor=OWNER
        )
        session.commit()
    services.set_live_version(AGENT, "v2")
    services.add_conversations(
        AGENT,
        generate_conversations(
            agent=AGENT,
            version="v2",
            profile=DEMO_PROFILES["v2"],
            start=WINDOW_START,
            count=60,
            spacing=timedelta(minutes=1),
            seed=3,
        ),
    )
    return engine


def test_pull_sample_review_and_evaluate_propose_a_rollback(
    degraded_agent: Engine, services: FakeServices
) -> None:
    sampled = sample_conversations(
        agent_name=AGENT,
        window_end=WINDOW_START + timedelta(hours=1),
        seed=11,
        max_sample=30,
        platform_url=services.url,
    )
    assert sampled["pulled"] == {"imported": 60, "duplicates": 0, "rejected": 0}
    assert sampled["samples"] == [{"version": "v2", "population": 60, "sampled": 30}]

    reviewers = [SimulatedReviewer(email=e) for e in ("r1@x.io", "r2@x.io")]
    reviewed, violations = work_review_queue(engine=degraded_agent, reviewers=reviewers)
    assert reviewed == 30 and violations > 0

    summary = evaluate_triggers(agent_name=AGENT)
    assert summary["version"] == "v2"
    assert "policy-adherence" in summary["breached"]
    assert summary["action_id"] is not None
    with Session(degraded_agent) as session:
        action = get_action(session, action_id=summary["action_id"])
        assert action.status == ActionStatus.proposed
        assert agents.agent_name(session, agent_id=action.agent_id) == AGENT
        breach = session.exec(
            select(Evaluation).where(
                Evaluation.trigger_name == "policy-adherence", Evaluation.outcome == Outcome.breach
            )
        ).one()
        assert 0 < breach.evidence["alarm"]["position"] <= 30
        assert action.evaluation_id in summary["evaluation_ids"]
        assert verify_chain(session) == []

    # A second run over the same window pulls duplicates only and queues nothing new.
    again = sample_conversations(
        agent_name=AGENT,
        window_end=WINDOW_START + timedelta(hours=1),
        seed=11,
        max_sample=30,
        platform_url=services.url,
    )
    assert again["pulled"]["duplicates"] == 60 and again["pulled"]["imported"] == 0
    with Session(degraded_agent) as session:
        assert len(session.exec(select(ReviewItem)).all()) == 30


def run_in_thread(**kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(rollback_agent(**kwargs)), daemon=True)
    thread.start()
    return thread, outcome


def wait_until_waiting(engine: Engine, action_id: int) -> None:
    def waiting() -> bool:
        with Session(engine) as session:
            action = get_action(session, action_id=action_id)
        return bool(action.flow_run_id) and action.status == ActionStatus.awaiting_approval

    wait_for(waiting, what="the rollback flow to reach its approval gate", timeout=30, every=0.2)


def rollback_waiting_for_approval(
    engine: Engine, services: FakeServices
) -> tuple[int, threading.Thread, dict[str, Any]]:
    """A manually proposed rollback whose flow is paused at its approval gate."""
    with Session(engine) as session:
        agent = agents.get_agent(session, name=AGENT)
        v2 = agents.get_version(session, agent=agent, version="v2")
        action = propose_rollback(
            session,
            agent=agent,
            from_version=v2,
            evaluation=None,
            actor="ops@x.io",
            reason="manual: customers complain",
        )
        session.commit()
        assert action is not None and action.id is not None
        action_id = action.id
    thread, outcome = run_in_thread(action_id=action_id, deployer_url=services.url)
    wait_until_waiting(engine, action_id)
    return action_id, thread, outcome


@pytest.fixture(autouse=True)
def quick_polling(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AGENTOPS_APPROVAL_POLL_INTERVAL_S", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_approval_resumes_the_waiting_rollback(
    degraded_agent: Engine, services: FakeServices
) -> None:
    action_id, thread, outcome = rollback_waiting_for_approval(degraded_agent, services)

    runner = CliRunner()
    refused = runner.invoke(app, ["approve", str(action_id), "--as", BACKUP])
    assert refused.exit_code == 2
    assert "owner" in refused.output
    approved = runner.invoke(app, ["approve", str(action_id), "--as", OWNER])
    assert approved.exit_code == 0, approved.output
    assert "resumed" in approved.output
    twice = runner.invoke(app, ["approve", str(action_id), "--as", OWNER])
    assert twice.exit_code == 0 and "counted once" in twice.output

    thread.join(timeout=60)
    assert not thread.is_alive()
    assert outcome["status"] == "succeeded"
    assert services.live_version(AGENT) == "v1"
    with Session(degraded_agent) as session:
        agent = agents.get_agent(session, name=AGENT)
        assert agents.live_version(session, agent=agent).version == "v1"  # type: ignore[union-attr]
        v2 = agents.get_version(session, agent=agent, version="v2")
        assert v2.status == VersionStatus.rolled_back
        assert len(session.exec(select(Approval)).all()) == 1
        kinds = [event.kind for event in iter_events(session, entity=f"action:{action_id}")]
        # The backup's premature attempt is on the trail even though it was refused.
        assert kinds.index("approval.refused") < kinds.index("approval.decided")
        assert kinds[-1] == "action.executed"


def test_serve_defines_the_scheduled_deployments() -> None:
    spec = importlib.util.spec_from_file_location("serve", ROOT / "deployments" / "serve.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    deployments = module.build_deployments(agent=AGENT, triggers_file="t.yaml")
    by_name = {deployment.name: deployment for deployment in deployments}
    assert (
        set(by_name)
        == {f"{AGENT}-hourly", f"{AGENT}-quarter-hourly", "on-demand", "every-minute"}
        and len(deployments) == 5
    )
    crons = sorted(schedule.schedule.cron for d in deployments for schedule in (d.schedules or []))
    assert crons == ["* * * * *", "*/15 * * * *", "5 * * * *"]
    evaluate = by_name[f"{AGENT}-quarter-hourly"]
    assert evaluate.parameters["rollback_deployment"] == module.ROLLBACK_DEPLOYMENT


def test_a_decision_made_only_in_the_store_is_woken_by_the_sweep(
    degraded_agent: Engine, services: FakeServices
) -> None:
    """Slack, the web or a CLI on another host may not reach Prefect: the sweep wakes it."""
    action_id, thread, outcome = rollback_waiting_for_approval(degraded_agent, services)
    with Session(degraded_agent) as session:
        run_id = get_action(session, action_id=action_id).flow_run_id
    assert run_id is not None
    # The request is recorded just before the pause; a sweep in between waits for the next.
    wait_for(lambda: run_is_waiting(run_id), what="the gate to pause", timeout=30, every=0.1)
    # A waiting gate writes too: take the write lock first, as every channel does.
    with write_session(degraded_agent) as session:
        decide(
            session,
            action_id=action_id,
            actor=as_person(session, OWNER),
            decision=Decision.approve,
            reason=None,
        )
    assert sweep_actions()["woken"] == [action_id]
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert outcome["status"] == "succeeded"
    assert services.live_version(AGENT) == "v1"


def test_cli_evaluate_approve_and_run(degraded_agent: Engine, services: FakeServices) -> None:
    """The whole loop by hand: no scheduler, no waiting flow, only the CLI."""
    sample_conversations(
        agent_name=AGENT,
        window_end=WINDOW_START + timedelta(hours=1),
        seed=5,
        max_sample=30,
        platform_url=services.url,
    )
    work_review_queue(engine=degraded_agent, reviewers=[SimulatedReviewer(email="r@x.io")])
    runner = CliRunner()

    with Session(degraded_agent) as session:
        v1 = agents.get_version(session, agent=agents.get_agent(session, name=AGENT), version="v1")
        v1.known_good_at = None  # as if v1 had never passed: nowhere to roll back to
        session.add(v1)
        session.commit()
    stuck = runner.invoke(app, ["evaluate", AGENT])
    assert stuck.exit_code == 1
    assert "no rollback was proposed" in stuck.output
    assert "no other known-good version" in " ".join(stuck.output.split())

    with Session(degraded_agent) as session:
        v1 = agents.get_version(session, agent=agents.get_agent(session, name=AGENT), version="v1")
        v1.known_good_at = WINDOW_START
        session.add(v1)
        session.commit()
    proposed = runner.invoke(app, ["evaluate", AGENT])
    assert proposed.exit_code == 0, proposed.output
    assert "Rollback proposed as action 1" in proposed.output

    early = runner.invoke(app, ["actions", "run", "1", "--deployer-url", services.url])
    assert early.exit_code == 2 and "only approved actions run" in early.output
    approved = runner.invoke(app, ["approve", "1", "--as", OWNER])
    assert approved.exit_code == 0 and "agentops actions run 1" in approved.output
    ran = runner.invoke(app, ["actions", "run", "1", "--deployer-url", services.url])
    assert ran.exit_code == 0, ran.output
    assert "Action 1 succeeded" in ran.output
    assert services.live_version(AGENT) == "v1"
