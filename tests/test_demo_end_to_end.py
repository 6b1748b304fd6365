"""`agentops demo` as a user runs it: a separate process, its own Prefect server, SQLite."""

import os
import socket
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
    ItemStatus,
    Outcome,
    ReviewItem,
)
from agentops.triggers.backtest import backtest
from agentops.triggers.service import latest_trigger_set, load_trigger_set
from waiting import wait_for

pytestmark = pytest.mark.skipif(
    os.environ.get("AGENTOPS_TEST_DATABASE", "sqlite") != "sqlite",
    reason="the demo always runs on SQLite; once per suite run is enough",
)


def test_demo_runs_the_whole_runbook(tmp_path: Path, browser: object) -> None:
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
        left = session.exec(select(ReviewItem).where(ReviewItem.status == ItemStatus.open)).all()
        assert left, "the demo leaves a queue for people to review"

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
    review_the_demo_queue_in_a_browser(tmp_path, env, browser, output)


def review_the_demo_queue_in_a_browser(
    workdir: Path, env: dict[str, str], browser: object, demo_output: str
) -> None:
    """What the summary tells a new user to run: serve, open the printed link, review by keys."""
    printed = next(line for line in demo_output.splitlines() if "serve --sign-in" in line)
    command = printed.split("browser: ", 1)[1].split()
    database = command[0].split("=", 1)[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "agentops"), *command[2:], "--port", str(port)],
        cwd=workdir,
        env={**env, "AGENTOPS_DATABASE_URL": database},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        link = ""
        for line in server.stdout:
            if "/signin?token=" in line:
                link = line.split(": ", 1)[1].strip()
                break
        assert link.startswith(f"http://127.0.0.1:{port}/signin?token="), link
        context = browser.new_context()  # type: ignore[attr-defined]
        page = context.new_page()
        page.set_default_timeout(15_000)

        def signed_in_page() -> bool:
            try:
                page.goto(link)
            except Exception:  # uvicorn binds just after the link is printed
                return False
            return True

        wait_for(signed_in_page, what="the sign-in link to open", timeout=5, every=0.1)
        page.keyboard.press("Enter")  # sign in
        page.wait_for_url("**/review")
        page.keyboard.press("Enter")  # start reviewing
        page.wait_for_selector("#verdict")
        first = page.url
        page.keyboard.press("Enter")  # every criterion passes: submit, open the next
        page.wait_for_url(lambda url: url != first and "notice=reviewed" in url)
        assert "Verdict saved" in page.inner_text("main")
        context.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
