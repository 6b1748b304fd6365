"""Test data and fakes shared by several test modules: real rows, real HTTP servers."""

import asyncio
import hmac
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session, select

from agentops.actions.deployer import request_signature
from agentops.actions.service import propose_rollback
from agentops.agents.actors import Actor, Channel, person_actor
from agentops.agents.service import (
    ensure_person,
    ensure_version,
    mark_known_good,
    register_agent,
    set_live,
)
from agentops.demo.fake_services import LoopbackServer
from agentops.store.models import Action, Agent, AgentVersion, Conversation, Person, Role

OWNER, BACKUP, OPS = "owner@x.io", "backup@x.io", "ops@x.io"
TRANSFER_TOOL = "transfer_to_human_agents"

# --- rows ---------------------------------------------------------------------------


def agent_named(
    session: Session, name: str = "airline", *, owner: str = OWNER, backup: str = BACKUP
) -> Agent:
    """A registered agent with an owner and a backup approver."""
    return register_agent(session, name=name, owner_email=owner, backup_email=backup, actor="test")


@dataclass
class Fleet:
    """An agent whose known-good v1 was replaced by a live, degraded v2."""

    agent: Agent
    good: AgentVersion
    bad: AgentVersion


def degraded_fleet(session: Session) -> Fleet:
    """Agent 'airline': v1 went live and proved good, then v2 replaced it."""
    agent = agent_named(session)
    good = ensure_version(session, agent=agent, version="v1", actor="test")
    set_live(session, agent=agent, version=good, actor="test")
    mark_known_good(session, agent=agent, version=good, actor="test")
    bad = ensure_version(session, agent=agent, version="v2", actor="test")
    set_live(session, agent=agent, version=bad, actor="test")
    return Fleet(agent=agent, good=good, bad=bad)


def breach_rollback(session: Session, fleet: Fleet, *, reason: str = "breach") -> Action:
    """The rollback of the fleet's degraded v2 to v1, proposed as a trigger breach would."""
    action = propose_rollback(
        session,
        agent=fleet.agent,
        from_version=fleet.bad,
        evaluation=None,
        actor="flow:evaluate-triggers",
        reason=reason,
    )
    assert action is not None and action.id is not None
    return action


def conversation(
    agent: Agent,
    version: AgentVersion,
    *,
    external_id: str,
    started_at: datetime,
    escalated: bool = False,
    **facts: Any,
) -> Conversation:
    """An unsaved conversation of the version; facts override the quiet defaults."""
    values: dict[str, Any] = {
        "transcript": [{"role": "user", "content": "hi"}],
        "contained": not escalated,
        "sentiment": 0.0,
        **facts,
    }
    return Conversation(
        agent_id=agent.id,  # type: ignore[arg-type]
        agent_version_id=version.id,  # type: ignore[arg-type]
        external_id=external_id,
        started_at=started_at,
        escalated=escalated,
        **values,
    )


