"""Append to, seal, verify and read the audit trail stored in the database.

Writers never wait on each other: `record_event` inserts an unsequenced entry into
`auditpending` inside the caller's transaction, with no shared lock. The sequencer
(`seal_pending`) takes the one chain-head row lock for a moment, gives a batch of
committed entries their seq, chained hash and Merkle leaf, moves them to `auditevent`
and commits. Sealing never runs on a writer's path: on PostgreSQL a commit that recorded
an event wakes this process's background sealer (audit/sealer.py) and returns; on SQLite,
which has one writer at a time, the writer seals inside its own transaction just before
committing. Readers seal before reading, and the `seal-audit-trail` schedule is the
backstop.
"""

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import String, Text, bindparam, cast, delete, insert, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import JSON, Session, col, func, select

from agentops.audit.chain import (
    GENESIS_HASH,
    ChainedEvent,
    ChainProblem,
    canonical_json,
    event_hash,
    event_hash_from_text,
    hash_fields,
)
from agentops.audit.merkle import MerkleFrontier
from agentops.audit.sealer import wake_sealer
from agentops.errors import NotFoundError
from agentops.identity import Actor
from agentops.settings import get_settings
from agentops.store.core_tables import (
    Agent,
    AgentVersion,
    AuditChainHead,
    AuditEvent,
    AuditPending,
    utcnow,
)

if TYPE_CHECKING:
    # Checkpoints, exports and their signatures (cryptography) load only when used: every
    # command records or reads events, few sign or export them.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from agentops.audit.checkpoints import Checkpoint, CheckpointMatcher, TreeHead

log = logging.getLogger(__name__)

SEAL_BATCH = 2000
MAX_REPORTED_PROBLEMS = 200
_UNSEALED = "agentops_audit_unsealed"
_SEALED_HERE = "agentops_audit_sealed_here"
_EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
_HEAD = AuditChainHead.__table__  # type: ignore[attr-defined]
_PENDING = AuditPending.__table__  # type: ignore[attr-defined]


class StoredRow(Protocol):
    """A table row with an integer id once flushed."""

    id: int | None


class AuditTamperError(RuntimeError):
    """Raised when code tries to change or delete a recorded audit event."""


@sa_event.listens_for(AuditEvent, "before_update")
@sa_event.listens_for(AuditPending, "before_update")
def _refuse_update(*_args: Any) -> None:
    raise AuditTamperError("audit events are append-only")


@sa_event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(*_args: Any) -> None:
    raise AuditTamperError("audit events are append-only")


