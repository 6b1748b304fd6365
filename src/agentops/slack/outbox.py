"""The Slack outbox: action events copied from the audit trail, then sent and retried.

Every state change (approval requested, escalated, decided, expired, cancelled,
executed) already writes an audit event in its own transaction, whoever made it: the
CLI, a gate flow, the sweeper or a Slack click. Collecting from that trail means no
writer has to remember Slack, a dead gate process cannot stop the backup's DM, and a
Slack outage only delays messages. Sending is state-driven and idempotent: each message
is recorded once posted, and updates always show the action as it stands now.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from agentops.actions.approval_card import ApprovalCard, Render, approval_card
from agentops.actions.repeats import unanswered_streak
from agentops.actions.rules import ApproverRole, first_approver
from agentops.audit.service import seal_if_pending
from agentops.redaction import redact
from agentops.slack import messaging
from agentops.slack.identity import link_people
from agentops.store.db import write_session
from agentops.store.models import (
    Action,
    Agent,
    AgentVersion,
    AuditChainHead,
    AuditEvent,
    Evaluation,
    Person,
    SlackMessage,
    SlackOutbox,
    SlackOutboxCursor,
    utcnow,
)

log = logging.getLogger(__name__)

ANNOUNCED_KINDS = (
    "approval.requested",
    "approval.escalated",
    "approval.decided",
    "action.expired",
    "action.cancelled",
    "action.executed",
    "action.repeated_request",
)
BATCH = 200
# Slack errors that a retry cannot fix: a channel id that is wrong, archived or lacks the bot.
MISCONFIGURED = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
EVENT_BATCH = 1000
# A sender holds a row this long, so two servers never send the same row at once.
LEASE_S = 60
MAX_BACKOFF_S = 300


@dataclass
class DeliveryReport:
    """What one delivery round did, by outbox row id."""

    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def start_outbox(engine: Engine) -> None:
    """Begin watching the trail from its current head: earlier events are not announced."""
    with Session(engine) as session:
        if session.get(SlackOutboxCursor, 1) is not None:
            return  # read first: an idle server takes no write lock (SQLite has one)
    try:
        with write_session(engine) as session:
            if session.get(SlackOutboxCursor, 1) is None:
                head = session.get(AuditChainHead, 1)
                session.add(SlackOutboxCursor(id=1, seq=head.seq if head else 0))
    except IntegrityError:
        pass  # another server started it first


def collect(engine: Engine) -> int:
    """Copy new action events from the audit trail into the outbox; returns how many."""
    start_outbox(engine)
    seal_if_pending(engine)  # a decision just committed may still wait for its seq
    added, more = 0, _behind(engine)
    while more:
        with write_session(engine) as session:
            cursor = session.exec(
                select(SlackOutboxCursor).where(SlackOutboxCursor.id == 1).with_for_update()
            ).one()
            events = session.exec(
                select(AuditEvent)
                .where(col(AuditEvent.seq) > cursor.seq)
                .order_by(col(AuditEvent.seq))
                .limit(EVENT_BATCH)
            ).all()
            for event in events:
                if event.kind in ANNOUNCED_KINDS and event.entity_type == "action":
                    action_id = int(event.entity_id)
                    session.add(
                        SlackOutbox(event_seq=event.seq, action_id=action_id, kind=event.kind)
                    )
                    added += 1
            if events:
                cursor.seq = events[-1].seq
                session.add(cursor)
            more = len(events) == EVENT_BATCH
    return added


def _behind(engine: Engine) -> bool:
    with Session(engine) as session:
        cursor = session.get(SlackOutboxCursor, 1)
        head = session.get(AuditChainHead, 1)
        return cursor is not None and head is not None and head.seq > cursor.seq


def deliver(
    engine: Engine,
    client: WebClient,
    *,
    agent_channels: dict[str, str],
    now: datetime | None = None,
    operators_channel: str | None = None,
) -> DeliveryReport:
    """Send every due outbox row in event order; a failure holds back that action's later rows."""
    now = now or utcnow()
    report = DeliveryReport()
    with Session(engine) as session:
        unsent = session.exec(
            select(SlackOutbox)
            .where(col(SlackOutbox.sent_at).is_(None))
            .order_by(col(SlackOutbox.event_seq))
            .limit(BATCH)
        ).all()
        rows = [(row.id, row.action_id, row.kind, aware(row.next_attempt_at)) for row in unsent]
    # An action's messages go out in event order: a row waiting to retry holds back the rest.
    held: set[int] = set()
    for row_id, action_id, kind, due_at in rows:
        assert row_id is not None
        if action_id in held or due_at > now or not _claim(engine, row_id, now):
            held.add(action_id)
            continue
        try:
            if kind == "action.repeated_request":
                _tell_operators(engine, client, action_id=action_id, channel=operators_channel)
            else:
                _send(engine, client, action_id=action_id, kind=kind, agent_channels=agent_channels)
        except (SlackApiError, SlackClientError, OSError) as exc:
            problem = _problem(exc)
            _retry_later(engine, row_id, problem)
            report.failed[row_id] = problem
            held.add(action_id)
            log.warning("Slack message for action #%s delayed: %s", action_id, problem)
            continue
        _mark_sent(engine, row_id)
        report.sent.append(row_id)
    return report


