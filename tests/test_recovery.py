"""Nothing gets stuck: killed gate and executor processes, forged approvals, parallel sweepers.

Processes are real (`subprocess`), the deployer is a real HTTP server on 127.0.0.1 and the
store is the test database (SQLite or PostgreSQL) that every process shares.
"""

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from agentops.actions.deployer import HttpDeployer
from agentops.actions.executor import execute_approved
from agentops.actions.service import decide, get_action, open_approval, propose_rollback
from agentops.actions.sweeper import sweep
from agentops.agents.service import (
    ensure_version,
    get_agent,
    live_version,
    mark_known_good,
    set_live,
)
from agentops.audit.service import iter_events, verify_chain
from agentops.cli.app import app
from agentops.ingestion import service
from agentops.store.db import write_session
from agentops.store.models import (
    Action,
    ActionStatus,
    Agent,
    AgentVersion,
    Approval,
    AuditEvent,
    Conversation,
    Decision,
    utcnow,
)
from factories import (
    OWNER,
    FakeDeployer,
    agent_named,
    as_person,
    chat_record,
    degraded_fleet,
    serve,
)
from waiting import wait_for

CLI = [sys.executable, "-c", "from agentops.cli.app import main; main()"]
GATE_SCRIPT = """
import sys
from agentops.flows.rollback_agent import rollback_agent
rollback_agent(action_id=int(sys.argv[1]), deployer_url=sys.argv[2])
"""
# `agentops sweep` once every sweeper has started up, so their sweeps really overlap.
SWEEP_ON_GO = """
import sys, time
from pathlib import Path
import agentops.actions.sweeper, agentops.bootstrap, agentops.store.migrate
from agentops.cli.app import main
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
give_up = time.monotonic() + 60
while not go.exists() and time.monotonic() < give_up:
    time.sleep(0.002)
sys.argv = ["agentops", "sweep"]
main()
"""
# `agentops import` in chunks of 50 records, pausing after each commit so a test can kill it
# between chunks (a real import commits faster than a test can look).
IMPORT_SLOWLY = """
import sys, time
from agentops.ingestion import service
service.CHUNK_RECORDS = 50
close_part = service._ChunkWriter._close_part
def close_then_pause(self, *, complete):
    close_part(self, complete=complete)
    time.sleep(0.3)
service._ChunkWriter._close_part = close_then_pause
from agentops.cli.app import main
sys.argv = ["agentops", "import", sys.argv[1], "--agent", "airline", "--version", "v1"]
main()
"""
NEVER_SETTLES = 1_000_000  # health checks before the fake's rollout completes: never, here


# --- helpers ---------------------------------------------------------------------------