def record_event(
    session: Session,
    *,
    actor: Actor | str,
    kind: str,
    entity_type: str,
    entity_id: int | str | None,
    payload: dict[str, Any] | None = None,
    channel: str | None = None,
    correlation_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditPending:
    """Add one event to the trail inside the caller's transaction; sealed after commit.

    channel is where the actor acted (cli, slack, web, flow); correlation_id ties an
    action's events into one story (default for action entities: "action:ID"); before
    and after record the entity's state on either side of a status change. An Actor
    names its channel itself.
    """
    if isinstance(actor, Actor):
        channel = channel or actor.channel.value
        actor = actor.label
    body = dict(payload or {})
    if before is not None:
        body["before"] = before
    if after is not None:
        body["after"] = after
    if correlation_id is None and entity_type == "action" and entity_id is not None:
        correlation_id = f"action:{entity_id}"
    entry = AuditPending(
        occurred_at=utcnow(),
        actor=actor,
        channel=channel,
        correlation_id=correlation_id,
        kind=kind,
        entity_type=entity_type,
        entity_id=str(entity_id),
        payload=canonical_json(body),
    )
    session.add(entry)
    session.flush()
    # The newest entry this transaction wrote: its commit asks the sealer for up to here.
    session.info[_UNSEALED] = max(session.info.get(_UNSEALED) or 0, entry.id or 0)
    return entry


def add_and_record(
    session: Session,
    *,
    row: StoredRow,
    actor: Actor | str,
    kind: str,
    entity_type: str,
    payload: dict[str, Any],
    channel: str | None = None,
    correlation_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditPending:
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
        channel=channel,
        correlation_id=correlation_id,
        before=before,
        after=after,
    )


# --- the sequencer -------------------------------------------------------------------


def seal_pending(session: Session, *, wait: bool = True, batch: int = SEAL_BATCH) -> int | None:
    """Seal up to one batch of pending entries in the session's transaction.

    Returns how many were sealed, or None when wait is False and another sequencer holds
    the chain head (it will seal what is committed; see seal_all).
    """
    head = _lock_head(session, wait=wait)
    if head is None:
        return None
    seq, prev_hash, frontier_json = head
    rows = session.exec(
        select(AuditPending).order_by(col(AuditPending.id)).limit(batch)
    ).all()
    if not rows:
        return 0
    frontier = (
        MerkleFrontier.from_json(frontier_json)
        if frontier_json is not None
        else _rebuild_frontier(session, upto=seq)
    )
    sealed: list[dict[str, Any]] = []
    for row in rows:
        seq += 1
        digest = event_hash_from_text(
            seq=seq,
            occurred_at=_utc_iso(row.occurred_at),
            actor=row.actor,
            kind=row.kind,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            payload_text=row.payload,
            prev_hash=prev_hash,
            channel=row.channel,
            correlation_id=row.correlation_id,
        )
        frontier.append(digest)
        sealed.append(
            {
                "p_seq": seq,
                "p_occurred_at": row.occurred_at,
                "p_actor": row.actor,
                "p_kind": row.kind,
                "p_entity_type": row.entity_type,
                "p_entity_id": row.entity_id,
                "p_payload": row.payload,
                "p_prev_hash": prev_hash,
                "p_hash": digest,
                "p_channel": row.channel,
                "p_correlation_id": row.correlation_id,
            }
        )
        prev_hash = digest
    ids = [row.id for row in rows]
    for row in rows:
        session.expunge(row)
    if session.get_bind().dialect.name == "postgresql":
        # The database copies the pending rows itself (migration 0009), so the application
        # role needs no right to write sealed events, drop pending ones or move the head.
        session.execute(
            text("SELECT agentops_seal_audit(:ids, :hashes, CAST(:frontier AS json))"),
            {
                "ids": ids,
                "hashes": [entry["p_hash"] for entry in sealed],
                "frontier": json.dumps(frontier.to_json()),
            },
        )
        return len(rows)
    session.execute(_insert_sealed(session), sealed)
    session.execute(delete(_PENDING).where(_PENDING.c.id.in_(ids)))
    session.execute(
        update(_HEAD)
        .where(_HEAD.c.id == 1)
        .values(seq=seq, hash=prev_hash, merkle_frontier=frontier.to_json())
    )
    return len(rows)


def seal_all(engine: Engine, *, wait: bool = True) -> int:
    """Seal every committed pending entry, a batch per transaction; returns how many.

    With wait False it never queues behind another sequencer: if the head is taken, that
    sequencer's next pass picks up what this one would have sealed, because it locks the
    head (after this caller committed) before reading the pending entries.
    """
    total = 0
    while True:
        with Session(engine) as session:
            sealed = seal_pending(session, wait=wait)
            session.commit()
        if not sealed:
            return total
        total += sealed


def seal_if_pending(engine: Engine) -> int:
    """Seal what is committed but pending, for a reader of sealed events; no lock if none.

    Writers leave sealing to the background sealer, so a reader that must see an event
    the moment its writer committed (the Slack outbox, woken by a decision) seals first.
    """
    with Session(engine) as session:
        if not pending_count(session):
            return 0
    return seal_all(engine)


def pending_count(session: Session) -> int:
    """Entries recorded but not sealed yet."""
    return session.exec(select(func.count()).select_from(AuditPending)).one()


def seal_visible(session: Session) -> None:
    """Seal, in the session's transaction, every pending entry it can see (its own too).

    Readers call this before reading the trail. It writes only when something is
    pending, which is rare: writers seal their own entries right after committing.
    """
    if pending_count(session):
        # A batch short of full sealed everything committed before it was read; a pass
        # more only to find nothing would cost every SQLite writer three statements.
        while seal_pending(session) == SEAL_BATCH:
            pass


@sa_event.listens_for(OrmSession, "before_commit")
def _seal_in_sqlite_transaction(session: OrmSession) -> None:
    # SQLite: the writer holds the database's one write lock until it commits anyway, so
    # sealing here adds no lock and saves a second commit. A SAVEPOINT keeps a failed
    # seal from failing the writer: the entries stay pending for the next reader.
    if session.in_nested_transaction() or not session.info.get(_UNSEALED):
        return
    if _dialect(session) != "sqlite" or not get_settings().audit_seal_on_commit:
        return
    session.flush()
    try:
        with session.begin_nested():
            seal_visible(session)  # type: ignore[arg-type]
    except Exception:
        log.warning("could not seal the audit trail now; it will be sealed later", exc_info=True)
    else:
        session.info.pop(_UNSEALED, None)
        session.info[_SEALED_HERE] = True


@sa_event.listens_for(OrmSession, "after_commit")
def _checkpoint_after_sqlite_seal(session: OrmSession) -> None:
    # The seal above is committed now: sign it (a no-op without the signing key).
    if session.in_nested_transaction() or not session.info.pop(_SEALED_HERE, False):
        return
    from agentops.audit.auto_checkpoint import checkpoint_if_due

    checkpoint_if_due(_engine_of(session))


@sa_event.listens_for(OrmSession, "after_commit")
def _wake_sealer_after_commit(session: OrmSession) -> None:
    # A SAVEPOINT's release is no commit: the outer transaction may still roll back.
    if session.in_nested_transaction():
        return
    through = session.info.pop(_UNSEALED, None)
    if not through or not get_settings().audit_seal_on_commit:
        return
    wake_sealer(_engine_of(session), through=through)


def _engine_of(session: OrmSession) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _dialect(session: OrmSession) -> str:
    return session.get_bind().dialect.name


def _lock_head(session: Session, *, wait: bool) -> tuple[int, str, Any] | None:
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: a write takes the database's write lock now, so the head
        # read next cannot go stale before this transaction commits.
        session.execute(update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq))
        columns = select(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.merkle_frontier)
        row = session.execute(columns.where(_HEAD.c.id == 1)).first()
    else:
        # Through the database's function: the application role has no UPDATE on the head.
        row = session.execute(
            text("SELECT o_seq, o_hash, o_frontier FROM agentops_lock_audit_head(:wait)"),
            {"wait": wait},
        ).first()
    if row is None:
        if not wait or session.execute(select(_HEAD.c.id)).first() is not None:
            return None  # another sequencer holds it
        raise RuntimeError("the audit chain head row is missing: run `agentops db upgrade`")
    return row[0], row[1], row[2]


