"""The sweep flow sends the Slack outbox while `agentops serve` is down, under its own actor."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.actions.service import open_approval
from agentops.audit.checkpoints import Checkpoint
from agentops.demo.fake_slack import FAKE_SIGNING_SECRET, FakeSlack
from agentops.flows.sweep_actions import sweep_actions
from agentops.settings import get_settings
from agentops.store.db import write_session
from agentops.store.models import AuditEvent, Heartbeat
from factories import BACKUP, OPS, OWNER, breach_rollback, degraded_fleet

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

USERS = {OWNER: "UOWNER", BACKUP: "UBACKUP", OPS: "UOPS"}
AGENT_CHANNEL = "CAIRLINE"


@pytest.fixture
def slack(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    with FakeSlack(users=USERS) as fake:
        monkeypatch.setenv("AGENTOPS_SLACK_BOT_TOKEN", fake.token)
        monkeypatch.setenv("AGENTOPS_SLACK_SIGNING_SECRET", FAKE_SIGNING_SECRET)
        monkeypatch.setenv("AGENTOPS_SLACK_API_URL", fake.api_url)
        monkeypatch.setenv("AGENTOPS_SLACK_AGENT_CHANNELS", json.dumps({"airline": AGENT_CHANNEL}))
        get_settings.cache_clear()
        yield fake
    get_settings.cache_clear()


def test_sweep_flow_sends_slack_and_escalates_as_itself(engine: Engine, slack: FakeSlack) -> None:
    first = sweep_actions()  # no serve process anywhere: the flow starts the outbox
    assert first["slack_sent"] == 0
    with write_session(engine) as session:
        action = breach_rollback(session, degraded_fleet(session))
        action_id = action.id
        assert action_id is not None
        open_approval(
            session, action_id=action_id, flow_run_id=None, owner_timeout_s=1, backup_timeout_s=600
        )
    time.sleep(1.2)  # past the owner's deadline
    summary = sweep_actions()
    assert summary["escalated"] == [action_id]
    assert summary["slack_sent"] >= 2  # the request, then its escalation
    assert slack.messages_in(AGENT_CHANNEL), "the agent channel heard of the request"
    assert slack.messages_in(slack.dm_channel("UBACKUP")), "the backup was asked"
    with Session(engine) as session:
        escalated = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "approval.escalated")
        ).one()
        assert escalated.actor == "flow:sweep-actions"  # not the serve sweeper's name
        assert session.get(Heartbeat, "flow:sweep-actions") is not None
    assert sweep_actions()["slack_sent"] == 0  # nothing sent twice


def test_post_checkpoint_goes_to_the_configured_slack(slack: FakeSlack, tmp_path: Path) -> None:
    from agentops.adapters.slack_audit import post_checkpoint

    checkpoint = Checkpoint(
        body={"chain_head": "ab" * 32, "tree_size": 3}, signature="c2ln", path=tmp_path / "x"
    )
    post_checkpoint(checkpoint, token=slack.token, channel="CAUDIT")
    [posted] = slack.messages_in("CAUDIT")
    assert "ab" * 32 in posted.text
