"""Owners decide in Slack: a fake Slack on loopback, the real app, signed requests over HTTP."""

import copy
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from slack_sdk.signature import Clock
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.actions.service import (
    escalate_if_due,
    get_action,
    open_approval,
    propose_redeploy,
    propose_rollback,
)
from agentops.actions.sweeper import sweep
from agentops.agents.service import ensure_version
from agentops.audit.sealer import wait_until_sealed
from agentops.bootstrap import make_server_waker, make_slack_client
from agentops.demo.fake_slack import FAKE_SIGNING_SECRET, FakeSlack, Posted, signed_form
from agentops.serve.app import create_app
from agentops.settings import Settings
from agentops.slack import messaging
from agentops.slack.outbox import pending
from agentops.slack.service import SlackChannel
from agentops.store.db import write_session
from agentops.store.models import (
    Action,
    ActionStatus,
    Approval,
    AuditEvent,
    Evaluation,
    Outcome,
    TriggerSet,
    utcnow,
)
from factories import BACKUP, OPS, OWNER, FakeDeployer, as_person, degraded_fleet, serve
from waiting import wait_for

USERS = {OWNER: "UOWNER", BACKUP: "UBACKUP", OPS: "UOPS"}
AGENT_CHANNEL = "CAIRLINE"


@dataclass
class World:
    """The store, the fake Slack and deployer, and the served app's URL."""

    engine: Engine
    slack: FakeSlack
    deployer: FakeDeployer
    url: str
    channel: SlackChannel

    def pump(self) -> None:
        self.channel.pump_once()

    def action(self, action_id: int) -> Action:
        with Session(self.engine) as session:
            return get_action(session, action_id=action_id)

    def dm(self, email: str) -> Posted:
        messages = self.slack.messages_in(self.slack.dm_channel(USERS[email]))
        assert len(messages) == 1, messages
        return messages[0]

    def all_requests(self) -> list[Posted]:
        return [m for m in self.slack.messages.values() if not m.thread_ts]

    def trail_of(self, action_id: int) -> list[AuditEvent]:
        wait_until_sealed(self.engine)
        with Session(self.engine) as session:
            query = select(AuditEvent).where(AuditEvent.entity_id == str(action_id))
            return list(session.exec(query.where(AuditEvent.entity_type == "action")))

    def events(self, kind: str) -> list[AuditEvent]:
        assert wait_until_sealed(self.engine)  # the server's background sealer (PostgreSQL)
        with Session(self.engine) as session:
            return list(session.exec(select(AuditEvent).where(AuditEvent.kind == kind)))


FINAL = {ActionStatus.succeeded, ActionStatus.failed, ActionStatus.rejected, ActionStatus.expired}


def settled(world: World, action_id: int, timeout: float = 30.0) -> ActionStatus:
    """The action's final status; the wait outlasts a deploy plus its 10 s health window."""

    def final() -> ActionStatus | None:
        status = world.action(action_id).status
        return status if status in FINAL else None

    def trail() -> str:
        kinds = [e.kind for e in world.trail_of(action_id)]
        return f"action #{action_id} is still {world.action(action_id).status}: {kinds}"

    return wait_for(
        final,
        what=f"action #{action_id} to settle",
        timeout=timeout,
        every=0.02,
        details=trail,
    )


def wait_until(check: Callable[[], Any], *, what: str) -> Any:
    """What the check returns once it is truthy (Slack answers after the request returns)."""
    return wait_for(check, what=what, timeout=10.0, every=0.02)


def slack_settings(engine: Engine, slack: FakeSlack, deployer_url: str) -> Settings:
    return Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        slack_bot_token=slack.token,
        slack_signing_secret=FAKE_SIGNING_SECRET,
        slack_api_url=slack.api_url,
        slack_agent_channels={"airline": AGENT_CHANNEL},
        deployer_url=deployer_url,
        health_timeout_s=10,
    )


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    deployer = FakeDeployer(serving={"airline": "v2"}, settle_checks=1)
    with FakeSlack(users=USERS) as slack, serve(deployer.app) as deployer_url:
        app = create_app(settings=slack_settings(engine, slack, deployer_url), engine=engine)
        with serve(app) as url:
            yield World(engine, slack, deployer, url, app.state.slack)
        app.state.slack.stop()


