"""The Slack channel of `agentops serve`: acknowledge interactions fast, then decide.

Shared by the HTTP endpoint and Socket Mode: both verify or receive a payload, call
`acknowledge` for the immediate answer Slack needs within 3 seconds, and run the
returned work after acknowledging. The work resolves who clicked from their Slack id,
calls the one decide-then-wake service, and answers refusals with an ephemeral message.
A background worker sweeps stored deadlines and sends the outbox.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.actions.approval_card import approval_card
from agentops.actions.decisions import DecisionOutcome, decide_and_wake, recorded_decision
from agentops.actions.service import ApprovalRefused, undecided_actions
from agentops.actions.sweeper import sweep
from agentops.actions.wakers import ServerWaker
from agentops.agents.actors import Actor, system_actor
from agentops.errors import AgentOpsError
from agentops.settings import Settings
from agentops.slack import messaging
from agentops.slack.identity import actor_for_slack_user
from agentops.slack.outbox import aware as _aware
from agentops.slack.outbox import collect, deliver, start_outbox
from agentops.store.models import Decision, Person, utcnow

log = logging.getLogger(__name__)
Work = Callable[[], None]
# The sweeper moves deadlines on; it runs less often than the outbox is sent.
SWEEP_EVERY_S = 15.0
# In the audit trail, deadlines moved on by `agentops serve` (not by a sweep-actions run).
SERVE_SWEEPER = system_actor("serve:sweeper")


@dataclass(frozen=True)
class Ack:
    """The immediate answer to Slack: an empty 200, or a JSON body (e.g. modal errors)."""

    body: dict[str, Any] | None = None


def make_web_client(settings: Settings) -> WebClient:
    """slack-sdk's WebClient for the bot, retrying 429s (honouring Retry-After) and resets."""
    assert settings.slack_bot_token is not None
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=1),
        ],
    )


class SlackChannel:
    """Slack interactions and outgoing messages for one store."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        client: WebClient,
        waker: ServerWaker,
        clock: Clock | None = None,
    ) -> None:
        assert settings.slack_signing_secret is not None
        self.engine = engine
        self.settings = settings
        # Both come from the composition root (bootstrap.py), built once per process.
        self.client = client
        secret = settings.slack_signing_secret.get_secret_value()
        self.verifier = SignatureVerifier(secret, clock=clock or Clock())
        # The waker is shared with the web and closed by whoever built it (the app).
        waker.after = self.kick
        self.waker = waker
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._send_lock = threading.Lock()
        start_outbox(engine)

    # --- requests ---------------------------------------------------------------------

    def verified(self, body: bytes, headers: Any) -> bool:
        """True when the raw body carries a valid, fresh (5-minute) Slack signature."""
        try:
            return self.verifier.is_valid_request(body, dict(headers))
        except (ValueError, TypeError):  # a timestamp that is not a number
            return False

    def acknowledge(self, payload: dict[str, Any]) -> tuple[Ack, Work | None]:
        """The answer Slack needs now, and the work to do once it has been sent."""
        kind = payload.get("type")
        if kind == "block_actions":
            return Ack(), lambda: self.on_click(payload)
        if kind == "view_submission" and _callback(payload) == messaging.REJECT_MODAL:
            reason = _reason(payload)
            if not reason:
                return Ack(
                    {
                        "response_action": "errors",
                        "errors": {messaging.REASON_BLOCK: "A rejection needs a reason."},
                    }
                ), None
            return Ack(), lambda: self.on_reject_submitted(payload, reason)
        return Ack(), None

    def on_click(self, payload: dict[str, Any]) -> None:
        """An Approve or Reject button: decide as the clicker, or say why nothing changed."""
        clicked = (payload.get("actions") or [{}])[0]
        which = clicked.get("action_id")
        slack_user = str((payload.get("user") or {}).get("id", ""))
        channel = _channel(payload)
        action_id = _action_id(clicked.get("value"))
        if which not in {messaging.APPROVE, messaging.REJECT} or not slack_user:
            return
        if action_id is None:
            self._tell(channel, slack_user, "That button names no action agentops knows.")
            return
        with Session(self.engine) as session:
            actor = actor_for_slack_user(session, slack_user_id=slack_user)
        if which == messaging.REJECT and actor.is_person:
            self._open_reject_modal(payload, action_id)
            return
        decision = Decision.approve if which == messaging.APPROVE else Decision.reject
        self.decide(actor, action_id, decision, None, channel=channel, slack_user=slack_user)

    def on_reject_submitted(self, payload: dict[str, Any], reason: str) -> None:
        """The reject modal was submitted with a reason: record the rejection."""
        slack_user = str((payload.get("user") or {}).get("id", ""))
        view = payload.get("view") or {}
        action_id = _action_id(view.get("private_metadata"))
        if action_id is None or not slack_user:
            return
        with Session(self.engine) as session:
            actor = actor_for_slack_user(session, slack_user_id=slack_user)
        self.decide(actor, action_id, Decision.reject, reason, channel=None, slack_user=slack_user)

    def decide(
        self,
        actor: Actor,
        action_id: int,
        decision: Decision,
        reason: str | None,
        *,
        channel: str | None,
        slack_user: str,
    ) -> DecisionOutcome | None:
        """Decide through the shared service; every answer but success is ephemeral."""
        try:
            outcome = decide_and_wake(
                self.engine,
                action_id=action_id,
                actor=actor,
                decision=decision,
                reason=reason,
                waker=self.waker,
            )
        except ApprovalRefused as refused:
            self._tell(channel, slack_user, self._refusal_text(actor, action_id, str(refused)))
            return None
        except AgentOpsError as exc:  # e.g. no such action
            self._tell(channel, slack_user, f"Nothing changed: {exc}")
            return None
        if not outcome.newly_recorded:
            self._tell(channel, slack_user, self._already(outcome))
        return outcome

    # --- background worker ------------------------------------------------------------

    def kick(self) -> None:
        """Send the outbox soon (after a decision or an execution)."""
        self._wake.set()

    def pump_once(self) -> int:
        """Collect and send the outbox once; returns how many rows were sent."""
        with self._send_lock:
            collect(self.engine)
            report = deliver(
                self.engine,
                self.client,
                agent_channels=self.settings.slack_agent_channels,
                operators_channel=self.settings.slack_operators_channel,
            )
        return len(report.sent)

    def start(self) -> None:
        """Start the worker thread that sweeps deadlines and sends the outbox."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="agentops-slack", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the worker and let running executions finish."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_sweep and self._deadlines_due():
                    next_sweep = time.monotonic() + SWEEP_EVERY_S
                    sweep(
                        self.engine,
                        deployer=None,
                        deploy_timeout_s=self.settings.deploy_timeout_s,
                        actor=SERVE_SWEEPER,
                    )
                self.pump_once()
            except Exception:  # keep serving: the next round retries from the store
                log.exception("Slack worker round failed")
            self._wake.wait(self.settings.slack_outbox_interval_s)
            self._wake.clear()

    def _deadlines_due(self) -> bool:
        # A read-only look first, so an idle server takes no write lock every round.
        now = utcnow()
        with Session(self.engine) as session:
            return any(
                (action.owner_deadline is not None and _aware(action.owner_deadline) <= now)
                or (action.final_deadline is not None and _aware(action.final_deadline) <= now)
                for action in undecided_actions(session)
            )

    # --- answers ----------------------------------------------------------------------

    def _refusal_text(self, actor: Actor, action_id: int, reason: str) -> str:
        if not actor.is_person:
            return (
                "Nothing changed: your Slack account is not linked to a person registered in "
                "agentops, so you cannot decide this action."
            )
        decided = recorded_decision(self.engine, action_id=action_id)
        if decided is not None:
            return self._already(decided)
        return f"Nothing changed: {reason}."

    def _already(self, outcome: DecisionOutcome) -> str:
        verb = "approved" if outcome.decision == Decision.approve else "rejected"
        who = messaging.mention(self._slack_id(outcome.decided_by), outcome.decided_by)
        return (
            f"Action {outcome.action_id} was already {verb} by {who} at "
            f"{outcome.decided_at:%H:%M} UTC; your click changed nothing."
        )

    def _slack_id(self, email: str) -> str | None:
        with Session(self.engine) as session:
            person = session.exec(select(Person).where(Person.email == email)).first()
            return person.slack_user_id if person else None

    def _tell(self, channel: str | None, slack_user: str, text: str) -> None:
        try:
            if channel:
                self.client.chat_postEphemeral(channel=channel, user=slack_user, text=text)
            else:  # a modal has no channel: answer in the user's DM with the app
                dm = self.client.conversations_open(users=slack_user)["channel"]["id"]
                self.client.chat_postEphemeral(channel=dm, user=slack_user, text=text)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("could not answer %s in Slack: %s", slack_user, exc.__class__.__name__)

    def _open_reject_modal(self, payload: dict[str, Any], action_id: int) -> None:
        with Session(self.engine) as session:
            try:
                title = approval_card(session, action_id=action_id).title
            except AgentOpsError as exc:
                self._tell(_channel(payload), payload["user"]["id"], f"Nothing changed: {exc}")
                return
        try:
            self.client.views_open(
                trigger_id=payload.get("trigger_id", ""),
                view=messaging.reject_modal(action_id=action_id, title=title),
            )
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("could not open the reject dialog: %s", exc.__class__.__name__)


