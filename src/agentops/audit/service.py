"""Append to, verify and export the audit trail stored in the database."""

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlmodel import Session, col, func, select

from agentops.audit.chain import (
    GENESIS_HASH,
    ChainedEvent,
    ChainProblem,
    canonical_json,
    event_hash,
    find_chain_problems,
)
from agentops.store.models import AuditChainHead, AuditEvent, utcnow


class StoredRow(Protocol):
    """A table row with an integer id once flushed."""

    id: int | None


class AuditTamperError(RuntimeError):
    """Raised when code tries to change or delete a recorded audit event."""


@sa_event.listens_for(AuditEvent, "before_update")
def _refuse_update(*_args: Any) -> None:
    raise AuditTamperError("audit events are append-only")


@sa_event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(*_args: Any) -> None:
    raise AuditTamperError("audit events are append-only")


def record_event(
    session: Session,
    *,
    actor: str,
    kind: str,
    entity_type: str,
    entity_id: int | str | None,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    head = _lock_head(session)
    chained = ChainedEvent(
        seq=head.seq + 1,
        occurred_at=utcnow(),
        actor=actor,
        kind=kind,
        entity_type=entity_type,
        entity_id=str(entity_id),
        # Round-trip through JSON so what we hash is exactly what the store gives back.
        payload=json.loads(canonical_json(payload or {})),
    )
    digest = event_hash(chained, head.hash)
    row = AuditEvent(
        seq=chained.seq,
        occurred_at=chained.occurred_at,
        actor=actor,
        kind=kind,
        entity_type=entity_type,
        entity_id=chained.entity_id,
        payload=chained.payload,
        prev_hash=head.hash,
        hash=digest,
    )
    head.seq, head.hash = chained.seq, digest
    session.add(head)
    session.add(row)
    session.flush()
    return row


def add_and_record(
    session: Session,
    *,
    row: StoredRow,
    actor: str,
    kind: str,
    entity_type: str,
    payload: dict[str, Any],
) -> AuditEvent:
    """Write a new or changed row, then append the event about it, in one transaction."""
    session.add(row)
    session.flush()
    return record_event(
        session,
        actor=actor,
        kind=kind,
        entity_type=entity_type,
        entity_id=row.id,
        payload=payload,
    )


def _lock_head(session: Session) -> AuditChainHead:
    head = session.exec(
        select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    ).first()
    if head is None:
        head = AuditChainHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


def _as_chained(row: AuditEvent) -> ChainedEvent:
    return ChainedEvent(
        seq=row.seq,
        occurred_at=row.occurred_at,
        actor=row.actor,
        kind=row.kind,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        payload=row.payload,
    )


def iter_events(
    session: Session,
    *,
    kind_prefix: str | None = None,
    entity: str | None = None,
    newest: int | None = None,
) -> Iterator[AuditEvent]:
    """Events in chain order, filtered by kind prefix or 'type:id' entity, or the newest N."""
    query = select(AuditEvent)
    if kind_prefix:
        query = query.where(AuditEvent.kind.startswith(kind_prefix))  # type: ignore[attr-defined]
    if entity:
        entity_type, _, entity_id = entity.partition(":")
        query = query.where(AuditEvent.entity_type == entity_type)
        if entity_id:
            query = query.where(AuditEvent.entity_id == entity_id)
    if newest is not None:
        # Fetch only the tail of a long trail, then hand it back in chain order.
        tail = session.exec(query.order_by(col(AuditEvent.seq).desc()).limit(newest)).all()
        yield from reversed(tail)
        return
    yield from session.exec(query.order_by(col(AuditEvent.seq)))


def event_count(session: Session) -> int:
    """How many events the trail holds."""
    return session.exec(select(func.count()).select_from(AuditEvent)).one()


def verify_chain(session: Session) -> list[ChainProblem]:
    """Recompute every hash; an empty list means the trail is intact."""
    head = session.get(AuditChainHead, 1)
    rows = session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
    triples = [(_as_chained(row), row.prev_hash, row.hash) for row in rows]
    return find_chain_problems(
        triples,
        head_seq=head.seq if head else 0,
        head_hash=head.hash if head else GENESIS_HASH,
    )


EXPORT_FIELDS = (
    "seq",
    "occurred_at",
    "actor",
    "kind",
    "entity_type",
    "entity_id",
    "payload",
    "prev_hash",
    "hash",
)


def event_as_dict(row: AuditEvent) -> dict[str, Any]:
    """One event as plain JSON-ready data."""
    data = {field: getattr(row, field) for field in EXPORT_FIELDS}
    data["occurred_at"] = row.occurred_at.isoformat()
    return data


def export_events(events: list[AuditEvent], *, fmt: str) -> str:
    """Render events as JSON Lines ('jsonl') or CSV ('csv')."""
    rows = [event_as_dict(event) for event in events]
    if fmt == "jsonl":
        return "".join(canonical_json(row) + "\n" for row in rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "payload": canonical_json(row["payload"])})
        return buffer.getvalue()
    raise ValueError(f"unknown export format {fmt!r}: use jsonl or csv")