def _insert_sealed(session: Session) -> Any:
    payload: ColumnElement[Any] = bindparam("p_payload", type_=String)
    if session.get_bind().dialect.name == "postgresql":
        # json (not jsonb) keeps the text exactly as sealed, so verify hashes it unparsed.
        payload = cast(payload, JSON)
    values = {
        name: bindparam(f"p_{name}", type_=_EVENTS.c[name].type) for name in _RECORD_COLUMNS
    }
    return insert(_EVENTS).values(payload=payload, **values)


def _rebuild_frontier(session: Session, *, upto: int) -> MerkleFrontier:
    anchor = purge_anchor(session)
    frontier = anchor.frontier
    for stored_hash in iter_event_hashes(session, after_seq=anchor.last_seq, upto_seq=upto):
        frontier.append(stored_hash)
    return frontier


@dataclass(frozen=True)
class PurgeAnchor:
    """Where the stored trail starts: the genesis, or the newest purge tombstone."""

    last_seq: int
    last_hash: str
    frontier: MerkleFrontier


def purge_anchor(session: Session) -> PurgeAnchor:
    """The chain state just before the first stored event (see audit/retention.py)."""
    payload = session.exec(
        select(AuditEvent.payload)
        .where(AuditEvent.kind == "audit.purged")
        .order_by(col(AuditEvent.seq).desc())
        .limit(1)
    ).first()
    if payload is None:
        return PurgeAnchor(0, GENESIS_HASH, MerkleFrontier())
    return PurgeAnchor(
        last_seq=int(payload["last_seq"]),
        last_hash=str(payload["last_hash"]),
        frontier=MerkleFrontier.from_json(payload["merkle_frontier"]),
    )