def parse_interaction(form_body: bytes) -> dict[str, Any] | None:
    """The JSON `payload` field of a form-encoded interaction, or None if there is none."""
    fields = parse_qs(form_body.decode("utf-8", errors="replace"))
    raw = (fields.get("payload") or [None])[0]  # type: ignore[list-item]
    if raw is None:
        return None
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    return payload if isinstance(payload, dict) and _well_formed(payload) else None


def _well_formed(payload: dict[str, Any]) -> bool:
    # Signed does not mean well-formed: every field read later must have Slack's shape, so
    # a malformed one is a 400 now rather than an AttributeError in the background.
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return False
    for name in ("view", "channel", "container"):
        if payload.get(name) is not None and not isinstance(payload[name], dict):
            return False
    view = payload.get("view") or {}
    state = view.get("state")
    if state is not None and not (
        isinstance(state, dict)
        and isinstance(state.get("values") or {}, dict)
        and all(isinstance(block, dict) for block in (state.get("values") or {}).values())
    ):
        return False
    actions = payload.get("actions")
    if actions is not None and not (
        isinstance(actions, list) and all(isinstance(a, dict) for a in actions)
    ):
        return False
    return all(
        payload.get(name) is None or isinstance(payload[name], str)
        for name in ("type", "trigger_id", "callback_id")
    )


def _callback(payload: dict[str, Any]) -> str | None:
    return (payload.get("view") or {}).get("callback_id")


def _reason(payload: dict[str, Any]) -> str:
    values = ((payload.get("view") or {}).get("state") or {}).get("values") or {}
    field = (values.get(messaging.REASON_BLOCK) or {}).get(messaging.REASON_INPUT) or {}
    value = field.get("value")
    return value.strip() if isinstance(value, str) else ""


def _channel(payload: dict[str, Any]) -> str | None:
    channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get(
        "channel_id"
    )
    return channel if isinstance(channel, str) else None


def _action_id(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= 2_147_483_647 else None
