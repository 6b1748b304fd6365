"""Retention: remove an archived range of the trail, with two admins and a tombstone.

Nothing removes audit events on its own. A range can go only after it was archived
(`agentops audit archive`), every event in it is older than the minimum age, one
registered admin asked for its removal on the CLI and a second, different admin
confirmed it through their own web session: the web issues that admin a one-time
confirmation (only its hash is stored) that the CLI then redeems, so one shell user
typing two `--as` values cannot purge alone. The removal needs the database owner's role
(only the owner can lift the append-only triggers; PostgreSQL also refuses events younger
than the minimum age) and leaves an `audit.purged` tombstone in the chain naming both
admins, with the archive's SHA-256 and the last removed hash and Merkle edge, so
verification continues from there and the archive proves what was removed.
"""

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, func, select

from agentops.audit.export import JSONL_NAME, MANIFEST_NAME, file_sha256, verify_export
from agentops.audit.service import (
    iter_event_hashes,
    purge_anchor,
    record_event,
    seal_visible,
    verify_trail,
)
from agentops.errors import NotFoundError, RuleViolation
from agentops.identity import normalise_email
from agentops.store.models import AuditEvent, Person, PurgeConfirmation, Role, utcnow

REQUESTED, PURGED = "audit.purge_requested", "audit.purged"
CONFIRMATION_ISSUED = "audit.purge_confirmation_issued"
PURGE_ROLE = Role.admin
CONFIRMATION_MINUTES = 15
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


def purge_admin(session: Session, *, email: str, what: str) -> Person:
    """The registered admin behind an email given for a purge step, or a clear refusal."""
    if any(ord(c) < 32 or ord(c) == 127 for c in email):
        raise RuleViolation(f"{what}: an email address cannot contain control characters")
    email = normalise_email(email)
    person = session.exec(select(Person).where(Person.email == email)).first()
    if person is None:
        raise NotFoundError(f"{what}: {email[:80]!r} is not a registered person")
    if person.role != PURGE_ROLE:
        raise RuleViolation(
            f"{what} needs the {PURGE_ROLE.value} role; {email} is a {Role(person.role).value}"
        )
    return person


def check_age(
    session: Session, *, archive: ArchivedRange, min_age_days: int, now: datetime | None = None
) -> None:
    """Refuse when the newest archived event is younger than the minimum age."""
    newest = session.exec(
        select(AuditEvent.occurred_at).where(AuditEvent.seq == archive.last_seq)
    ).first()
    cutoff = (now or utcnow()) - timedelta(days=min_age_days)
    if newest is not None and newest > cutoff:
        raise RuleViolation(
            f"event {archive.last_seq} is younger than the minimum age of {min_age_days} days "
            "(AGENTOPS_AUDIT_PURGE_MIN_AGE_DAYS): archive an older range"
        )


def request_purge(
    session: Session, *, archive: ArchivedRange, actor: str, min_age_days: int
) -> None:
    """A registered admin asks to remove an archived range (an audit event, nothing removed)."""
    person = purge_admin(session, email=actor, what="asking for a purge")
    check_age(session, archive=archive, min_age_days=min_age_days)
    record_event(
        session,
        actor=person.email,
        kind=REQUESTED,
        entity_type="audit",
        entity_id=f"{archive.first_seq}-{archive.last_seq}",
        payload=_facts(archive),
        channel="cli",
    )


def open_requests(session: Session) -> list[AuditEvent]:
    """Purge requests whose range has not been removed yet, oldest first."""
    seal_visible(session)
    events = session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.kind).in_([REQUESTED, PURGED]))
        .order_by(col(AuditEvent.seq))
    ).all()
    done = {e.payload.get("manifest_sha256") for e in events if e.kind == PURGED}
    return [
        e for e in events if e.kind == REQUESTED and e.payload.get("manifest_sha256") not in done
    ]


def issue_confirmation(
    session: Session,
    *,
    manifest_sha256: str,
    person_id: int,
    channel: str,
    now: datetime | None = None,
) -> str:
    """A one-time confirmation for the second admin, shown once in their own session."""
    now = now or utcnow()
    person = session.get(Person, person_id)
    if person is None:
        raise NotFoundError("you are not a registered person")
    purge_admin(session, email=person.email, what="confirming a purge")
    asked = [
        e for e in open_requests(session) if e.payload.get("manifest_sha256") == manifest_sha256
    ]
    if not asked:
        raise RuleViolation("nobody asked to remove that archive's range")
    if all(e.actor == person.email for e in asked):
        raise RuleViolation(
            f"{person.email} asked for this removal: a second, different admin must confirm it"
        )
    token = secrets.token_urlsafe(24)
    confirmation = PurgeConfirmation(
        token_sha256=_digest(token),
        person_id=person_id,
        manifest_sha256=manifest_sha256,
        expires_at=now + timedelta(minutes=CONFIRMATION_MINUTES),
        created_at=now,
    )
    session.add(confirmation)
    session.flush()
    record_event(
        session,
        actor=person.email,
        kind=CONFIRMATION_ISSUED,
        entity_type="audit",
        entity_id=asked[0].entity_id,
        payload={
            "manifest_sha256": manifest_sha256,
            "expires_at": confirmation.expires_at.isoformat(),
        },
        channel=channel,
    )
    return token