def chat_record(conversation_id: str, **extra: Any) -> dict[str, Any]:
    """A raw import record in the generic shape: a cancellation with one tool call."""
    return {
        "id": conversation_id,
        "started_at": "2024-05-15T15:00:00Z",
        "messages": [
            {"role": "system", "content": "You are an airline agent."},
            {"role": "user", "content": "Please cancel my trip, thanks."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "cancel_reservation", "arguments": {"id": "X1"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"status": "cancelled"}'},
            {"role": "assistant", "content": "Done."},
        ],
        **extra,
    }


def calls_transfer(messages: Sequence[dict[str, Any]]) -> bool:
    """Whether the assistant handed the chat to a human: the tests' own reading, not the code's."""
    return any(
        call["function"]["name"] == TRANSFER_TOOL
        for message in messages
        if message["role"] == "assistant"
        for call in message.get("tool_calls") or []
    )


def register_reviewers(session: Session, *emails: str) -> None:
    """Sign reviewers up first: claiming never creates a person."""
    for email in emails:
        ensure_person(session, email=email, role=Role.reviewer)
    session.flush()


def reviewer_as(session: Session, email: str, channel: Channel = Channel.cli) -> Actor:
    """The person behind `email` as the services see them (never registered here)."""
    return person_actor(session, email=email, channel=channel)


def as_person(session: Session, email: str, channel: Channel = Channel.cli) -> Actor:
    """A person acting through a channel, registered (as a reviewer) if new."""
    ensure_person(session, email=email, role=Role.reviewer)
    return person_actor(session, email=email, channel=channel)


# --- HTTP ---------------------------------------------------------------------------


class DeploymentRequest(BaseModel):
    agent: str
    version: str
    action_id: int


class FakeDeployer:
    """Implements the deployer contract; a deployment settles after a few health checks.

    Knobs for hostile tests: `unhealthy` versions, `refuse`, `hang_s` before answering a
    POST, `echo` (error bodies that repeat the request's credentials), and required
    authentication (`token` and/or `hmac_secret`).
    """

    def __init__(
        self,
        *,
        serving: dict[str, str],
        settle_checks: int = 2,
        healthy: bool = True,
        token: str | None = None,
        hmac_secret: str | None = None,
        reports_rollout: bool = False,
    ) -> None:
        self.serving = dict(serving)
        # With reports_rollout, /live also answers target_version and rollout (the newer
        # contract); versions in failed_rollouts report a failed rollout and stay pending.
        self.reports_rollout = reports_rollout
        self.failed_rollouts: set[str] = set()
        self.settle_checks = settle_checks
        self.healthy = healthy
        self.unhealthy: set[str] = set()
        self.refuse = False
        self.echo = False
        self.hang_s = 0.0
        self.token = token
        self.hmac_secret = hmac_secret
        self.deployments: list[dict[str, Any]] = []
        self.posts = 0
        self.keys: dict[str, str] = {}
        self._pending: dict[str, list[Any]] = {}
        self.app = FastAPI()
        self.app.post("/deployments")(self._deploy)
        self.app.get("/agents/{agent}/health")(self._health)
        self.app.get("/agents/{agent}/live")(self._live)

    async def _deploy(self, request: Request) -> JSONResponse:
        self.posts += 1
        raw = await request.body()
        problem = self._auth_problem(request, raw)
        if problem:
            return JSONResponse({"detail": problem}, status_code=401)
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        if self.refuse:
            detail = "deployments are frozen"
            if self.echo:
                detail += f" (you sent {request.headers.get('authorization')})"
            return JSONResponse({"detail": detail}, status_code=409)
        body = DeploymentRequest.model_validate_json(raw)
        key = request.headers.get("idempotency-key", "")
        if key in self.keys:
            return JSONResponse({"deployment_id": self.keys[key], "status": "accepted"}, 200)
        deployment_id = f"dep-{uuid.uuid4().hex[:8]}"
        self.keys[key] = deployment_id
        self.deployments.append({**body.model_dump(), "idempotency_key": key})
        self._pending[body.agent] = [body.version, self.settle_checks]
        return JSONResponse({"deployment_id": deployment_id, "status": "accepted"}, 202)

    def _auth_problem(self, request: Request, raw: bytes) -> str | None:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return "bad bearer token"
        if self.hmac_secret:
            timestamp = request.headers.get("x-agentops-timestamp", "")
            expected = request_signature(
                self.hmac_secret,
                timestamp=timestamp,
                method=request.method,
                path=request.url.path,
                body=raw,
            )
            if not hmac.compare_digest(expected, request.headers.get("x-agentops-signature", "")):
                return "bad signature"
        return None

    def _state(self, agent: str) -> dict[str, Any]:
        if agent not in self.serving:
            raise HTTPException(status_code=404, detail=f"unknown agent {agent}")
        pending = self._pending.get(agent)
        if pending is not None:
            pending[1] -= 1
            if pending[1] <= 0:
                self.serving[agent] = pending[0]
                del self._pending[agent]
        version = self.serving[agent]
        healthy = self.healthy and version not in self.unhealthy
        return {"agent": agent, "version": version, "healthy": healthy}

    def _health(self, agent: str) -> dict[str, Any]:
        return self._state(agent)

    def _live(self, agent: str) -> dict[str, Any]:
        state = self._state(agent)
        if not self.reports_rollout:
            return state
        pending = self._pending.get(agent)
        target = pending[0] if pending is not None else state["version"]
        if target in self.failed_rollouts:
            rollout = "failed"
        else:
            rollout = "rolling_out" if pending is not None else "settled"
        return {**state, "target_version": target, "rollout": rollout}


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run the app on a free local port for the duration of the block."""
    with LoopbackServer(app, thread_name="test-server") as server:
        yield server.url


def unreachable_url() -> str:
    """A local URL nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# --- review queue and web sign-in -------------------------------------------------------

REVIEW_RUBRIC = """\
name: support
version: 1
criteria:
  - key: confirm
    severity: critical
    description: Explicit yes before changes.
  - key: grounded
    severity: major
    description: No invented facts.
  - key: tone
    severity: minor
    description: Friendly tone.
"""


def review_queue(
    session: Session,
    *,
    count: int = 3,
    turns: int = 4,
    agent: Agent | None = None,
    version: AgentVersion | None = None,
    margin: float = 0.05,
    reviewers: Sequence[str] = (),
) -> Agent:
    """An agent (default: a new 'airline' v1) with `count` conversations, a sample queued.

    With the default margin a small count is queued whole; a tiny margin queues nearly all.
    The `reviewers` are registered, as claiming needs a registered reviewer.
    """
    from datetime import UTC, timedelta

    from agentops.review.rubric import register_rubric
    from agentops.sampling.service import sample_window

    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    if agent is None:
        agent = agent_named(session)
    if version is None:
        version = ensure_version(session, agent=agent, version="v1", actor="test")
    rubric = register_rubric(session, text=REVIEW_RUBRIC, source="r.yaml", actor="test")
    session.add_all(
        conversation(
            agent,
            version,
            external_id=f"chat-{i}",
            started_at=start + timedelta(minutes=i),
            transcript=chat_transcript(turns),
        )
        for i in range(count)
    )
    session.flush()
    sample_window(
        session,
        agent=agent,
        version=version,
        rubric=rubric,
        seed=1,
        window_start=start,
        window_end=start + timedelta(days=1),
        margin=margin,
        actor="test",
    )
    register_reviewers(session, *reviewers)
    session.commit()
    return agent


def chat_transcript(turns: int) -> list[dict[str, Any]]:
    """A support chat of `turns` messages with a tool call and its result in every round."""
    messages: list[dict[str, Any]] = []
    for i in range(turns):
        match i % 4:
            case 0:
                messages.append({"role": "user", "content": f"Please change booking {i}."})
            case 1:
                messages.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": f"call-{i}",
                                "type": "function",
                                "function": {
                                    "name": "get_reservation_details",
                                    "arguments": f'{{"reservation_id": "R{i}"}}',
                                },
                            }
                        ],
                    }
                )
            case 2:
                messages.append(
                    {"role": "tool", "tool_call_id": f"call-{i - 1}", "content": '{"ok": true}'}
                )
            case _:
                messages.append({"role": "assistant", "content": f"Done with booking {i}."})
    return messages


def login_token(session: Session, email: str, *, role: Role = Role.reviewer) -> str:
    """A fresh one-time sign-in token for the person (registered with the role if new)."""
    from urllib.parse import parse_qs, urlsplit

    from agentops.agents.signin import issue_login_link, register_person, signing_key

    if session.exec(select(Person).where(Person.email == email)).first() is None:
        register_person(session, email=email, role=role, actor="test")
    link = issue_login_link(
        session,
        email=email,
        key=signing_key(session),
        base_url="http://web.test",
        minutes=15,
        actor="test",
    )
    session.commit()
    return parse_qs(urlsplit(link).query)["token"][0]