@dataclass
class Child:
    """A subprocess whose stdout and stderr go to files, so it can never block on a pipe."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def logs(self) -> str:
        """Everything the process printed so far, for failure messages."""
        return f"stdout:\n{self.out.read_text()}\nstderr:\n{self.err.read_text()}"

    def kill(self) -> int:
        """SIGKILL the process and reap it; returns its exit code."""
        os.kill(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)


@contextmanager
def child(args: list[str], *, env: dict[str, str], workdir: Path, name: str) -> Iterator[Child]:
    """Start a process and make sure it is killed and reaped however the block ends."""
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(args, env=env, cwd=workdir, stdout=stdout, stderr=stderr)
    try:
        yield Child(process=process, out=out, err=err)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def child_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a child process: this one without AGENTOPS_*, plus the given values."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGENTOPS_")}
    env.update(
        AGENTOPS_DATABASE_URL=database_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        COLUMNS="200",
        **extra,
    )
    return env


def read_action(engine: Engine, action_id: int) -> Action:
    """The action as committed right now."""
    with Session(engine) as session:
        return get_action(session, action_id=action_id)


def event_kinds(engine: Engine, action_id: int) -> list[str]:
    """The audit event kinds recorded for one action, in chain order."""
    with Session(engine) as session:
        return [event.kind for event in iter_events(session, entity=f"action:{action_id}")]


def chain_problems(engine: Engine) -> list[object]:
    """What is wrong with the audit chain (empty when intact)."""
    with Session(engine) as session:
        return list(verify_chain(session))


def store_live(engine: Engine, agent: str = "airline") -> str | None:
    """The version the store says is live for the agent."""
    with Session(engine) as session:
        version = live_version(session, agent=get_agent(session, name=agent))
        return version.version if version else None


def propose(engine: Engine, agent: str = "airline") -> int:
    """Propose rolling the agent back from its live version, as a breach would; the id."""
    with Session(engine) as session:
        target = get_agent(session, name=agent)
        live = live_version(session, agent=target)
        assert live is not None
        action = propose_rollback(
            session,
            agent=target,
            from_version=live,
            evaluation=None,
            actor="trigger:escalation-rate",
            reason="escalation rate breached",
        )
        assert action is not None, f"no rollback could be proposed for {agent}"
        session.commit()
        assert action.id is not None
        return action.id


def approve(engine: Engine, action_id: int) -> None:
    """The owner approves the action through the service, as every channel does."""
    with write_session(engine) as session:
        decide(
            session,
            action_id=action_id,
            actor=as_person(session, OWNER),
            decision=Decision.approve,
            reason=None,
        )


def roll_back_again(engine: Engine, url: str, fake: FakeDeployer) -> None:
    """A new rollback for 'airline' is proposed, approved, executed and recorded."""
    fake.settle_checks = 2
    action_id = propose(engine)
    approve(engine, action_id)
    target = version_name(engine, read_action(engine, action_id).to_version_id)
    with HttpDeployer(url) as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=10
        )
    assert action.status == ActionStatus.succeeded, action.outcome_detail
    assert fake.serving["airline"] == target
    assert store_live(engine) == target


def version_name(engine: Engine, version_id: int) -> str:
    """The version string behind an id."""
    with Session(engine) as session:
        version = session.get(AgentVersion, version_id)
        assert version is not None
        return version.version


def two_good_fleet(session: Session, name: str = "airline") -> Agent:
    """v0 and v1 both went live and proved good, then v2 replaced them; committed."""
    agent = agent_named(session, name)
    for label in ("v0", "v1"):
        version = ensure_version(session, agent=agent, version=label, actor="test")
        set_live(session, agent=agent, version=version, actor="test")
        mark_known_good(session, agent=agent, version=version, actor="test")
    bad = ensure_version(session, agent=agent, version="v2", actor="test")
    set_live(session, agent=agent, version=bad, actor="test")
    session.commit()
    return agent


def finish_rollout(fake: FakeDeployer, agent: str) -> None:
    """The deployer's pending rollout completes: its version now serves, healthy."""
    version, _checks_left = fake._pending.pop(agent)
    fake.serving[agent] = version


def flow_run_paused(run_id: str) -> bool:
    """Whether the Prefect server has this flow run paused."""
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    return state is not None and state.is_paused()


# --- 1. the gate process dies while it waits --------------------------------------------