# --- reading ---------------------------------------------------------------------------


def iter_events(
    session: Session,
    *,
    kind_prefix: str | None = None,
    entity: str | None = None,
    newest: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    seal: bool = True,
) -> Iterator[AuditEvent]:
    """Sealed events in chain order, filtered by kind prefix, 'type:id' entity, time or newest N."""
    if seal:
        seal_visible(session)
    query = select(AuditEvent)
    if kind_prefix:
        query = query.where(col(AuditEvent.kind).startswith(kind_prefix))
    if entity:
        entity_type, _, entity_id = entity.partition(":")
        query = query.where(AuditEvent.entity_type == entity_type)
        if entity_id:
            query = query.where(AuditEvent.entity_id == entity_id)
    if since is not None:
        query = query.where(col(AuditEvent.occurred_at) >= since)
    if until is not None:
        query = query.where(col(AuditEvent.occurred_at) < until)
    if newest is not None:
        # Fetch only the tail of a long trail, then hand it back in chain order.
        tail = session.exec(query.order_by(col(AuditEvent.seq).desc()).limit(newest)).all()
        yield from reversed(tail)
        return
    yield from session.exec(query.order_by(col(AuditEvent.seq)).execution_options(yield_per=5000))


def event_count(session: Session) -> int:
    """How many sealed events the trail holds."""
    return session.exec(select(func.count()).select_from(AuditEvent)).one()


def tree_head(session: Session) -> "TreeHead":
    """The sealed trail's size, last chain hash and Merkle root, as a checkpoint signs them."""
    from agentops.audit.checkpoints import TreeHead

    row = session.execute(
        select(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.merkle_frontier).where(_HEAD.c.id == 1)
    ).first()
    if row is None:
        return TreeHead(0, GENESIS_HASH, MerkleFrontier().root())
    frontier = (
        MerkleFrontier.from_json(row.merkle_frontier)
        if row.merkle_frontier is not None
        else _rebuild_frontier(session, upto=row.seq)
    )
    return TreeHead(tree_size=row.seq, chain_head=row.hash, merkle_root=frontier.root())


def iter_event_hashes(session: Session, *, after_seq: int, upto_seq: int) -> Iterator[str]:
    """Stored event hashes for after_seq < seq <= upto_seq, streamed in order."""
    stream = session.execute(
        select(_EVENTS.c.hash)
        .where(_EVENTS.c.seq > after_seq, _EVENTS.c.seq <= upto_seq)
        .order_by(_EVENTS.c.seq)
        .execution_options(yield_per=10_000)
    )
    for (stored_hash,) in stream:
        yield stored_hash


# --- verifying -------------------------------------------------------------------------


@dataclass
class Verification:
    """The outcome of one pass over the trail."""

    events: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    more_problems: int = 0
    merkle_root: str = ""
    pending: int = 0

    @property
    def intact(self) -> bool:
        """Nothing altered, removed or out of line with a checkpoint."""
        return not self.problems


