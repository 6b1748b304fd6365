"""`agentops demo` as a user runs it: a separate process, its own Prefect server, SQLite."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from agentops.agents.service import get_agent
from agentops.audit.service import verify_chain
from agentops.store.db import make_engine
from agentops.store.models import (
    Action,
    ActionKind,
    ActionStatus,
    Approval,
    Evaluation,
    Outcome,
)
from agentops.triggers.backtest import backtest
from agentops.triggers.service import latest_trigger_set, load_trigger_set

pytestmark = pytest.mark.skipif(
    os.environ.get("AGENTOPS_TEST_DATABASE", "sqlite") != "sqlite",
    reason="the demo always runs on SQLite; once per suite run is enough",
)


def test_demo_runs_the_whole_runbook(tmp_path: Path) -> None:
    agentops = Path(sys.executable).parent / "agentops"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.pop("AGENTOPS_DATABASE_URL", None)
    env["COLUMNS"] = "160"
    completed = subprocess.run(
        [str(agentops), "demo", "--seed", "3"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Traceback" not in output
    assert "v2 goes live" in output and "BREACH" in output
    assert "action 1: succeeded" in output and "action 2: succeeded" in output
    assert "reviews needed to detect" in output
    assert "Slack DM to olivia.owner@example.com" in output and "[ Approve ]" in output
    assert "pressed Approve in Slack (signed request, HTTP 200)" in output
    assert "Slack thread reply: Rollback done: v1 is live" in output

    engine = make_engine(f"sqlite:///{tmp_path / '.agentops' / 'demo.db'}")
    with Session(engine) as session:
        done = session.exec(select(Action).order_by(Action.id)).all()
        assert [(a.kind, a.status) for a in done[:2]] == [
            (ActionKind.rollback, ActionStatus.succeeded),
            (ActionKind.redeploy, ActionStatus.succeeded),
        ]
        assert {a.channel for a in session.exec(select(Approval))} == {"slack"}
        assert verify_chain(session) == []

        # Replaying the stored history reproduces the breach that really proposed action 1.
        rollback = done[0]
        real = session.get(Evaluation, rollback.evaluation_id)
        assert real is not None and real.outcome == Outcome.breach
        agent = get_agent(session, name="airline-assistant")
        trigger_set = latest_trigger_set(session, agent=agent)
        assert trigger_set is not None
        replays = {
            r.version: r
            for r in backtest(session, agent=agent, triggers=load_trigger_set(trigger_set))
        }
        assert replays["v1"].alarms == []
        v2 = replays["v2"]
        replayed = {alarm.trigger: alarm for alarm in v2.alarms}
        alarm = replayed[real.trigger_name]
        assert (alarm.position, alarm.observation_id) == (
            real.evidence["alarm"]["position"],
            real.evidence["alarm"]["id"],
        )
        assert v2.real is not None and v2.real.action_id == rollback.id
        # The replay fires at the review that crossed, before the hourly evaluation saw it.
        difference = v2.difference(alarm)
        assert difference is not None and difference.total_seconds() <= 0
    engine.dispose()
