"""Benchmark: orchestration latencies of the production path against a real Prefect server.

Run with `make bench-production` (needs PostgreSQL at 127.0.0.1:5432, like `make test`).
It starts the same loopback stack as the integration test (a Prefect server on a scratch
PostgreSQL database, the deployments from deployments/prefect.yaml, one process worker)
and prints:
1. server start and `prefect deploy --all` times;
2. schedule-to-start: runs of the sweep deployment scheduled a few seconds ahead (spaced
   apart; a run its concurrency limit of 1 held back behind the every-minute sweep is
   left out, so `n` can be smaller than asked), from their scheduled time to the
   worker's submission (Pending) and to the flow running (Running);
3. breach to approval request, per rollback: from the breach's `action.proposed` to the
   gate's `approval.requested`, split into the gate run's process start (worker
   submission to Running) and everything else (orchestration overhead);
4. decision to resume for a suspended gate: from `approval.decided` (the CLI approval) to
   the worker's submission of the resumed run, to it Running again (a new process), and
   to the deploy starting (`action.executing`).
Every process it starts is killed and the scratch databases are dropped at the end.
"""

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sqlmodel import Session, select

from agentops.audit.service import iter_events
from agentops.store.db import make_engine
from agentops.store.migrate import upgrade
from agentops.store.models import Action, ActionStatus, Agent
from factories import FakeDeployer, serve
from prefect_stack import BIN, PrefectStack, seed_degraded_agent

OWNER, BACKUP = "owner@x.io", "backup@x.io"
EVALUATE = "evaluate-triggers/airline-assistant-quarter-hourly"
SWEEP = "sweep-actions/every-minute"
# A sweep run takes about 10 s with its process start; its deployment runs one at a time.
SPACING_S = 20


def main() -> None:
    """Start the stack, measure, print the tables, clean up."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollbacks", type=int, default=3, help="breach-to-rollback rounds")
    parser.add_argument("--scheduled", type=int, default=4, help="scheduled runs to time")
    args = parser.parse_args()
    console = Console()
    agents = [f"agent-{n}" for n in range(1, args.rollbacks + 1)]
    fake = FakeDeployer(serving=dict.fromkeys(agents, "v2"), settle_checks=1)
    with (
        tempfile.TemporaryDirectory(prefix="agentops-bench-") as workdir,
        serve(fake.app) as deployer_url,
        PrefectStack(workdir=Path(workdir)) as stack,
    ):
        engine = make_engine(stack.store_url)
        upgrade(engine)
        for agent in agents:
            seed_degraded_agent(engine, agent=agent, owner=OWNER, backup=BACKUP)
        started = time.monotonic()
        stack.deploy()
        deploy_s = time.monotonic() - started
        stack.start_worker(AGENTOPS_DEPLOYER_URL=deployer_url)
        console.print(
            f"Prefect server on PostgreSQL started in {stack.server_start_s:.1f} s; "
            f"`prefect deploy --all` took {deploy_s:.1f} s"
        )
        schedule_lags = schedule_to_start(stack, count=args.scheduled)
        rounds = [rollback_round(stack, engine, agent) for agent in agents]
        engine.dispose()
    print_tables(console, schedule_lags, rounds)


def client_for(stack: PrefectStack) -> Any:
    """A sync Prefect client on the stack's API (settings applied by the caller)."""
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def api(stack: PrefectStack) -> Any:
    """Temporary settings pointing this process's Prefect client at the stack."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings({PREFECT_API_URL: stack.api_url})


def schedule_to_start(stack: PrefectStack, *, count: int) -> list[tuple[float, float]]:
    """(to Pending, to Running) seconds from the scheduled time, for sweep runs."""
    from prefect.states import Scheduled

    with api(stack), client_for(stack) as client:
        deployment = client.read_deployment_by_name(SWEEP)
        now = datetime.now().astimezone()
        run_ids = [
            client.create_flow_run_from_deployment(
                deployment.id,
                state=Scheduled(scheduled_time=now + timedelta(seconds=5 + SPACING_S * n)),
            ).id
            for n in range(count)
        ]
    lags = []
    for run_id in run_ids:
        states = wait_for_states(stack, run_id, until=lambda s: s.is_final(), timeout=120)
        if any(s.name == "AwaitingConcurrencySlot" for s in states):
            continue  # held back behind the minute's own sweep: not a scheduling delay
        scheduled = next(s for s in states if s.is_scheduled())
        pending = next(s for s in states if s.is_pending())
        running = next(s for s in states if s.is_running())
        at = scheduled.state_details.scheduled_time
        assert at is not None
        lags.append(
            ((pending.timestamp - at).total_seconds(), (running.timestamp - at).total_seconds())
        )
    return lags


def rollback_round(stack: PrefectStack, engine: Any, agent: str) -> dict[str, float]:
    """One breach through approval to a verified rollback; the round's latencies."""
    from prefect.deployments import run_deployment

    with api(stack):
        evaluation = run_deployment(
            name=EVALUATE,
            parameters={"agent_name": agent, "rollback_deployment": "rollback-agent/on-demand"},
            timeout=0,
        )
    action = wait_for_action(stack, engine, agent, ActionStatus.awaiting_approval)
    assert action.flow_run_id is not None and action.id is not None
    gate_states = wait_for_states(
        stack, UUID(action.flow_run_id), until=lambda s: s.name == "Suspended", timeout=120
    )
    wait_for_states(stack, evaluation.id, until=lambda s: s.is_final(), timeout=120)
    stack.run([str(BIN / "agentops"), "approve", str(action.id), "--as", OWNER])
    wait_for_action(stack, engine, agent, ActionStatus.succeeded)
    final_states = wait_for_states(
        stack, UUID(action.flow_run_id), until=lambda s: s.is_final(), timeout=120
    )
    events = event_times(engine, action.id)
    breach_to_request = (events["approval.requested"] - events["action.proposed"]).total_seconds()
    # The breach happens inside the evaluation run, so only the gate's process start counts.
    process_start = _process_start(gate_states)
    decided = events["approval.decided"]
    resumed_pending = [s for s in final_states if s.is_pending()][-1]
    resumed = [s for s in final_states if s.is_running()][-1]
    return {
        "breach_to_request": breach_to_request,
        "process_start": process_start,
        "overhead": breach_to_request - process_start,
        "decision_to_pending": (resumed_pending.timestamp - decided).total_seconds(),
        "decision_to_running": (resumed.timestamp - decided).total_seconds(),
        "decision_to_deploy": (
            events["action.executing"] - events["approval.decided"]
        ).total_seconds(),
    }