def verify_trail(
    session: Session, *, matcher: "CheckpointMatcher | None" = None
) -> Verification:
    """Recompute every hash and the Merkle tree in one streaming pass (constant memory)."""
    head = session.execute(
        select(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.merkle_frontier).where(_HEAD.c.id == 1)
    ).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    result = Verification(pending=pending_count(session))

    def problem(seq: int, reason: str) -> None:
        if len(result.problems) < MAX_REPORTED_PROBLEMS:
            result.problems.append(ChainProblem(seq, reason))
        else:
            result.more_problems += 1

    anchor = purge_anchor(session)
    frontier = anchor.frontier
    expected_prev, expected_seq = anchor.last_hash, anchor.last_seq + 1
    sqlite = session.get_bind().dialect.name == "sqlite"
    stream = _event_rows(session, upto=head_seq, sqlite=sqlite)
    to_iso = _stored_utc_iso
    count = 0
    for row in stream:
        count += 1
        seq, when, actor, kind, etype, eid, text_, stored_prev, stored_hash, chan, corr = row
        if seq != expected_seq:
            problem(seq, f"expected seq {expected_seq}: events missing")
        if stored_prev != expected_prev:
            problem(seq, "prev_hash does not match the previous event")
        iso = to_iso(when)
        fast = hash_fields(seq, iso, actor, kind, etype, eid, text_, stored_prev, chan, corr)
        if fast != stored_hash and _legacy_hash(row, iso) != stored_hash:
            problem(seq, "content changed after it was recorded")
        frontier.append(stored_hash)
        if matcher is not None:
            matcher.observe(seq, stored_hash, frontier)
        expected_prev, expected_seq = stored_hash, seq + 1
    result.events = count
    if expected_seq - 1 != head_seq or expected_prev != head_hash:
        problem(head_seq, "chain head does not match the last event")
    result.merkle_root = frontier.root()
    stored_frontier = head.merkle_frontier if head is not None else None
    if stored_frontier is not None and (
        MerkleFrontier.from_json(stored_frontier).root() != result.merkle_root
    ):
        problem(head_seq, "Merkle tree head does not match the events")
    if matcher is not None:
        for found in matcher.finish(expected_seq - 1):
            problem(found.seq, found.reason)
    return result


_VERIFY_COLUMNS = (
    "seq, {occurred_at}, actor, kind, entity_type, entity_id, CAST(payload AS TEXT), "
    "prev_hash, hash, channel, correlation_id"
)
# PostgreSQL formats the UTC timestamp itself (on its own core), saving a datetime per row.
_PG_OCCURRED_AT = "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"


