"""What an attacker with the database owner's role can do: switch the append-only triggers off."""

from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from agentops.audit.chain import event_hash_from_text
from agentops.store.models import AuditEvent


def without_triggers(session: Session, *statements: str, **params: Any) -> None:
    """Run raw SQL on the audit tables with the append-only triggers out of the way."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(text("ALTER TABLE auditevent DISABLE TRIGGER USER"))  # type: ignore[call-overload]
    else:
        for name in ("auditevent_no_update", "auditevent_no_delete"):
            session.exec(text(f"DROP TRIGGER IF EXISTS {name}"))  # type: ignore[call-overload]
    for statement in statements:
        session.exec(text(statement), params=params)  # type: ignore[call-overload]
    session.commit()
    session.expire_all()


def rewrite_forward(session: Session, *, seq: int, actor: str) -> None:
    """Change one event and recompute every hash after it, and the head: a careful forger."""
    without_triggers(
        session, "UPDATE auditevent SET actor = :actor WHERE seq = :seq", actor=actor, seq=seq
    )
    rows = session.exec(  # type: ignore[call-overload]
        text(
            "SELECT seq, occurred_at, actor, kind, entity_type, entity_id, "
            "CAST(payload AS TEXT), prev_hash, channel, correlation_id FROM auditevent "
            "WHERE seq >= :seq ORDER BY seq"
        ),
        params={"seq": seq},
    ).all()
    typed = {e.seq: e.occurred_at for e in session.query(AuditEvent).filter(AuditEvent.seq >= seq)}
    prev = rows[0][7]
    for row in rows:
        digest = event_hash_from_text(
            seq=row[0],
            occurred_at=typed[row[0]].isoformat(),
            actor=row[2],
            kind=row[3],
            entity_type=row[4],
            entity_id=row[5],
            payload_text=row[6],
            prev_hash=prev,
            channel=row[8],
            correlation_id=row[9],
        )
        session.exec(  # type: ignore[call-overload]
            text("UPDATE auditevent SET prev_hash = :prev, hash = :hash WHERE seq = :seq"),
            params={"prev": prev, "hash": digest, "seq": row[0]},
        )
        prev = digest
    session.exec(  # type: ignore[call-overload]
        text("UPDATE auditchainhead SET hash = :hash, merkle_frontier = NULL WHERE id = 1"),
        params={"hash": prev},
    )
    session.commit()
    session.expire_all()
