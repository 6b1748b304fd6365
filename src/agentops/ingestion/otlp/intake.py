"""Store received OTLP items durably, and close idle conversations into the store.

Received spans and log records are written to `otlpitem` (with their trace's
conversation in `otlptrace` and the open conversation in `otlpconversation`) before the
sender is answered, so what is acknowledged survives a crash. A conversation whose last
item is older than the idle window is rebuilt from all its items, normalised and stored
as a Conversation; items arriving later reopen it, and the next close replaces the
stored conversation with the whole of it.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, delete, select

from agentops.agents import service as agents
from agentops.agents.names import NAME_PATTERN
from agentops.audit.service import record_event
from agentops.ingestion.otlp.model import SPAN, Item
from agentops.ingestion.otlp.normalise import (
    DEFAULT_CONVERSATION_KEYS,
    conversation_key,
    normalise,
)
from agentops.ingestion.transcripts import (
    DEFAULT_ESCALATION_TOOLS,
    ConversationRecord,
    RecordError,
    parse_record,
)
from agentops.redaction import redact_credentials
from agentops.store.models import (
    Agent,
    Conversation,
    OtlpConversation,
    OtlpItem,
    OtlpTrace,
    utcnow,
)

log = logging.getLogger("agentops.otlp")
OPEN, CLOSED, FAILED = "open", "closed", "failed"
ACTOR = "otlp"
CLOSE_BATCH = 200
ROOT_PATIENCE = 10

Redactor = Callable[[str], str]


@dataclass
class StoreResult:
    """What became of one request's items."""

    accepted: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, count: int, reason: str) -> None:
        """Count rejected items, keeping the reason once."""
        self.rejected += count
        if reason not in self.reasons:
            self.reasons.append(reason)


def redact_item(item: Item, redactor: Redactor = redact_credentials) -> Item:
    """The item with every string in its attributes and body passed through the redactor."""
    item.attributes = _redacted(item.attributes, redactor)
    item.body = _redacted(item.body, redactor)
    return item


def _redacted(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redactor) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redactor) for item in value]
    return value


def store_items(
    session: Session,
    *,
    items: Iterable[Item],
    agent_map: dict[str, str],
    keys: Iterable[str] = DEFAULT_CONVERSATION_KEYS,
    redactor: Redactor | None = redact_credentials,
    now: datetime | None = None,
) -> StoreResult:
    """Stage the items of a request in the session (the caller commits, then answers).

    The agent is the resource's service.name, or what agent_map maps it to; items of an
    unregistered agent, or with neither a trace id nor a conversation id, are rejected.
    """
    now = now or utcnow()
    keys = tuple(keys)
    result = StoreResult()
    by_agent: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        service = str(item.resource.get("service.name") or "")
        by_agent[agent_map.get(service, service)].append(item)
    for name, group in by_agent.items():
        agent = _agent(session, name)
        if agent is None:
            result.reject(len(group), f"service {name[:80]!r} is not a registered agent")
            continue
        kept = [item for item in group if item.trace_id]
        if len(kept) < len(group):
            result.reject(len(group) - len(kept), "an item has no trace id")
        if redactor is not None:
            kept = [redact_item(item, redactor) for item in kept]
        _stage(session, agent_id=agent.id, items=kept, keys=keys, now=now)  # type: ignore[arg-type]
        result.accepted += len(kept)
    return result


def _agent(session: Session, name: str) -> Agent | None:
    if not name or not NAME_PATTERN.fullmatch(name):
        return None
    return session.exec(select(Agent).where(Agent.name == name)).first()