def _event_rows(session: Session, *, upto: int, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    """Stored events up to seq `upto`, in order, straight from the driver in batches.

    The DB-API cursor skips SQLAlchemy's per-row processing, which is half the cost of
    a million-event verify; SQLite hands back its UTC timestamp text, PostgreSQL a
    server-side (named) cursor streams so memory stays flat.
    """
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    if sqlite:
        cursor = raw.cursor()
        columns = _VERIFY_COLUMNS.format(occurred_at="occurred_at")
        cursor.execute(f"SELECT {columns} FROM auditevent WHERE seq <= ? ORDER BY seq", (upto,))
    else:
        cursor = raw.cursor(name="agentops_audit_verify")
        cursor.itersize = 20_000  # type: ignore[attr-defined]
        columns = _VERIFY_COLUMNS.format(occurred_at=_PG_OCCURRED_AT)
        cursor.execute(f"SELECT {columns} FROM auditevent WHERE seq <= %s ORDER BY seq", (upto,))
    try:
        while batch := cursor.fetchmany(20_000):
            yield from batch
    finally:
        cursor.close()


def _stored_utc_iso(stored: str) -> str:
    # "2026-11-26 03:00:00.120000" (UTC, as SQLite stores it and PostgreSQL formats it
    # above) to what datetime.isoformat() gives, which is what the hash covers.
    if len(stored) == 26 and stored[10] == " ":
        if stored.endswith(".000000"):
            return f"{stored[:10]}T{stored[11:19]}+00:00"
        return f"{stored[:10]}T{stored[11:]}+00:00"
    return _utc_iso(datetime.fromisoformat(stored))


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat()


def _legacy_hash(row: tuple[Any, ...], iso: str) -> str | None:
    """The hash of an event whose stored payload is not canonical text (recorded pre-0003)."""
    seq, _, actor, kind, etype, eid, text_, prev, _, chan, corr = row
    try:
        payload = json.loads(text_)
    except ValueError:
        return None
    return event_hash(
        ChainedEvent(
            seq=seq,
            occurred_at=datetime.fromisoformat(iso),
            actor=actor,
            kind=kind,
            entity_type=etype,
            entity_id=eid,
            payload=payload,
            channel=chan,
            correlation_id=corr,
        ),
        prev,
    )


def verify_chain(session: Session) -> list[ChainProblem]:
    """Seal what is pending, then recompute every hash; an empty list means intact."""
    seal_visible(session)
    return verify_trail(session).problems


# --- checkpoints and exports -----------------------------------------------------------


def take_checkpoint(
    session: Session, *, directory: Path, key: "Ed25519PrivateKey", now: datetime | None = None
) -> "Checkpoint":
    """Seal what is pending, then sign the tree head into a checkpoint file in directory."""
    from agentops.audit.checkpoints import latest_size, write_checkpoint

    seal_visible(session)
    head = tree_head(session)
    since = min(latest_size(directory), head.tree_size)
    return write_checkpoint(
        directory,
        key=key,
        head=head,
        hashes_from_seq=since,
        event_hashes=iter_event_hashes(session, after_seq=since, upto_seq=head.tree_size),
        signed_at=now or utcnow(),
    )


def verify_with_checkpoints(
    session: Session, *, directory: Path, public_key: "Ed25519PublicKey"
) -> tuple[Verification, list[str], int]:
    """verify_trail plus every checkpoint in directory: (result, unusable files, checked)."""
    from agentops.audit.checkpoints import CheckpointMatcher, load_checkpoints

    checkpoints, unusable = load_checkpoints(directory, public_key=public_key)
    result = verify_trail(session, matcher=CheckpointMatcher(checkpoints))
    return result, unusable, len(checkpoints)


def export_records(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    agent: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Sealed events as export records, oldest first, optionally for one agent's story."""
    from agentops.audit.export import event_record

    related = _agent_entities(session, agent) if agent else None
    query = select(  # type: ignore[call-overload]
        *[_EVENTS.c[name] for name in _RECORD_COLUMNS], cast(_EVENTS.c.payload, Text)
    ).order_by(_EVENTS.c.seq)
    if since is not None:
        query = query.where(_EVENTS.c.occurred_at >= since)
    if until is not None:
        query = query.where(_EVENTS.c.occurred_at < until)
    for row in session.execute(query.execution_options(yield_per=5000)):
        values = dict(zip(_RECORD_COLUMNS, row[:-1], strict=True))
        payload = json.loads(row[-1])
        if related is not None and not _concerns(values, payload, agent, related):
            continue
        yield event_record(payload=payload, **values)


_RECORD_COLUMNS = (
    "seq",
    "occurred_at",
    "actor",
    "kind",
    "entity_type",
    "entity_id",
    "prev_hash",
    "hash",
    "channel",
    "correlation_id",
)


def _agent_entities(session: Session, name: str | None) -> set[tuple[str, str]]:
    from agentops.store.models import Action, Evaluation  # all tables: only exports need them

    agent = session.exec(select(Agent).where(Agent.name == name)).first()
    if agent is None:
        raise NotFoundError(f"no agent named {name!r} (see `agentops agents list`)")
    versions = session.exec(select(AgentVersion.id).where(AgentVersion.agent_id == agent.id)).all()
    actions = session.exec(select(Action.id).where(Action.agent_id == agent.id)).all()
    evaluations = session.exec(
        select(Evaluation.id).where(col(Evaluation.agent_version_id).in_(versions))
    ).all() if versions else []
    related = {("agent", str(agent.id))}
    related |= {("version", str(v)) for v in versions}
    related |= {("action", str(a)) for a in actions}
    related |= {("evaluation", str(e)) for e in evaluations}
    return related


def _concerns(
    values: dict[str, Any],
    payload: dict[str, Any],
    agent: str | None,
    related: set[tuple[str, str]],
) -> bool:
    if (values["entity_type"], values["entity_id"]) in related:
        return True
    return payload.get("agent") == agent


# --- single events ----------------------------------------------------------------------


def find_decision_entry(
    session: Session, *, kind: str, entity_type: str, entity_id: str
) -> tuple[dict[str, Any], bool] | None:
    """The newest entry of this kind about this entity, and whether it verifies.

    A sealed event verifies when its own hash recomputes; an entry still waiting for the
    sequencer is append-only in the database and counts as on the trail.
    """
    where = {"kind": kind, "entity_type": entity_type, "entity_id": entity_id}
    sealed = _newest_sealed(session, **where)
    if sealed is None:
        pending = _newest_pending(session, **where)
        if pending is not None:
            return json.loads(pending.payload), True
        # The sequencer may have sealed the entry between the two reads (it moves a pending
        # entry into the chain in one transaction): then the chain has it now.
        sealed = _newest_sealed(session, **where)
        if sealed is None:
            return None
    return dict(sealed.payload), event_intact(session, seq=sealed.seq)


def newest_payload(
    session: Session, *, kind: str, entity_type: str, entity_id: str
) -> dict[str, Any] | None:
    """The payload of the newest entry of this kind about this entity, sealed or not yet."""
    where = {"kind": kind, "entity_type": entity_type, "entity_id": entity_id}
    # An entry still waiting for the sequencer is newer than every sealed one.
    pending = _newest_pending(session, **where)
    if pending is not None:
        return json.loads(pending.payload)  # type: ignore[no-any-return]
    sealed = _newest_sealed(session, **where)
    return None if sealed is None else dict(sealed.payload)


def _newest_sealed(
    session: Session, *, kind: str, entity_type: str, entity_id: str
) -> AuditEvent | None:
    return session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.kind == kind,
            AuditEvent.entity_type == entity_type,
            AuditEvent.entity_id == entity_id,
        )
        .order_by(col(AuditEvent.seq).desc())
    ).first()


def _newest_pending(
    session: Session, *, kind: str, entity_type: str, entity_id: str
) -> AuditPending | None:
    return session.exec(
        select(AuditPending)
        .where(
            AuditPending.kind == kind,
            AuditPending.entity_type == entity_type,
            AuditPending.entity_id == entity_id,
        )
        .order_by(col(AuditPending.id).desc())
    ).first()


def event_intact(session: Session, *, seq: int) -> bool:
    """Whether one sealed event's hash still recomputes from its stored content."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    columns = _VERIFY_COLUMNS.format(occurred_at="occurred_at" if sqlite else _PG_OCCURRED_AT)
    row = session.execute(
        text(f"SELECT {columns} FROM auditevent WHERE seq = :seq"), {"seq": seq}
    ).first()
    if row is None:
        return False
    seq_, when, actor, kind, etype, eid, text_, prev, stored_hash, chan, corr = tuple(row)
    iso = _stored_utc_iso(when if isinstance(when, str) else str(when))
    fast = hash_fields(seq_, iso, actor, kind, etype, eid, text_, prev, chan, corr)
    return fast == stored_hash or _legacy_hash(tuple(row), iso) == stored_hash  # type: ignore[no-any-return]