def _process_start(states: list[Any]) -> float:
    # The worker marks the run Pending when it submits it; the flow's own process marks it
    # Running once Python, Prefect and the flow module are loaded.
    pending = next(s for s in states if s.is_pending())
    running = next(s for s in states if s.is_running())
    return float((running.timestamp - pending.timestamp).total_seconds())


def wait_for_states(stack: PrefectStack, run_id: UUID, *, until: Any, timeout: float) -> list[Any]:
    """The run's state history once its newest state satisfies `until`."""
    found: list[Any] = []

    def reached() -> bool:
        with api(stack), client_for(stack) as client:
            states = sorted(client.read_flow_run_states(run_id), key=lambda s: s.timestamp)
        found[:] = states
        return bool(states) and until(states[-1])

    stack.wait_for(reached, what=f"flow run {run_id}", timeout=timeout, every=0.1)
    return found


def wait_for_action(stack: PrefectStack, engine: Any, agent: str, status: ActionStatus) -> Action:
    """The agent's newest action once it reaches the status."""
    found: list[Action] = []

    def reached() -> bool:
        with Session(engine) as session:
            action = session.exec(
                select(Action).join(Agent).where(Agent.name == agent).order_by(Action.id.desc())  # type: ignore[union-attr]
            ).first()
        found[:] = [action] if action else []
        return action is not None and action.status == status

    stack.wait_for(reached, what=f"{agent}'s action to be {status}", timeout=120, every=0.1)
    return found[0]


def event_times(engine: Any, action_id: int) -> dict[str, datetime]:
    """When each kind of audit event about the action first happened."""
    times: dict[str, datetime] = {}
    with Session(engine) as session:
        for event in iter_events(session, entity=f"action:{action_id}"):
            times.setdefault(event.kind, event.occurred_at)
    return times


def print_tables(
    console: Console, schedule_lags: list[tuple[float, float]], rounds: list[dict[str, float]]
) -> None:
    """Median, min and max of every measure."""
    table = Table("measure (seconds)", "n", "median", "min", "max")

    def row(label: str, values: list[float]) -> None:
        if not values:
            table.add_row(label, "0", "-", "-", "-")
            return
        table.add_row(
            label,
            str(len(values)),
            f"{statistics.median(values):.2f}",
            f"{min(values):.2f}",
            f"{max(values):.2f}",
        )

    row("schedule -> worker submits (Pending)", [lag[0] for lag in schedule_lags])
    row("schedule -> flow Running (incl. process start)", [lag[1] for lag in schedule_lags])
    row("breach -> approval request (total)", [r["breach_to_request"] for r in rounds])
    row("  of which the gate's process start", [r["process_start"] for r in rounds])
    row("  of which orchestration overhead", [r["overhead"] for r in rounds])
    row("decision -> resumed gate submitted (Pending)", [r["decision_to_pending"] for r in rounds])
    row(
        "decision -> resumed gate Running (new process)", [r["decision_to_running"] for r in rounds]
    )
    row("decision -> deploy started", [r["decision_to_deploy"] for r in rounds])
    console.print(table)


if __name__ == "__main__":
    main()