def _stage(
    session: Session, *, agent_id: int, items: list[Item], keys: tuple[str, ...], now: datetime
) -> None:
    named: dict[str, str | None] = {}
    for item in items:
        found = conversation_key(item, keys)
        if named.get(item.trace_id) is None:
            named[item.trace_id] = found
    if not named:
        return
    # A fixed order, so concurrent requests lock the same rows in the same order.
    named = dict(sorted(named.items()))
    insert = _insert_for(session)
    # Core statements run with executemany: compiled once and cached, whatever the batch.
    connection = session.connection()
    connection.execute(
        insert(_table(OtlpTrace)).on_conflict_do_nothing(index_elements=["agent_id", "trace_id"]),
        [
            {"agent_id": agent_id, "trace_id": trace, "conversation_key": key or trace}
            for trace, key in named.items()
        ],
    )
    traces = session.exec(
        select(OtlpTrace).where(
            OtlpTrace.agent_id == agent_id, col(OtlpTrace.trace_id).in_(list(named))
        )
    ).all()
    keys_of: dict[str, str] = {}
    for trace in traces:
        key = named[trace.trace_id]
        if key is not None and trace.conversation_key == trace.trace_id != key:
            # The trace was first seen without a conversation id: it joins the one named
            # now, and its provisional conversation goes if nothing was stored from it.
            _drop_provisional(session, agent_id=agent_id, key=trace.trace_id)
            trace.conversation_key = key
            session.add(trace)
        keys_of[trace.trace_id] = trace.conversation_key
    session.flush()
    table = _table(OtlpItem)
    inserted = connection.execute(
        insert(table)
        .on_conflict_do_nothing(index_elements=["agent_id", "item_key"])
        .returning(table.c.trace_id),
        [
            {
                "agent_id": agent_id,
                "trace_id": item.trace_id,
                "item_key": item.key,
                "received_at": now,
                "payload": item.as_dict(),
            }
            for item in items
        ],
    )
    # Only new items (re)open a conversation: a retried batch, or an observation pulled
    # again, leaves a closed conversation closed.
    touched = {keys_of[trace_id] for (trace_id,) in inserted}
    if not touched:
        return
    statement = insert(_table(OtlpConversation))
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["agent_id", "key"],
            set_={"state": OPEN, "last_seen_at": statement.excluded.last_seen_at},
        ),
        [
            {
                "agent_id": agent_id,
                "key": key,
                "state": OPEN,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for key in sorted(touched)
        ],
    )


def _drop_provisional(session: Session, *, agent_id: int, key: str) -> None:
    session.execute(
        delete(OtlpConversation).where(
            col(OtlpConversation.agent_id) == agent_id,
            col(OtlpConversation.key) == key,
            col(OtlpConversation.conversation_id).is_(None),
        )
    )


def _table(model: type) -> Any:
    return model.__table__  # type: ignore[attr-defined]