@pytest.mark.flows
@pytest.mark.usefixtures("prefect_harness")
def test_gate_killed_while_waiting_is_swept_and_the_agent_can_roll_back_again(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    with Session(engine) as session:
        degraded_fleet(session)
        session.commit()
    action_id = propose(engine)
    fake = FakeDeployer(serving={"airline": "v2"})
    api_url = PREFECT_API_URL.value()
    assert api_url, "the Prefect test harness should set PREFECT_API_URL"
    env = child_env(
        database_url,
        PREFECT_API_URL=api_url,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        AGENTOPS_OWNER_APPROVAL_TIMEOUT_S="6",
        AGENTOPS_BACKUP_APPROVAL_TIMEOUT_S="1",
        AGENTOPS_APPROVAL_POLL_INTERVAL_S="1",
    )
    with serve(fake.app) as url:
        with child(
            [sys.executable, "-c", GATE_SCRIPT, str(action_id), url],
            env=env,
            workdir=tmp_path,
            name="gate",
        ) as gate:

            def gate_paused() -> bool:
                """The action waits and Prefect has the gate's run paused."""
                action = read_action(engine, action_id)
                assert action.status in {
                    ActionStatus.proposed,
                    ActionStatus.awaiting_approval,
                }, f"the gate moved on before it could be killed: {action.status}"
                return (
                    action.status == ActionStatus.awaiting_approval
                    and action.flow_run_id is not None
                    and flow_run_paused(action.flow_run_id)
                )

            wait_for(gate_paused, what="the gate to pause for approval", timeout=45, watch=gate)
            assert gate.kill() == -signal.SIGKILL

        waiting = read_action(engine, action_id)
        assert waiting.status == ActionStatus.awaiting_approval
        assert waiting.final_deadline is not None and waiting.flow_run_id is not None
        # With the gate dead nothing moves the action on, even past both deadlines.
        final_deadline = waiting.final_deadline
        wait_for(lambda: utcnow() > final_deadline, what="the final deadline", timeout=15)
        assert read_action(engine, action_id).status == ActionStatus.awaiting_approval
        assert flow_run_paused(waiting.flow_run_id)  # Prefect still thinks it is waiting
        assert event_kinds(engine, action_id) == ["action.proposed", "approval.requested"]

        swept = CliRunner().invoke(app, ["sweep"], env={"COLUMNS": "200"})
        assert swept.exit_code == 0, swept.output
        output = swept.stdout
        assert f"escalated: action {action_id}" in output
        assert f"expired: action {action_id}" in output
        assert not sweep(engine, deployer=None, deploy_timeout_s=600).changed  # nothing left

        kinds = event_kinds(engine, action_id)
        assert kinds.count("approval.escalated") == 1 and kinds.count("action.expired") == 1
        assert kinds[-2:] == ["approval.escalated", "action.expired"]
        assert read_action(engine, action_id).status == ActionStatus.expired
        assert fake.posts == 0
        assert store_live(engine) == fake.serving["airline"] == "v2"

        roll_back_again(engine, url, fake)
    assert fake.serving["airline"] == "v1"
    assert chain_problems(engine) == []


# --- 2. the executor dies between the deploy POST and the record ------------------------


def test_executor_killed_after_the_post_is_settled_at_the_next_sweep_once_live(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Not after the deploy timeout: as soon as the deployer reports the target healthy."""
    with Session(engine) as session:
        two_good_fleet(session)
    action_id = propose(engine)
    approve(engine, action_id)
    fake = FakeDeployer(serving={"airline": "v2"}, settle_checks=NEVER_SETTLES)
    with serve(fake.app) as url:
        env = child_env(database_url, AGENTOPS_DEPLOYER_URL=url, AGENTOPS_HEALTH_TIMEOUT_S="60")
        with child(
            [*CLI, "actions", "run", str(action_id)], env=env, workdir=tmp_path, name="run"
        ) as executor:
            wait_for(lambda: fake.posts == 1, what="the executor's deploy POST", watch=executor)
            assert executor.kill() == -signal.SIGKILL
        with HttpDeployer(url) as deployer:
            still_rolling = sweep(engine, deployer=deployer, deploy_timeout_s=600)
            assert still_rolling.reconciled == {}
            assert read_action(engine, action_id).status == ActionStatus.executing
            finish_rollout(fake, "airline")
            report = sweep(engine, deployer=deployer, deploy_timeout_s=600)
        assert report.reconciled == {action_id: ActionStatus.succeeded.value}
        settled = read_action(engine, action_id)
        assert settled.status == ActionStatus.succeeded
        assert "settled by the sweeper" in (settled.outcome_detail or "")
        assert fake.posts == 1 and fake.serving["airline"] == store_live(engine) == "v1"
        assert event_kinds(engine, action_id).count("action.executed") == 1
        assert chain_problems(engine) == []



@pytest.mark.parametrize("rollout_completed", [True, False], ids=["went-live", "never-switched"])
def test_executor_killed_after_the_post_is_reconciled_by_the_sweeper(
    engine: Engine, database_url: str, tmp_path: Path, rollout_completed: bool
) -> None:
    with Session(engine) as session:
        two_good_fleet(session)
    action_id = propose(engine)
    approve(engine, action_id)
    key = read_action(engine, action_id).idempotency_key
    fake = FakeDeployer(serving={"airline": "v2"}, settle_checks=NEVER_SETTLES)
    with serve(fake.app) as url:
        env = child_env(database_url, AGENTOPS_DEPLOYER_URL=url, AGENTOPS_HEALTH_TIMEOUT_S="60")
        with child(
            [*CLI, "actions", "run", str(action_id)], env=env, workdir=tmp_path, name="run"
        ) as executor:
            wait_for(
                lambda: fake.posts == 1 and len(fake.deployments) == 1,
                what="the executor's deploy POST",
                watch=executor,
            )
            assert executor.kill() == -signal.SIGKILL
        assert fake.deployments == [
            {"agent": "airline", "version": "v1", "action_id": action_id, "idempotency_key": key}
        ]
        executing = read_action(engine, action_id)
        assert executing.status == ActionStatus.executing
        assert executing.execution_started_at is not None
        assert store_live(engine) == "v2"

        with HttpDeployer(url) as deployer:
            # A young execution may still be running somewhere: the sweeper leaves it alone.
            early = sweep(engine, deployer=deployer, deploy_timeout_s=600)
            assert early.reconciled == {} and early.unsettled == {}
            assert read_action(engine, action_id).status == ActionStatus.executing

            if rollout_completed:
                finish_rollout(fake, "airline")
            late = executing.execution_started_at + timedelta(seconds=601)
            report = sweep(engine, deployer=deployer, deploy_timeout_s=600, now=late)
            expected = ActionStatus.succeeded if rollout_completed else ActionStatus.failed
            assert report.reconciled == {action_id: expected.value}
            assert not sweep(engine, deployer=deployer, deploy_timeout_s=600, now=late).changed

        settled = read_action(engine, action_id)
        assert settled.status == expected
        assert settled.outcome_detail is not None
        assert "outlived its deploy timeout" in settled.outcome_detail
        assert fake.posts == 1  # the sweeper asked what is live; it never deployed again
        if rollout_completed:
            assert fake.serving["airline"] == store_live(engine) == "v1"
        else:
            assert "the deployer serves v2" in settled.outcome_detail
            assert fake.serving["airline"] == store_live(engine) == "v2"
        kinds = event_kinds(engine, action_id)
        assert kinds.count("action.executed") == 1
        assert kinds[-2:] == ["action.executing", "action.executed"]
        assert chain_problems(engine) == []

        if not rollout_completed:
            # The rollout finishes after all: the next sweep makes the store follow it.
            finish_rollout(fake, "airline")
            with HttpDeployer(url) as deployer:
                followed = sweep(engine, deployer=deployer, deploy_timeout_s=600)
            assert followed.followed == {"airline": "v1"}
            assert store_live(engine) == "v1"
            with Session(engine) as session:
                [late_event] = [
                    e for e in iter_events(session, kind_prefix="version.live")
                    if e.actor == "sweeper"
                ]
                assert late_event.payload["version"] == "v1"

        roll_back_again(engine, url, fake)  # v1 -> v0 after a (late) success
    assert chain_problems(engine) == []


def test_an_approval_no_gate_ran_is_executed_by_the_sweeper(engine: Engine) -> None:
    with Session(engine) as session:
        degraded_fleet(session)
        session.commit()
    action_id = propose(engine)
    approve(engine, action_id)
    decided_at = read_action(engine, action_id).decided_at
    assert decided_at is not None
    fake = FakeDeployer(serving={"airline": "v2"}, settle_checks=1)
    with serve(fake.app) as url, HttpDeployer(url) as deployer:
        soon = sweep(
            engine,
            deployer=deployer,
            deploy_timeout_s=600,
            run_approved_after_s=300,
            now=decided_at + timedelta(seconds=10),
        )
        assert soon.executed == {} and soon.approved_not_run == [action_id]
        later = sweep(
            engine,
            deployer=deployer,
            deploy_timeout_s=600,
            run_approved_after_s=300,
            now=decided_at + timedelta(seconds=301),
        )
    assert later.executed == {action_id: "succeeded"}
    assert fake.posts == 1 and fake.serving["airline"] == store_live(engine) == "v1"
    executing = [
        e for e in iter_events_of(engine, action_id) if e.kind == "action.executing"
    ]
    assert [e.actor for e in executing] == ["sweeper"]


def iter_events_of(engine: Engine, action_id: int) -> list[AuditEvent]:
    """Every audit event about one action, in chain order."""
    with Session(engine) as session:
        return list(iter_events(session, entity=f"action:{action_id}"))


# --- 3. the target goes live but unhealthy ----------------------------------------------


def test_unhealthy_target_is_reverted_and_recorded(engine: Engine) -> None:
    with Session(engine) as session:
        degraded_fleet(session)
        session.commit()
    action_id = propose(engine)
    approve(engine, action_id)
    key = read_action(engine, action_id).idempotency_key
    fake = FakeDeployer(serving={"airline": "v2"}, settle_checks=2)
    fake.unhealthy = {"v1"}
    with serve(fake.app) as url, HttpDeployer(url) as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=2
        )

    assert action.status == ActionStatus.failed
    assert action.outcome_detail is not None
    assert "v1 went live but unhealthy" in action.outcome_detail
    assert "reverted to v2" in action.outcome_detail
    assert [(d["version"], d["idempotency_key"]) for d in fake.deployments] == [
        ("v1", key),
        ("v2", f"{key}-revert"),
    ]
    assert fake.serving["airline"] == store_live(engine) == "v2"
    kinds = event_kinds(engine, action_id)
    assert kinds[-3:] == ["action.executing", "action.reverting", "action.executed"]
    with Session(engine) as session:
        [reverting] = list(iter_events(session, kind_prefix="action.reverting"))
        assert reverting.payload["unhealthy_version"] == "v1"
        assert reverting.payload["restoring"] == "v2"
    assert chain_problems(engine) == []


# --- 4. a forged approval is refused ----------------------------------------------------


@pytest.mark.parametrize("forge_approval_row", [False, True], ids=["status-only", "with-row"])
def test_forged_approval_is_refused_flagged_and_audited(
    engine: Engine, forge_approval_row: bool
) -> None:
    with Session(engine) as session:
        degraded_fleet(session)
        session.commit()
    action_id = propose(engine)
    with Session(engine) as session:
        # Behind the services' back: no decision event is written for either forgery.
        session.execute(
            text("UPDATE action SET status = 'approved' WHERE id = :id"), {"id": action_id}
        )
        if forge_approval_row:
            owner = as_person(session, OWNER)
            assert owner.person_id is not None
            session.add(
                Approval(
                    action_id=action_id,
                    approver_id=owner.person_id,
                    decision=Decision.approve,
                    channel="cli",
                )
            )
        session.commit()
    fake = FakeDeployer(serving={"airline": "v2"})
    with serve(fake.app) as url:
        result = CliRunner().invoke(
            app, ["actions", "run", str(action_id), "--deployer-url", url], env={"COLUMNS": "200"}
        )

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: action #{action_id} was not executed: ")
    assert line.endswith("it is flagged and closed")
    missing = "decision event is missing" if forge_approval_row else "no approval is recorded"
    assert missing in line
    assert fake.posts == 0
    refused = read_action(engine, action_id)
    assert refused.status == ActionStatus.failed
    assert refused.flag is not None and missing in refused.flag
    assert refused.execution_started_at is None
    kinds = event_kinds(engine, action_id)
    assert kinds.count("action.execution_refused") == 1
    assert "action.executing" not in kinds
    assert store_live(engine) == fake.serving["airline"] == "v2"
    assert chain_problems(engine) == []
    propose(engine)  # the flagged action does not block the next proposal


# --- 5. several sweepers at once ---------------------------------------------------------


def test_parallel_sweepers_step_each_action_exactly_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    names = [f"agent-{n}" for n in range(10)]
    with Session(engine) as session:
        for name in names:
            agent = agent_named(session, name)
            good = ensure_version(session, agent=agent, version="v1", actor="test")
            set_live(session, agent=agent, version=good, actor="test")
            mark_known_good(session, agent=agent, version=good, actor="test")
            bad = ensure_version(session, agent=agent, version="v2", actor="test")
            set_live(session, agent=agent, version=bad, actor="test")
        session.commit()
    past_due, escalate_only = [], []
    for n, name in enumerate(names):
        action_id = propose(engine, name)
        # Opened an hour ago (both deadlines passed) or 90 s ago (only the owner's passed).
        ago = timedelta(hours=1) if n % 3 else timedelta(seconds=90)
        with Session(engine) as session:
            open_approval(
                session,
                action_id=action_id,
                flow_run_id=None,
                owner_timeout_s=60,
                backup_timeout_s=60,
                now=utcnow() - ago,
            )
            session.commit()
        (past_due if n % 3 else escalate_only).append(action_id)

    env = child_env(database_url)
    go = tmp_path / "go"
    with ExitStack() as stack:
        sweepers = [
            stack.enter_context(
                child(
                    [sys.executable, "-c", SWEEP_ON_GO, str(tmp_path / f"ready-{n}"), str(go)],
                    env=env,
                    workdir=tmp_path,
                    name=f"sweep-{n}",
                )
            )
            for n in range(3)
        ]
        for n, sweeper in enumerate(sweepers):
            ready = tmp_path / f"ready-{n}"
            wait_for(ready.exists, what=f"sweeper {n} to start", timeout=30, watch=sweeper)
        go.touch()
        for sweeper in sweepers:
            assert sweeper.process.wait(timeout=60) == 0, sweeper.logs()
        outputs = [sweeper.out.read_text() for sweeper in sweepers]

    reported: dict[str, list[int]] = {"escalated": [], "expired": []}
    for output in outputs:
        for line in output.splitlines():
            label, _, ids = line.partition(": ")
            if label in reported:
                reported[label] += [int(n) for n in re.findall(r"action (\d+)", ids)]
    assert sorted(reported["escalated"]) == sorted(past_due + escalate_only), outputs
    assert sorted(reported["expired"]) == past_due, outputs
    for action_id in past_due + escalate_only:
        kinds = event_kinds(engine, action_id)
        assert kinds.count("approval.escalated") == 1, (action_id, kinds)
        assert kinds.count("action.expired") == (1 if action_id in past_due else 0)
        expected = ActionStatus.expired if action_id in past_due else ActionStatus.escalated
        assert read_action(engine, action_id).status == expected
    assert chain_problems(engine) == []


# --- 7. an import killed between chunks ----------------------------------------------------


def stored_conversations(engine: Engine) -> tuple[int, int]:
    """(rows, distinct external ids) in the conversation table right now."""
    with Session(engine) as session:
        rows = session.exec(select(func.count()).select_from(Conversation)).one()
        ids = session.exec(select(func.count(func.distinct(Conversation.external_id)))).one()
        return rows, ids


def test_an_import_killed_mid_way_resumes_and_stores_every_record_once(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine) as session:
        agent_named(session)
        session.commit()
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(chat_record(f"c-{n}")) + "\n" for n in range(400)))

    with child(
        [sys.executable, "-c", IMPORT_SLOWLY, str(path)],
        env=child_env(database_url),
        workdir=tmp_path,
        name="import",
    ) as importer:
        wait_for(
            lambda: stored_conversations(engine)[0] >= 100,
            what="two chunks to be committed",
            timeout=60,
            watch=importer,
        )
        importer.kill()
    before, _ = stored_conversations(engine)
    assert before % 50 == 0 and 100 <= before < 400  # whole chunks only
    with Session(engine) as session:
        killed = [e.payload for e in iter_events(session, kind_prefix="conversations.imported")]
    # Every committed chunk has its event, written in the same transaction; none says done.
    assert [e["imported"] for e in killed] == [50] * (before // 50)
    assert not any(e["complete"] for e in killed)

    monkeypatch.setattr(service, "CHUNK_RECORDS", 50)
    result = CliRunner().invoke(app, ["import", str(path), "--agent", "airline", "--version", "v1"])
    assert result.exit_code == 0, result.output
    assert f"{400 - before} imported" in result.output
    assert f"{before} already stored" in result.output
    assert stored_conversations(engine) == (400, 400)
    with Session(engine) as session:
        events = [e.payload for e in iter_events(session, kind_prefix="conversations.imported")]
    resumed = events[len(killed) :]
    assert sum(e["imported"] for e in events) == 400  # the trail covers every stored row
    assert sum(e["duplicates"] for e in resumed) == before
    assert [e["complete"] for e in resumed] == [False] * (len(resumed) - 1) + [True]
    assert resumed[-1]["total"]["imported"] == 400 - before
    assert chain_problems(engine) == []