def breach_rollback(engine: Engine, *, owner_timeout_s: int = 600) -> int:
    """A rollback proposed by a policy breach, with its approval window open."""
    with write_session(engine) as session:
        fleet = degraded_fleet(session)
        trigger_set = TriggerSet(
            agent_id=fleet.agent.id, version=3, content="{}", content_sha256="x", source="t"
        )
        session.add(trigger_set)
        session.flush()
        evaluation = Evaluation(
            agent_version_id=fleet.bad.id,  # type: ignore[arg-type]
            trigger_set_id=trigger_set.id,  # type: ignore[arg-type]
            trigger_name="policy-adherence",
            kind="policy_adherence",
            outcome=Outcome.breach,
            statistic=3.1,
            threshold=2.9,
            evidence={
                "summary": "3 of 5 reviewed conversations broke policy",
                "reviews_total": 5,
                "violations": 3,
                "lower_bound": -2.2,
                "upper_bound": 2.9,
                "llr": 3.1,
                "review_ids": [11, 12, 13, 14, 15],
                "review_ids_total": 9,
                "conversation_ids": [101, 102],
                "unexpected": {"shape": "ignored"},
            },
        )
        session.add(evaluation)
        session.flush()
        action = propose_rollback(
            session,
            agent=fleet.agent,
            from_version=fleet.bad,
            evaluation=evaluation,
            actor="test",
            reason="policy adherence breached",
        )
        assert action is not None
        open_approval(
            session,
            action_id=action.id,  # type: ignore[arg-type]
            flow_run_id=None,
            owner_timeout_s=owner_timeout_s,
            backup_timeout_s=600,
        )
        return action.id  # type: ignore[return-value]


def test_slack_documented_example_signature_verifies(engine: Engine) -> None:
    # Slack's "Verifying requests from Slack" example: secret, timestamp, body, signature.
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    timestamp = 1531420618
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

    class Then(Clock):
        def now(self) -> float:
            return float(timestamp)

    settings = Settings(slack_bot_token="xoxb-x", slack_signing_secret=secret)
    parts = {
        "client": make_slack_client(settings),
        "waker": make_server_waker(engine, settings=settings),
    }
    channel = SlackChannel(engine=engine, settings=settings, clock=Then(), **parts)
    headers = {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}
    assert channel.verified(body, headers)
    assert not channel.verified(body + b"x", headers)
    assert not channel.verified(body, {**headers, "X-Slack-Request-Timestamp": "soon"})
    stale = SlackChannel(engine=engine, settings=settings, **parts)  # today's clock: years late
    assert not stale.verified(body, headers)