def _insert_for(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@dataclass
class CloseReport:
    """What one closing pass did."""

    stored: int = 0
    replaced: int = 0
    failed: int = 0
    skipped: int = 0


def close_idle(
    session: Session,
    *,
    idle: timedelta,
    escalation_tools: frozenset[str] = DEFAULT_ESCALATION_TOOLS,
    max_future_skew: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
) -> CloseReport:
    """Close every conversation idle for `idle`, storing it; one commit per conversation."""
    now = now or utcnow()
    report = CloseReport()
    idle_ids = session.exec(
        select(OtlpConversation.id)
        .where(OtlpConversation.state == OPEN, OtlpConversation.last_seen_at <= now - idle)
        .order_by(col(OtlpConversation.last_seen_at))
        .limit(CLOSE_BATCH)
    ).all()
    for conversation_id in idle_ids:
        try:
            outcome = _close_one(
                session,
                conversation_id=conversation_id,  # type: ignore[arg-type]
                idle=idle,
                escalation_tools=escalation_tools,
                latest_allowed=now + max_future_skew,
                now=now,
            )
        except Exception:
            session.rollback()
            raise
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _close_one(
    session: Session,
    *,
    conversation_id: int,
    idle: timedelta,
    escalation_tools: frozenset[str],
    latest_allowed: datetime,
    now: datetime,
) -> str:
    staged = session.get(OtlpConversation, conversation_id)
    if staged is None or staged.state != OPEN:
        session.rollback()
        return "skipped"
    seen = staged.last_seen_at
    agent = session.get(Agent, staged.agent_id)
    assert agent is not None
    error: str | None = None
    stored: Conversation | None = None
    replaced = False
    items = _items(session, staged)
    if _waiting_for_root(staged, items, now=now, idle=idle):
        session.rollback()
        return "skipped"
    try:
        record = parse_record(
            normalise(staged.key, items).record, escalation_tools=escalation_tools
        )
        if record.started_at is not None and record.started_at > latest_allowed:
            raise RecordError(f"started_at {record.started_at.isoformat()} is in the future")
        stored, replaced = _store_conversation(session, agent=agent, staged=staged, record=record)
    except RecordError as exc:
        error = exc.reason
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        # Data no shape foresaw: this conversation fails, and closing goes on for the rest.
        session.rollback()
        staged = session.get(OtlpConversation, conversation_id)
        assert staged is not None
        error = f"cannot build the conversation: {type(exc).__name__}: {str(exc)[:200]}"
    # Only if no item came in meanwhile: otherwise the conversation stays open, whole.
    closed = session.execute(
        update(OtlpConversation)
        .where(
            col(OtlpConversation.id) == conversation_id,
            col(OtlpConversation.state) == OPEN,
            col(OtlpConversation.last_seen_at) == seen,
        )
        .values(
            state=FAILED if error else CLOSED,
            closed_at=now,
            last_error=error,
            conversation_id=stored.id if stored is not None else staged.conversation_id,
        )
    )
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return "skipped"
    if error is not None:
        log.warning("otlp conversation %r of %s not stored: %s", staged.key, agent.name, error)
    else:
        record_event(
            session,
            actor=ACTOR,
            kind="conversations.received",
            entity_type="agent",
            entity_id=agent.id,
            payload={"agent": agent.name, "id": staged.key, "replaced": replaced},
        )
    session.commit()
    return "failed" if error else ("replaced" if replaced else "stored")


def _items(session: Session, staged: OtlpConversation) -> list[Item]:
    traces = session.exec(
        select(OtlpTrace.trace_id).where(
            OtlpTrace.agent_id == staged.agent_id, OtlpTrace.conversation_key == staged.key
        )
    ).all()
    payloads = session.exec(
        select(OtlpItem.payload)
        .where(OtlpItem.agent_id == staged.agent_id, col(OtlpItem.trace_id).in_(list(traces)))
        .order_by(col(OtlpItem.id))
    ).all()
    return [Item.from_dict(cast(dict[str, Any], payload)) for payload in payloads]


def _waiting_for_root(
    staged: OtlpConversation, items: list[Item], *, now: datetime, idle: timedelta
) -> bool:
    """Whether a conversation known only by its trace id still lacks the trace's root span.

    Children end, and are exported, before their parent: the root (often the agent span
    naming the conversation) may still be on its way. Such a conversation waits up to
    ROOT_PATIENCE idle windows before it is closed as it is.
    """
    provisional = any(item.trace_id == staged.key for item in items)
    has_root = any(item.kind == SPAN and not item.parent_span_id for item in items)
    return provisional and not has_root and now - staged.last_seen_at < idle * ROOT_PATIENCE


def _store_conversation(
    session: Session, *, agent: Agent, staged: OtlpConversation, record: ConversationRecord
) -> tuple[Conversation, bool]:
    name = record.agent_version
    if name is not None and not NAME_PATTERN.fullmatch(name):
        raise RecordError(f"agent_version {name[:80]!r} is not a plain version label")
    if name is None:
        live = agents.live_version(session, agent=agent)
        if live is None:
            raise RecordError(
                "no gen_ai.agent.version or service.version, and the agent has no live version"
            )
        version = live
    else:
        version = agents.ensure_version(session, agent=agent, version=name, actor=ACTOR)
    found = session.exec(
        select(Conversation).where(
            Conversation.agent_id == agent.id, Conversation.external_id == record.external_id
        )
    ).first()
    replaced = found is not None
    row = found or Conversation(
        agent_id=agent.id,  # type: ignore[arg-type]
        agent_version_id=version.id,  # type: ignore[arg-type]
        external_id=record.external_id,
        started_at=record.started_at or staged.first_seen_at,
        transcript=[],
        escalated=False,
        contained=True,
        sentiment=0.0,
    )
    row.agent_version_id = version.id  # type: ignore[assignment]
    row.started_at = record.started_at or staged.first_seen_at
    row.transcript = record.messages
    row.escalated = record.escalated
    row.contained = record.contained
    row.sentiment = record.sentiment
    row.intent = record.intent
    row.latency_ms = record.latency_ms
    row.channel = record.channel
    session.add(row)
    session.flush()
    return row, replaced