def _redeem(
    session: Session, *, token: str, archive: ArchivedRange, now: datetime
) -> tuple[Person, PurgeConfirmation]:
    found = session.exec(
        select(PurgeConfirmation)
        .where(PurgeConfirmation.token_sha256 == _digest(token.strip()))
        .with_for_update()
    ).first()
    if found is None or found.manifest_sha256 != archive.manifest_sha256:
        raise RuleViolation(
            "this confirmation is not valid for this archive: the second admin gets one on "
            "the web page /admin/purge"
        )
    if found.used_at is not None:
        raise RuleViolation("this confirmation was already used: ask for a new one")
    if found.expires_at <= now:
        raise RuleViolation("this confirmation has expired: ask for a new one")
    person = session.get(Person, found.person_id)
    assert person is not None
    purge_admin(session, email=person.email, what="confirming a purge")
    found.used_at = now
    session.add(found)
    session.flush()
    return person, found


def confirm_purge(
    session: Session, *, archive: ArchivedRange, confirmation: str, min_age_days: int
) -> int:
    """Redeem the second admin's confirmation: remove the range, leave a tombstone."""
    now = utcnow()
    seal_visible(session)
    requests = session.exec(
        select(AuditEvent).where(AuditEvent.kind == REQUESTED).order_by(col(AuditEvent.seq))
    ).all()
    asked = [e for e in requests if e.payload.get("manifest_sha256") == archive.manifest_sha256]
    if not asked:
        raise RuleViolation("nobody asked to remove this archive's range: run purge-request first")
    check_age(session, archive=archive, min_age_days=min_age_days, now=now)
    confirmer, used = _redeem(session, token=confirmation, archive=archive, now=now)
    requesters = sorted(
        {
            e.actor
            for e in asked
            if e.actor != confirmer.email
            and session.exec(
                select(Person).where(Person.email == e.actor, Person.role == PURGE_ROLE)
            ).first()
        }
    )
    if not requesters:
        raise RuleViolation(
            f"{confirmer.email} asked for this removal: a second, different admin must confirm it"
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
    removed = _delete_range(
        session, first=archive.first_seq, last=archive.last_seq, min_age_days=min_age_days
    )
    record_event(
        session,
        actor=confirmer.email,
        kind=PURGED,
        entity_type="audit",
        entity_id=f"{archive.first_seq}-{archive.last_seq}",
        payload={
            **_facts(archive),
            "last_hash": archive.last_hash,
            "merkle_frontier": frontier.to_json(),
            "requested_by": requesters,
            "requested_via": "cli",
            "confirmed_by": confirmer.email,
            "confirmed_via": "web",
            "confirmation_id": used.id,
            "min_age_days": min_age_days,
            "removed": removed,
        },
        channel="cli",
    )
    return removed


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _facts(archive: ArchivedRange) -> dict[str, Any]:
    return {
        "archive": str(archive.directory),
        "manifest_sha256": archive.manifest_sha256,
        "first_seq": archive.first_seq,
        "last_seq": archive.last_seq,
        "events": archive.events,
    }


def _delete_range(session: Session, *, first: int, last: int, min_age_days: int) -> int:
    delete = text("DELETE FROM auditevent WHERE seq BETWEEN :first AND :last")
    params = {"first": first, "last": last}
    if session.get_bind().dialect.name != "postgresql":
        session.execute(text("DROP TRIGGER auditevent_no_delete"))
        removed = session.execute(delete, params).rowcount  # type: ignore[attr-defined]
        session.execute(text(_SQLITE_GUARD))
        return int(removed)
    # The database checks the minimum age itself (migration 0009); this says which one.
    session.execute(
        text("SELECT set_config('agentops.purge_min_age_days', :days, true)"),
        {"days": str(min_age_days)},
    )
    try:
        # ALTER TABLE needs the table's owner: the application role cannot do this.
        session.execute(text("ALTER TABLE auditevent DISABLE TRIGGER auditevent_append_only"))
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42501":
            raise RuleViolation(
                "removing audit events needs the owner of table auditevent (to lift its "
                "append-only trigger); this database role lacks that privilege: run "
                "purge-confirm with the owner's AGENTOPS_DATABASE_URL"
            ) from None
        raise
    try:
        removed = session.execute(delete, params).rowcount  # type: ignore[attr-defined]
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "refused"
        raise RuleViolation(f"the database refused the removal: {reason}") from None
    session.execute(text("ALTER TABLE auditevent ENABLE TRIGGER auditevent_append_only"))
    return int(removed)