def test_url_verification_challenge_and_health(world: World) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
    now = int(time.time())
    from agentops.demo.fake_slack import sign

    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": str(now),
        "X-Slack-Signature": sign(FAKE_SIGNING_SECRET, now, body),
    }
    answer = httpx.post(f"{world.url}/slack/events", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json() == {"challenge": "c-123"}
    assert httpx.post(f"{world.url}/slack/events", content=body).status_code == 401
    assert httpx.get(f"{world.url}/healthz").json()["ok"] is True


def test_breach_rollback_approved_in_one_click(world: World) -> None:
    action_id = breach_rollback(world.engine)
    world.pump()
    owner_dm = world.dm(OWNER)
    text = messaging.as_text(owner_dm.blocks)
    for expected in (
        "Rollback of airline: v2 → v1",
        "policy-adherence (policy_adherence, trigger set v3)",
        "statistic 3.1 against threshold 2.9",
        "reviews 5",
        "test bounds [-2.2, 2.9]",
        "reviews: #11, #12, #13, #14, #15 (of 9)",
        "conversations: #101, #102",
        "*Proposed by:* flow:evaluate-triggers",
        "[ Approve ]  [ Reject ]",
        "Waiting for <@UOWNER>",
    ):
        assert expected in text, expected
    assert owner_dm.text.startswith("Rollback of airline")  # the plain-text fallback
    assert owner_dm.button(messaging.APPROVE)["confirm"]["confirm"]["text"] == "Approve"
    (in_channel,) = world.slack.messages_in(AGENT_CHANNEL)
    assert in_channel.button(messaging.APPROVE) is not None

    started = time.monotonic()
    answer = world.slack.click(
        world.url, user_id="UOWNER", message=owner_dm, action_id=messaging.APPROVE
    )
    assert answer.status_code == 200 and time.monotonic() - started < 3
    assert settled(world, action_id) == ActionStatus.succeeded
    world.pump()
    assert len(world.deployer.deployments) == 1
    for message in (world.dm(OWNER), in_channel):
        assert message.button(messaging.APPROVE) is None
        shown = messaging.as_text(message.blocks)
        assert "Approved by <@UOWNER> at" in shown and "v1 is live" in shown
        assert len(message.replies) == 1 and "Rollback done: v1 is live" in message.replies[0]
    (decided,) = world.events("approval.decided")
    assert decided.payload["channel"] == "slack" and decided.actor == OWNER
    assert decided.payload["approver_id"] is not None
    assert pending(world.engine) == 0


def test_reject_asks_for_a_reason_in_a_modal(world: World) -> None:
    action_id = breach_rollback(world.engine)
    world.pump()
    owner_dm = world.dm(OWNER)
    world.slack.click(world.url, user_id="UOWNER", message=owner_dm, action_id=messaging.REJECT)
    view = wait_until(lambda: world.slack.views, what="the modal")[0]["view"]
    assert view["callback_id"] == messaging.REJECT_MODAL
    assert world.action(action_id).status == ActionStatus.awaiting_approval
    empty = world.slack.submit_reason(world.url, user_id="UOWNER", reason="   ")
    assert empty.json()["response_action"] == "errors"
    assert world.action(action_id).status == ActionStatus.awaiting_approval
    world.slack.submit_reason(world.url, user_id="UOWNER", reason="v2 fix ships in 10 min <!here>")
    assert settled(world, action_id) == ActionStatus.rejected
    world.pump()
    shown = messaging.as_text(world.dm(OWNER).blocks)
    assert "Rejected by <@UOWNER>" in shown and "&lt;!here&gt;" in shown
    assert world.dm(OWNER).button(messaging.REJECT) is None
    assert world.deployer.deployments == []


def test_dead_gate_escalates_to_backup_then_expires(world: World) -> None:
    action_id = breach_rollback(world.engine, owner_timeout_s=60)
    with write_session(world.engine) as session:
        action = session.get(Action, action_id)
        assert action is not None
        action.flow_run_id = "a-gate-run-that-was-killed"
    world.pump()
    owner_deadline = world.action(action_id).owner_deadline
    assert owner_deadline is not None
    report = sweep(world.engine, deployer=None, deploy_timeout_s=600, now=owner_deadline)
    assert report.escalated == [action_id]
    world.pump()
    backup_dm = world.dm(BACKUP)
    assert backup_dm.button(messaging.APPROVE) is not None
    as_seen_before_expiry = copy.deepcopy(backup_dm)  # a click may race the update
    assert "Escalated to <@UBACKUP>" in messaging.as_text(world.dm(OWNER).blocks)
    final = world.action(action_id).final_deadline
    assert final is not None
    assert sweep(world.engine, deployer=None, deploy_timeout_s=600, now=final).expired == [
        action_id
    ]
    world.pump()
    requests = world.all_requests()
    assert len(requests) == 3  # owner DM, agent channel, backup DM
    for message in requests:
        assert "Expired: nobody decided" in messaging.as_text(message.blocks)
        assert message.button(messaging.APPROVE) is None
    world.slack.click(
        world.url, user_id="UBACKUP", message=as_seen_before_expiry, action_id=messaging.APPROVE
    )
    said = wait_until(lambda: world.slack.ephemerals_for("UBACKUP"), what="a reply to the backup")
    assert "approval window has expired" in said[0]
    assert world.action(action_id).status == ActionStatus.expired


def test_refused_clicks_change_nothing_and_are_answered(world: World) -> None:
    action_id = breach_rollback(world.engine)
    world.pump()
    owner_dm = world.dm(OWNER)
    bad = world.slack.click(
        world.url, user_id="UOWNER", message=owner_dm, action_id=messaging.APPROVE, secret="wrong"
    )
    stale = world.slack.click(
        world.url,
        user_id="UOWNER",
        message=owner_dm,
        action_id=messaging.APPROVE,
        timestamp=int(time.time()) - 6 * 60,
    )
    assert bad.status_code == 401 and stale.status_code == 401
    world.slack.click(world.url, user_id="USTRANGER", message=owner_dm, action_id=messaging.APPROVE)
    said = wait_until(lambda: world.slack.ephemerals_for("USTRANGER"), what="the stranger's reply")
    assert "not linked to a person registered" in said[0]
    world.slack.click(world.url, user_id="UBACKUP", message=owner_dm, action_id=messaging.APPROVE)
    said = wait_until(lambda: world.slack.ephemerals_for("UBACKUP"), what="a reply to the backup")
    assert "only after escalation" in said[0]
    refused = world.events("approval.refused")
    assert [e.actor for e in refused] == ["slack:USTRANGER", BACKUP]
    assert all(e.payload["channel"] == "slack" for e in refused)
    assert world.action(action_id).status == ActionStatus.awaiting_approval
    assert world.events("approval.decided") == []


def test_proposer_cannot_approve_their_own_redeploy(world: World) -> None:
    with write_session(world.engine) as session:
        fleet = degraded_fleet(session)
        v3 = ensure_version(session, agent=fleet.agent, version="v3", actor="test")
        action = propose_redeploy(
            session, agent=fleet.agent, version=v3, actor=as_person(session, OWNER), reason="fix"
        )
        open_approval(
            session,
            action_id=action.id,  # type: ignore[arg-type]
            flow_run_id=None,
            owner_timeout_s=60,
            backup_timeout_s=60,
        )
        action_id = action.id
    world.pump()
    backup_dm = world.dm(BACKUP)  # the owner proposed it, so the backup is asked first
    in_channel = world.slack.messages_in(AGENT_CHANNEL)[0]
    world.slack.click(world.url, user_id="UOWNER", message=in_channel, action_id=messaging.APPROVE)
    said = wait_until(lambda: world.slack.ephemerals_for("UOWNER"), what="a reply to the owner")
    assert "you proposed this action" in said[0]
    assert world.action(action_id).status == ActionStatus.awaiting_approval  # type: ignore[arg-type]
    assert backup_dm.button(messaging.APPROVE) is not None


def test_twenty_concurrent_clicks_make_one_decision(world: World) -> None:
    action_id = breach_rollback(world.engine)
    with write_session(world.engine) as session:
        action = session.get(Action, action_id)
        assert escalate_if_due(session, action_id=action_id, now=action.owner_deadline)  # type: ignore[union-attr]
    world.pump()
    owner_dm, backup_dm = world.dm(OWNER), world.dm(BACKUP)
    clicks = [("UOWNER", owner_dm), ("UBACKUP", backup_dm)] * 10
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(
            pool.map(
                lambda click: world.slack.click(
                    world.url, user_id=click[0], message=click[1], action_id=messaging.APPROVE
                ),
                clicks,
            )
        )
    assert [a.status_code for a in answers] == [200] * 20
    assert settled(world, action_id) == ActionStatus.succeeded
    wait_until(lambda: len(world.slack.ephemerals) == 19, what="19 replies")
    assert len(world.events("approval.decided")) == 1
    assert len(world.deployer.deployments) == 1
    with Session(world.engine) as session:
        (approval,) = session.exec(select(Approval).where(Approval.action_id == action_id)).all()
    assert all("was already approved by" in e["text"] for e in world.slack.ephemerals)
    assert approval.channel == "slack"


def test_slack_outage_delays_messages_but_never_a_decision(world: World) -> None:
    from typer.testing import CliRunner

    from agentops.cli.app import app as cli

    action_id = breach_rollback(world.engine)
    world.slack.down = True
    world.pump()
    assert pending(world.engine) == 1 and world.all_requests() == []
    result = CliRunner().invoke(cli, ["approve", str(action_id), "--as", OWNER])
    assert result.exit_code == 0, result.output
    assert world.action(action_id).status == ActionStatus.approved
    world.slack.down = False
    world.slack.rate_limit(1)  # the WebClient waits out Retry-After and tries again
    world.channel.pump_once()
    assert pending(world.engine) == 2  # the failed row backs off; nothing is lost
    from agentops.slack.outbox import collect, deliver

    collect(world.engine)
    later = utcnow() + timedelta(minutes=10)
    deliver(
        world.engine, world.channel.client, agent_channels={"airline": AGENT_CHANNEL}, now=later
    )
    assert pending(world.engine) == 0
    assert "Approved by <@UOWNER>" in messaging.as_text(world.dm(OWNER).blocks)
    assert "ratelimited" not in json.dumps(world.slack.ephemerals)


def test_socket_mode_envelopes_share_the_http_handlers(world: World) -> None:
    from slack_sdk.socket_mode.request import SocketModeRequest

    from agentops.demo.fake_slack import block_actions
    from agentops.slack.socket_mode import socket_mode_listener

    class Connection:
        def __init__(self) -> None:
            self.acks: list[dict[str, Any]] = []

        def send_socket_mode_response(self, response: Any) -> None:
            self.acks.append(response.to_dict())

    action_id = breach_rollback(world.engine)
    world.pump()
    owner_dm = world.dm(OWNER)
    payload = block_actions(
        user_id="UOWNER", message=owner_dm, button=owner_dm.button(messaging.APPROVE) or {}
    )
    connection = Connection()
    listener = socket_mode_listener(world.channel)
    listener(connection, SocketModeRequest(type="interactive", envelope_id="e-1", payload=payload))
    listener(connection, SocketModeRequest(type="events_api", envelope_id="e-2", payload={}))
    assert [ack["envelope_id"] for ack in connection.acks] == ["e-1", "e-2"]
    assert settled(world, action_id) == ActionStatus.succeeded
    assert world.events("approval.decided")[0].payload["channel"] == "slack"


def test_slack_settings_come_in_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError
    from typer.testing import CliRunner

    from agentops.cli.app import app as cli
    from agentops.settings import get_settings

    with pytest.raises(ValidationError, match="AGENTOPS_SLACK_SIGNING_SECRET is not set"):
        Settings(slack_bot_token="xoxb-1")
    with pytest.raises(ValidationError, match="AGENTOPS_SLACK_BOT_TOKEN is not set"):
        Settings(slack_signing_secret="s")
    with pytest.raises(ValidationError, match="APP_TOKEN"):
        Settings(slack_app_token="xapp-1")
    with pytest.raises(ValidationError, match="channel id"):
        Settings(slack_agent_channels={"airline": "not a channel"})
    monkeypatch.setenv("AGENTOPS_SLACK_BOT_TOKEN", "xoxb-secret-token")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "AGENTOPS_SLACK_SIGNING_SECRET is not set" in result.output
    assert "xoxb-secret-token" not in result.output and "Traceback" not in result.output
    monkeypatch.delenv("AGENTOPS_SLACK_BOT_TOKEN")
    result = CliRunner().invoke(cli, ["serve", "--socket-mode"])
    get_settings.cache_clear()
    assert result.exit_code == 2 and "AGENTOPS_SLACK_APP_TOKEN" in result.output


def test_signed_but_malformed_interactions_change_nothing(world: World) -> None:
    from agentops.demo.fake_slack import sign

    def post(body: bytes) -> httpx.Response:
        now = int(time.time())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": sign(FAKE_SIGNING_SECRET, now, body),
        }
        return httpx.post(f"{world.url}/slack/events", content=body, headers=headers)

    action_id = breach_rollback(world.engine)
    world.pump()
    owner_dm = world.dm(OWNER)
    assert post(b"payload=%7Bnot+json").status_code == 400
    assert post(b"nothing=here").status_code == 400
    assert post(b"payload=%5B1%2C2%5D").status_code == 400  # JSON, but not an object
    for value in ("abc", "99999999999", "42"):
        forged = copy.deepcopy(owner_dm)
        for block in forged.blocks:
            for element in block.get("elements", []):
                if element.get("action_id") == messaging.APPROVE:
                    element["value"] = value
        world.slack.click(world.url, user_id="UOWNER", message=forged, action_id=messaging.APPROVE)
    said = wait_until(
        lambda: len(world.slack.ephemerals_for("UOWNER")) == 3 and world.slack,
        what="three replies to the owner",
    )
    texts = said.ephemerals_for("UOWNER")
    assert sum("names no action" in t for t in texts) == 2
    assert any("no action #42" in t for t in texts)
    body, headers = signed_form({"type": "shortcut", "user": {"id": "UOWNER"}}, secret="x")
    forged = httpx.post(f"{world.url}/slack/events", content=body, headers=headers)
    assert forged.status_code == 401
    assert world.action(action_id).status == ActionStatus.awaiting_approval
    assert world.events("approval.decided") == []


