"""The approval-gated flows under a real Prefect test server, approved the way the CLI does."""

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.decisions import NoWaker, decide_and_wake
from agentops.actions.service import get_action, propose_redeploy
from agentops.actions.sweeper import sweep
from agentops.adapters.prefect_runs import resume_waiting_run
from agentops.agents.service import ensure_version, set_live
from agentops.audit.service import iter_events, verify_chain
from agentops.errors import RuleViolation
from agentops.flows.redeploy_agent import redeploy_agent
from agentops.flows.rollback_agent import rollback_agent
from agentops.settings import get_settings
from agentops.store.db import write_session
from agentops.store.models import ActionStatus, AgentVersion, Decision, VersionStatus
from factories import (
    BACKUP,
    OPS,
    OWNER,
    FakeDeployer,
    agent_named,
    as_person,
    breach_rollback,
    degraded_fleet,
    serve,
)
from waiting import wait_for

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


@dataclass
class Setup:
    action_id: int
    good_id: int
    bad_id: int


@dataclass
class FlowThread:
    thread: threading.Thread
    outcome: dict[str, Any] = field(default_factory=dict)

    def result(self, timeout: float = 30) -> dict[str, Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "flow did not finish in time"
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome["summary"]


def get_action_key(engine: Engine, action_id: int) -> str | None:
    with Session(engine) as session:
        return get_action(session, action_id=action_id).idempotency_key


def timeouts(monkeypatch: pytest.MonkeyPatch, *, owner: int, backup: int) -> None:
    monkeypatch.setenv("AGENTOPS_OWNER_APPROVAL_TIMEOUT_S", str(owner))
    monkeypatch.setenv("AGENTOPS_BACKUP_APPROVAL_TIMEOUT_S", str(backup))
    monkeypatch.setenv("AGENTOPS_APPROVAL_POLL_INTERVAL_S", "1")
    monkeypatch.delenv("AGENTOPS_DEPLOYER_URL", raising=False)
    get_settings.cache_clear()


@pytest.fixture
def rollback_setup(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Setup:
    timeouts(monkeypatch, owner=30, backup=30)
    with Session(engine) as session:
        fleet = degraded_fleet(session)
        action = breach_rollback(session, fleet, reason="escalation rate breached")
        session.commit()
        return Setup(action_id=action.id, good_id=fleet.good.id, bad_id=fleet.bad.id)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> FakeDeployer:
    return FakeDeployer(serving={"airline": "v2"}, settle_checks=2)


@pytest.fixture
def deployer_url(fake: FakeDeployer) -> Iterator[str]:
    with serve(fake.app) as url:
        yield url


def start(flow: Callable[..., dict[str, Any]], **parameters: Any) -> FlowThread:
    """Run a flow in a thread, as a worker would, so the test can act as the approver."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = flow(**parameters)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return FlowThread(thread=thread, outcome=outcome)


def status_of(engine: Engine, action_id: int) -> ActionStatus:
    with Session(engine) as session:
        return get_action(session, action_id=action_id).status


def paused_run_id(engine: Engine, action_id: int) -> str:
    """The flow run id once the flow is actually paused waiting for a decision."""
    found: dict[str, str] = {}

    def paused() -> bool:
        with Session(engine) as session:
            run_id = get_action(session, action_id=action_id).flow_run_id
        if run_id is None:
            return False
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(run_id)).state
        found["id"] = run_id
        return state is not None and state.is_paused()

    wait_for(paused, what="the flow to pause for approval")
    return found["id"]


def approve_like_the_cli(
    engine: Engine, action_id: int, approver: str, decision: Decision, reason: str | None = None
) -> bool:
    with write_session(engine) as session:
        actor = as_person(session, approver)
    # The CLI's own path: the write lock first, so a gate writing meanwhile never collides.
    outcome = decide_and_wake(
        engine, action_id=action_id, actor=actor, decision=decision, reason=reason, waker=NoWaker()
    )
    assert outcome.newly_recorded
    assert outcome.flow_run_id is not None
    return resume_waiting_run(flow_run_id=outcome.flow_run_id, action_id=action_id)


def version_statuses(engine: Engine, setup: Setup) -> tuple[VersionStatus, VersionStatus]:
    with Session(engine) as session:
        good = session.get(AgentVersion, setup.good_id)
        bad = session.get(AgentVersion, setup.bad_id)
        assert good is not None and bad is not None
        return good.status, bad.status


def audit_kinds(engine: Engine, action_id: int) -> list[str]:
    with Session(engine) as session:
        assert verify_chain(session) == []
        return [e.kind for e in iter_events(session, entity=f"action:{action_id}")]


def test_owner_approves_and_rollback_is_deployed_and_verified(
    engine: Engine, rollback_setup: Setup, fake: FakeDeployer, deployer_url: str
) -> None:
    action_id = rollback_setup.action_id
    running = start(rollback_agent, action_id=action_id, deployer_url=deployer_url)
    paused_run_id(engine, action_id)
    assert approve_like_the_cli(engine, action_id, OWNER, Decision.approve)

    summary = running.result()
    assert summary["status"] == "succeeded"
    assert summary["kind"] == "rollback"
    assert summary["timings"]["approval_wait_s"] > 0
    assert "serving v1 and healthy" in summary["detail"]
    [deployment] = fake.deployments
    assert deployment["version"] == "v1" and deployment["action_id"] == action_id
    assert deployment["idempotency_key"] == get_action_key(engine, action_id)
    assert fake.serving["airline"] == "v1"
    assert version_statuses(engine, rollback_setup) == (
        VersionStatus.live,
        VersionStatus.rolled_back,
    )
    assert audit_kinds(engine, action_id) == [
        "action.proposed",
        "approval.requested",
        "approval.decided",
        "action.executing",
        "action.executed",
    ]


def test_owner_rejects_and_nothing_is_deployed(
    engine: Engine, rollback_setup: Setup, fake: FakeDeployer, deployer_url: str
) -> None:
    action_id = rollback_setup.action_id
    running = start(rollback_agent, action_id=action_id, deployer_url=deployer_url)
    paused_run_id(engine, action_id)
    assert approve_like_the_cli(engine, action_id, OWNER, Decision.reject, "holiday spike")

    summary = running.result()
    assert summary["status"] == "rejected"
    assert summary["timings"]["executing_s"] == 0
    assert fake.deployments == []
    assert version_statuses(engine, rollback_setup) == (VersionStatus.retired, VersionStatus.live)
    assert "action.executed" not in audit_kinds(engine, action_id)


def test_owner_timeout_escalates_and_backup_approves(
    engine: Engine,
    rollback_setup: Setup,
    fake: FakeDeployer,
    deployer_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeouts(monkeypatch, owner=2, backup=30)
    action_id = rollback_setup.action_id
    running = start(rollback_agent, action_id=action_id, deployer_url=deployer_url)
    paused_run_id(engine, action_id)
    # The gate keeps no timer: the scheduled sweeper escalates from the stored deadline.
    wait_for(
        lambda: bool(sweep(engine, deployer=None, deploy_timeout_s=600).escalated),
        timeout=10,
        what="the sweeper to escalate to the backup",
    )
    assert status_of(engine, action_id) == ActionStatus.escalated
    assert approve_like_the_cli(engine, action_id, BACKUP, Decision.approve)

    summary = running.result()
    assert summary["status"] == "succeeded"
    assert fake.serving["airline"] == "v1"
    kinds = audit_kinds(engine, action_id)
    assert kinds.index("approval.escalated") < kinds.index("approval.decided")


def test_nobody_decides_and_the_action_expires(
    engine: Engine,
    rollback_setup: Setup,
    fake: FakeDeployer,
    deployer_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeouts(monkeypatch, owner=1, backup=1)
    action_id = rollback_setup.action_id
    running = start(rollback_agent, action_id=action_id, deployer_url=deployer_url)

    summary = running.result()
    assert summary["status"] == "expired"
    assert fake.deployments == []
    # The gate keeps no escalation timer (the sweeper does): it only closes the window.
    kinds = audit_kinds(engine, action_id)
    assert kinds[-1] == "action.expired" and "approval.escalated" not in kinds
    with Session(engine) as session:
        run_id = get_action(session, action_id=action_id).flow_run_id
    assert run_id is not None
    assert resume_waiting_run(flow_run_id=run_id, action_id=action_id, grace_s=0) is False


def test_redeploy_without_a_deployer_fails_clearly(engine: Engine, rollback_setup: Setup) -> None:
    with pytest.raises(RuleViolation, match="is a rollback, not a redeploy"):
        redeploy_agent(action_id=rollback_setup.action_id)
    assert status_of(engine, rollback_setup.action_id) == ActionStatus.proposed

    with Session(engine) as session:
        agent = agent_named(session, "hotel")
        live = ensure_version(session, agent=agent, version="h1", actor="test")
        set_live(session, agent=agent, version=live, actor="test")
        candidate = ensure_version(session, agent=agent, version="h2", actor="test")
        action = propose_redeploy(
            session,
            agent=agent,
            version=candidate,
            actor=as_person(session, OPS),
            reason="new prompt",
        )
        session.commit()
        action_id, candidate_id = action.id, candidate.id
        assert action_id is not None
    running = start(redeploy_agent, action_id=action_id)
    paused_run_id(engine, action_id)
    assert approve_like_the_cli(engine, action_id, OWNER, Decision.approve)

    summary = running.result()
    assert summary["kind"] == "redeploy"
    assert summary["status"] == "failed"
    assert "no deployer configured: set AGENTOPS_DEPLOYER_URL" in summary["detail"]
    with Session(engine) as session:
        candidate = session.get(AgentVersion, candidate_id)
        assert candidate is not None
        assert candidate.status == VersionStatus.candidate
    assert audit_kinds(engine, action_id)[-1] == "action.executed"
