"""Benchmark: a Slack click to a recorded decision, and to the deployer receiving the deploy.

Run with `python benchmarks/slack_clicks.py` (`--clicks 200` by default). It registers one
agent per click, each with a breach rollback awaiting its owner, serves the real
`agentops serve` app with a fake Slack and a fake deployer on loopback, has the fake Slack
post every request, then presses Approve on each message, signed as Slack signs it, one
click every `--interval-ms`. It prints p50 and p99 of:
- click-to-decision: the click is sent -> the approval is committed (Approval.decided_at);
- click-to-deploy-start: the click is sent -> the deployer accepted the POST /deployments.
"""

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from agentops.actions.service import open_approval, propose_rollback
from agentops.agents.service import (
    ensure_version,
    mark_known_good,
    register_agent,
    set_live,
)
from agentops.demo.fake_services import FakeServices, LoopbackServer
from agentops.demo.fake_slack import FAKE_SIGNING_SECRET, FakeSlack
from agentops.serve.app import create_app
from agentops.settings import Settings
from agentops.slack import messaging
from agentops.store.db import make_engine, write_session
from agentops.store.migrate import upgrade
from agentops.store.models import Action, ActionStatus, Approval, utcnow

OWNER, BACKUP = "owner@bench.io", "backup@bench.io"
USERS = {OWNER: "UOWNER", BACKUP: "UBACKUP"}


def percentile(values: list[float], p: int) -> float:
    """The p-th percentile (inclusive method), in milliseconds as given."""
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def main() -> None:
    """Set up, click, wait for every deployment, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=100.0)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        run(url, clicks=args.clicks, interval_s=args.interval_ms / 1000)


def run(database_url: str, *, clicks: int, interval_s: float) -> None:
    """Measure `clicks` approvals through the served app."""
    engine = make_engine(database_url)
    upgrade(engine)
    with FakeSlack(users=USERS) as slack, FakeServices(rollout_delay_s=0.0) as services:
        settings = Settings(
            database_url=database_url,
            slack_bot_token=slack.token,
            slack_signing_secret=FAKE_SIGNING_SECRET,
            slack_api_url=slack.api_url,
            deployer_url=services.url,
            health_timeout_s=30,
        )
        app = create_app(settings=settings, engine=engine)
        channel = app.state.slack
        started = time.monotonic()
        action_ids = [_breach(engine, services, n) for n in range(clicks)]
        while channel.pump_once():  # up to 200 rows a round
            pass
        print(
            f"set-up: {clicks} rollbacks posted to the owner in {time.monotonic() - started:.1f} s"
        )
        messages = slack.messages_in(slack.dm_channel(USERS[OWNER]))
        assert len(messages) == clicks, len(messages)
        sent_at: dict[int, datetime] = {}
        with LoopbackServer(app, thread_name="bench-app") as server:
            for message in messages:
                button = message.button(messaging.APPROVE)
                assert button is not None
                sent_at[int(button["value"])] = utcnow()
                answer = slack.click(
                    server.url, user_id=USERS[OWNER], message=message, action_id=messaging.APPROVE
                )
                assert answer.status_code == 200, answer.text
                time.sleep(interval_s)
            _wait_for_executions(engine, action_ids)
        channel.stop()
    with Session(engine) as session:
        decided = {a.action_id: a.decided_at for a in session.exec(select(Approval))}
    deploys = {d.action_id: d.requested_at for d in services.deployments}
    to_decision = [_ms(decided[n] - sent_at[n]) for n in action_ids]
    to_deploy = [_ms(deploys[n] - sent_at[n]) for n in action_ids]
    print(
        f"clicks: {clicks} (one every {interval_s * 1000:.0f} ms), database: {engine.dialect.name}"
    )
    print(
        f"click-to-decision:     p50 {percentile(to_decision, 50):7.1f} ms   "
        f"p99 {percentile(to_decision, 99):7.1f} ms"
    )
    print(
        f"click-to-deploy-start: p50 {percentile(to_deploy, 50):7.1f} ms   "
        f"p99 {percentile(to_deploy, 99):7.1f} ms"
    )
    engine.dispose()


def _breach(engine, services: FakeServices, n: int) -> int:  # type: ignore[no-untyped-def]
    name = f"agent-{n:04d}"
    with write_session(engine) as session:
        agent = register_agent(
            session, name=name, owner_email=OWNER, backup_email=BACKUP, actor="bench"
        )
        good = ensure_version(session, agent=agent, version="v1", actor="bench")
        set_live(session, agent=agent, version=good, actor="bench")
        mark_known_good(session, agent=agent, version=good, actor="bench")
        bad = ensure_version(session, agent=agent, version="v2", actor="bench")
        set_live(session, agent=agent, version=bad, actor="bench")
        action = propose_rollback(
            session, agent=agent, from_version=bad, evaluation=None, actor="bench", reason="bench"
        )
        assert action is not None and action.id is not None
        open_approval(
            session,
            action_id=action.id,
            flow_run_id=None,
            owner_timeout_s=3600,
            backup_timeout_s=3600,
        )
        action_id = action.id
    services.set_live_version(name, "v2")
    return action_id


def _wait_for_executions(engine, action_ids: list[int], timeout_s: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    done = {ActionStatus.succeeded, ActionStatus.failed}
    while time.monotonic() < deadline:
        with Session(engine) as session:
            statuses = session.exec(select(Action.status)).all()
        if len(statuses) == len(action_ids) and all(s in done for s in statuses):
            return
        time.sleep(0.2)
    raise TimeoutError("not every approved rollback finished executing")


def _ms(delta) -> float:  # type: ignore[no-untyped-def]
    return delta.total_seconds() * 1000


if __name__ == "__main__":
    main()