def test_approval_without_a_deployer_stays_approved(engine: Engine) -> None:
    from agentops.actions.decisions import decide_and_wake
    from agentops.actions.wakers import ServerWaker
    from agentops.agents.actors import Channel, person_actor
    from agentops.store.models import Decision

    action_id = breach_rollback(engine)
    woken: list[bool] = []
    waker = ServerWaker(
        engine, deployer=lambda: None, health_timeout_s=1, after=lambda: woken.append(True)
    )
    with Session(engine) as session:
        actor = person_actor(session, email=OWNER, channel=Channel.slack)
    decide_and_wake(
        engine,
        action_id=action_id,
        actor=actor,
        decision=Decision.approve,
        reason=None,
        waker=waker,
    )
    waker.close()
    with Session(engine) as session:
        assert get_action(session, action_id=action_id).status == ActionStatus.approved
    assert len(woken) == 2  # once for the decision, once when the execution step gave up


def test_a_wrong_agent_channel_does_not_hold_back_the_owner(world: World) -> None:
    world.channel.settings.slack_agent_channels["airline"] = "CGONE404"
    action_id = breach_rollback(world.engine)
    world.pump()
    assert pending(world.engine) == 0 and world.slack.messages_in("CGONE404") == []
    owner_dm = world.dm(OWNER)
    world.slack.click(world.url, user_id="UOWNER", message=owner_dm, action_id=messaging.APPROVE)
    assert settled(world, action_id) == ActionStatus.succeeded
    world.pump()
    assert "Approved by <@UOWNER>" in messaging.as_text(world.dm(OWNER).blocks)