def pending(engine: Engine) -> int:
    """How many outbox rows are still unsent."""
    with Session(engine) as session:
        return len(
            session.exec(select(SlackOutbox.id).where(col(SlackOutbox.sent_at).is_(None))).all()
        )


def messages_for(engine: Engine, *, action_id: int) -> list[SlackMessage]:
    """The Slack messages posted about an action, oldest first."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(SlackMessage)
                .where(SlackMessage.action_id == action_id)
                .order_by(col(SlackMessage.id))
            )
        )


def repeated_request_text(engine: Engine, *, action_id: int) -> str:
    """What the operators are told of a rollback requested again after unanswered ones."""
    with Session(engine) as session:
        card = approval_card(session, action_id=action_id)
        action = session.get(Action, action_id)
        assert action is not None
        agent = session.get(Agent, action.agent_id)
        version = session.get(AgentVersion, action.from_version_id)
        evaluation = session.get(Evaluation, action.evaluation_id)
        assert agent is not None and version is not None and evaluation is not None
        streak = unanswered_streak(
            session,
            agent=agent,
            from_version=version,
            trigger_name=evaluation.trigger_name,
            before_action_id=action_id,
        )
    nth = streak.unanswered + 1
    return (
        f"Rollback of {card.agent} {card.from_version} ({evaluation.trigger_name}): action "
        f"#{action_id} "
        f"is the {_ordinal(nth)} request; the previous {streak.unanswered} expired with nobody "
        f"answering (owner {card.owner_email}, backup {card.backup_email}). The version is "
        "still live."
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _tell_operators(
    engine: Engine, client: WebClient, *, action_id: int, channel: str | None
) -> None:
    text = repeated_request_text(engine, action_id=action_id)
    if channel is None:
        log.warning("%s (set AGENTOPS_SLACK_OPERATORS_CHANNEL to tell the operators)", text)
        return
    client.chat_postMessage(channel=channel, text=text)


def _send(
    engine: Engine,
    client: WebClient,
    *,
    action_id: int,
    kind: str,
    agent_channels: dict[str, str],
) -> None:
    with Session(engine) as session:
        card = approval_card(session, action_id=action_id)
        agent = session.exec(select(Agent).where(Agent.name == card.agent)).one()
        people = [agent.owner_id, agent.backup_id]
    link_people(engine, client, person_ids=people)
    slack_ids = _slack_ids(engine)

    def person(email: str) -> str:
        return messaging.mention(slack_ids.get(email), email)

    posted = {message.purpose: message for message in messages_for(engine, action_id=action_id)}
    fresh: set[str] = set()
    # Who is asked follows the event, not the state now: a request delayed past its
    # escalation still reaches the owner, and shows them how things stand.
    asked = None
    if kind == "approval.requested":
        first = first_approver(owner_proposed=card.owner_proposed)
        asked = card.backup_email if first is ApproverRole.backup else card.owner_email
    elif kind == "approval.escalated":
        asked = card.backup_email
    if asked is not None:
        purpose = "request:backup" if asked == card.backup_email else "request:owner"
        slack_id = slack_ids.get(asked)
        if purpose not in posted and slack_id:
            dm = client.conversations_open(users=slack_id)["channel"]["id"]
            posted[purpose] = _post(engine, client, card, purpose, dm, person)
            fresh.add(purpose)
    channel = agent_channels.get(card.agent)
    if kind == "approval.requested" and channel and "request:channel" not in posted:
        try:
            posted["request:channel"] = _post(
                engine, client, card, "request:channel", channel, person
            )
            fresh.add("request:channel")
        except SlackApiError as exc:
            if exc.response.get("error") not in MISCONFIGURED:
                raise
            # Retrying cannot fix a wrong channel id: say so, and keep the DMs flowing.
            log.error(
                "agent %s: cannot post to Slack channel %s (%s); check "
                "AGENTOPS_SLACK_AGENT_CHANNELS and invite the bot",
                card.agent,
                channel,
                exc.response.get("error"),
            )
    result = messaging.result_text(card)
    for purpose, message in posted.items():
        if purpose.startswith("reply:") or purpose in fresh:
            continue
        client.chat_update(
            channel=message.channel,
            ts=message.ts,
            text=messaging.fallback_text(card, person=person),
            blocks=messaging.request_blocks(card, person=person),
        )
        reply = f"reply:{message.id}"
        if result and kind == "action.executed" and reply not in posted:
            answer = client.chat_postMessage(
                channel=message.channel, thread_ts=message.ts, text=result
            )
            _remember(engine, action_id, reply, message.channel, answer["ts"], thread_ts=message.ts)


def _post(
    engine: Engine,
    client: WebClient,
    card: ApprovalCard,
    purpose: str,
    channel: str,
    person: Render,
) -> SlackMessage:
    answer = client.chat_postMessage(
        channel=channel,
        text=messaging.fallback_text(card, person=person),
        blocks=messaging.request_blocks(card, person=person),
    )
    return _remember(engine, card.action_id, purpose, answer["channel"], answer["ts"])


def _remember(
    engine: Engine,
    action_id: int,
    purpose: str,
    channel: str,
    ts: str,
    *,
    thread_ts: str | None = None,
) -> SlackMessage:
    # Recorded right after posting, so a retry of this row never posts it twice.
    with write_session(engine) as session:
        message = SlackMessage(
            action_id=action_id, purpose=purpose, channel=channel, ts=ts, thread_ts=thread_ts
        )
        session.add(message)
        session.flush()
        session.refresh(message)
        session.expunge(message)
    return message


def _slack_ids(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        rows = session.exec(
            select(Person.email, Person.slack_user_id).where(col(Person.slack_user_id).is_not(None))
        ).all()
    return {email: slack_id for email, slack_id in rows if slack_id}


def _claim(engine: Engine, row_id: int, now: datetime) -> bool:
    with write_session(engine) as session:
        row = session.exec(
            select(SlackOutbox).where(SlackOutbox.id == row_id).with_for_update()
        ).one()
        if row.sent_at is not None or aware(row.next_attempt_at) > now:
            return False
        row.next_attempt_at = now + timedelta(seconds=LEASE_S)
        session.add(row)
    return True


def _mark_sent(engine: Engine, row_id: int) -> None:
    with write_session(engine) as session:
        row = session.get(SlackOutbox, row_id)
        assert row is not None
        row.sent_at = utcnow()
        row.attempts += 1
        row.last_error = None
        session.add(row)


def _retry_later(engine: Engine, row_id: int, problem: str) -> None:
    with write_session(engine) as session:
        row = session.get(SlackOutbox, row_id)
        assert row is not None
        row.attempts += 1
        row.last_error = problem
        row.next_attempt_at = utcnow() + timedelta(seconds=min(2**row.attempts, MAX_BACKOFF_S))
        session.add(row)


def _problem(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", "?")
        return f"Slack answered {status}: {exc.response.get('error', 'error')}"
    return redact(f"{exc.__class__.__name__}: {exc}")[:300]


def aware(moment: datetime) -> datetime:
    """The moment as an aware UTC datetime."""
    # SQLite hands back naive datetimes for values written by another driver path.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
