"""The production path end to end: a real Prefect server on PostgreSQL, deployments from
deployments/prefect.yaml, one process worker that is killed and restarted while the
approval gate is suspended, and an owner who approves through the CLI.

Run with `make test-integration` (about a minute); `.ci/run` runs it after `make test`.
"""

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.audit.service import iter_events, verify_chain
from agentops.store.db import make_engine
from agentops.store.migrate import upgrade
from agentops.store.models import Action, ActionStatus
from factories import FakeDeployer, serve
from prefect_stack import BIN, PrefectStack, seed_degraded_agent

pytestmark = pytest.mark.integration

AGENT, OWNER, BACKUP = "airline-assistant", "owner@x.io", "backup@x.io"
EVALUATE = "evaluate-triggers/airline-assistant-quarter-hourly"


def the_action(engine: Engine) -> Action | None:
    with Session(engine) as session:
        return session.exec(select(Action)).first()


def flow_run(api_url: str, run_id: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(run_id))


def gate_task_states(api_url: str, run_id: str) -> list[str]:
    """The state names of the gate's request-approval task runs, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
        )
    return [run.state.name for run in runs if run.name.startswith("request-approval") and run.state]


def run_evaluation(api_url: str) -> str:
    """Start the evaluate-triggers deployment the way its schedule would."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        started = run_deployment(name=EVALUATE, timeout=0)
    return str(started.id)


def test_breach_rollback_survives_a_worker_restart_while_suspended(tmp_path: Path) -> None:
    fake = FakeDeployer(serving={AGENT: "v2"}, settle_checks=2)
    with serve(fake.app) as deployer_url, PrefectStack(workdir=tmp_path) as stack:
        engine = make_engine(stack.store_url)
        try:
            upgrade(engine)
            seed_degraded_agent(engine, agent=AGENT, owner=OWNER, backup=BACKUP)
            deployed = stack.deploy()
            assert "rollback-agent/on-demand" in deployed
            worker_env = {
                "AGENTOPS_DEPLOYER_URL": deployer_url,
                "AGENTOPS_HEALTH_TIMEOUT_S": "30",
            }
            worker = stack.start_worker(**worker_env)

            run_evaluation(stack.api_url)

            def suspended() -> bool:
                action = the_action(engine)
                if action is None or action.status != ActionStatus.awaiting_approval:
                    return False
                assert action.flow_run_id is not None
                state = flow_run(stack.api_url, action.flow_run_id).state
                return state is not None and state.name == "Suspended"

            stack.wait_for(suspended, what="the gate to suspend", timeout=90, watch=worker)
            action = the_action(engine)
            assert action is not None and action.flow_run_id is not None
            run_id, action_id = action.flow_run_id, action.id

            # The suspended run holds no process: kill the worker outright, start a new one.
            worker.kill()
            stack.start_worker(**worker_env)
            assert flow_run(stack.api_url, run_id).state.name == "Suspended"

            shown = stack.run([str(BIN / "agentops"), "actions", "show", str(action_id)])
            assert f"flow run: {run_id}" in shown and f"/runs/flow-run/{run_id}" in shown
            approved = stack.run([str(BIN / "agentops"), "approve", str(action_id), "--as", OWNER])
            assert "has been resumed" in approved, approved

            def finished() -> bool:
                state = flow_run(stack.api_url, run_id).state
                return state is not None and state.is_final()

            stack.wait_for(finished, what="the resumed rollback to finish", timeout=90)
            assert flow_run(stack.api_url, run_id).state.is_completed()

            done = the_action(engine)
            assert done is not None and done.status == ActionStatus.succeeded
            assert "serving v1 and healthy" in (done.outcome_detail or "")
            assert fake.posts == 1 and fake.serving[AGENT] == "v1"
            # Opened once, then cached when the resumed run started again from the top.
            assert gate_task_states(stack.api_url, run_id) == ["Completed", "Cached"]
            with Session(engine) as session:
                assert verify_chain(session) == []
                kinds = [e.kind for e in iter_events(session, entity=f"action:{action_id}")]
            assert kinds.count("approval.requested") == 1 and kinds[-1] == "action.executed"
        finally:
            engine.dispose()
