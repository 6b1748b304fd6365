"""Retention: remove an archived range of the trail, with two people and a tombstone.

Nothing removes audit events on its own. A range can go only after it was archived
(`agentops audit archive`), one person asked for its removal and a second, different
person confirmed it; the removal needs the database owner's role (only the owner can
lift the append-only triggers) and leaves an `audit.purged` tombstone in the chain with
the archive's SHA-256 and the last removed hash and Merkle edge, so verification
continues from there and the archive proves what was removed.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlmodel import Session, col, func, select

from agentops.audit.export import JSONL_NAME, MANIFEST_NAME, file_sha256, verify_export
from agentops.audit.service import (
    iter_event_hashes,
    purge_anchor,
    record_event,
    seal_visible,
    verify_trail,
)
from agentops.errors import RuleViolation
from agentops.store.models import AuditEvent

REQUESTED, PURGED = "audit.purge_requested", "audit.purged"
_SQLITE_GUARD = (
    "CREATE TRIGGER auditevent_no_delete BEFORE DELETE ON auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
)


@dataclass(frozen=True)
class ArchivedRange:
    """An archive directory that checks out, and the range of the trail it holds."""

    directory: Path
    manifest_sha256: str
    first_seq: int
    last_seq: int
    last_hash: str
    events: int


def checked_archive(
    session: Session, *, directory: Path, public_key: Ed25519PublicKey
) -> ArchivedRange:
    """The archive's range, once it verifies and is the oldest part of the stored trail."""
    check = verify_export(directory, public_key=public_key)
    if check.problems:
        raise RuleViolation(f"the archive in {directory} does not verify: {check.problems[0]}")
    manifest = check.manifest
    first, last = manifest["first_seq"], manifest["last_seq"]
    if not check.events or check.events != last - first + 1:
        raise RuleViolation("the archive must hold one unbroken range of events")
    oldest = session.exec(select(func.min(AuditEvent.seq))).one()
    if oldest != first:
        raise RuleViolation(
            f"the archive starts at event {first}, the stored trail at {oldest}: "
            "only the oldest events can be removed"
        )
    last_hash = _last_hash(directory / JSONL_NAME)
    stored = session.exec(select(AuditEvent.hash).where(AuditEvent.seq == last)).first()
    if stored != last_hash:
        raise RuleViolation(f"event {last} in the archive differs from the stored trail")
    return ArchivedRange(
        directory=directory,
        manifest_sha256=file_sha256(directory / MANIFEST_NAME),
        first_seq=first,
        last_seq=last,
        last_hash=last_hash,
        events=check.events,
    )


def _last_hash(jsonl: Path) -> str:
    last = ""
    with jsonl.open(encoding="utf-8") as handle:
        for line in handle:
            last = line
    return str(json.loads(last)["hash"])


def request_purge(session: Session, *, archive: ArchivedRange, actor: str) -> None:
    """The first person asks to remove an archived range (an audit event, nothing removed)."""
    record_event(
        session,
        actor=actor,
        kind=REQUESTED,
        entity_type="audit",
        entity_id=f"{archive.first_seq}-{archive.last_seq}",
        payload=_facts(archive),
        channel="cli",
    )


def confirm_purge(session: Session, *, archive: ArchivedRange, actor: str) -> int:
    """A second person confirms: remove the range and leave a tombstone; returns how many."""
    seal_visible(session)
    requests = session.exec(
        select(AuditEvent).where(AuditEvent.kind == REQUESTED).order_by(col(AuditEvent.seq))
    ).all()
    asked = [e for e in requests if e.payload.get("manifest_sha256") == archive.manifest_sha256]
    if not asked:
        raise RuleViolation("nobody asked to remove this archive's range: run purge-request first")
    if all(e.actor == actor for e in asked):
        raise RuleViolation(
            f"{actor} asked for this removal: a second, different person must confirm it"
        )
    result = verify_trail(session)
    if not result.intact:
        raise RuleViolation("the trail does not verify: fix that before removing anything")
    anchor = purge_anchor(session)
    frontier = anchor.frontier
    for stored_hash in iter_event_hashes(
        session, after_seq=anchor.last_seq, upto_seq=archive.last_seq
    ):
        frontier.append(stored_hash)
    removed = _delete_range(session, first=archive.first_seq, last=archive.last_seq)
    record_event(
        session,
        actor=actor,
        kind=PURGED,
        entity_type="audit",
        entity_id=f"{archive.first_seq}-{archive.last_seq}",
        payload={
            **_facts(archive),
            "last_hash": archive.last_hash,
            "merkle_frontier": frontier.to_json(),
            "requested_by": sorted({e.actor for e in asked if e.actor != actor}),
            "confirmed_by": actor,
            "removed": removed,
        },
        channel="cli",
    )
    return removed


def _facts(archive: ArchivedRange) -> dict[str, Any]:
    return {
        "archive": str(archive.directory),
        "manifest_sha256": archive.manifest_sha256,
        "first_seq": archive.first_seq,
        "last_seq": archive.last_seq,
        "events": archive.events,
    }


def _delete_range(session: Session, *, first: int, last: int) -> int:
    delete = text("DELETE FROM auditevent WHERE seq BETWEEN :first AND :last")
    params = {"first": first, "last": last}
    if session.get_bind().dialect.name == "postgresql":
        # ALTER TABLE needs the table's owner: the application role cannot do this.
        session.execute(text("ALTER TABLE auditevent DISABLE TRIGGER auditevent_append_only"))
        removed = session.execute(delete, params).rowcount  # type: ignore[attr-defined]
        session.execute(text("ALTER TABLE auditevent ENABLE TRIGGER auditevent_append_only"))
    else:
        session.execute(text("DROP TRIGGER auditevent_no_delete"))
        removed = session.execute(delete, params).rowcount  # type: ignore[attr-defined]
        session.execute(text(_SQLITE_GUARD))
    return int(removed)
