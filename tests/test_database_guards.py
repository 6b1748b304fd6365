"""PostgreSQL as the last line: what the application role cannot do to the trail (0009)."""

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from agentops.agents.signin import register_person
from agentops.audit.chain import canonical_json
from agentops.audit.service import record_event, seal_all, verify_trail
from agentops.store.models import AuditEvent, AuditPending, Person, Role, utcnow
from agentops.store.roles import app_role_grants
from conftest import TEST_DATABASE

pytestmark = pytest.mark.skipif(
    TEST_DATABASE != "postgresql", reason="roles and SECURITY DEFINER are PostgreSQL's"
)


@pytest.fixture
def app_engine(engine: Engine) -> Iterator[Engine]:
    """An engine logged in as an application role with the documented grants."""
    role = f"agentops_app_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
        for statement in app_role_grants(role):
            connection.execute(text(statement))
    url = make_url(str(engine.url.render_as_string(hide_password=False))).set(username=role)
    app = create_engine(url)
    try:
        yield app
    finally:
        app.dispose()
        with engine.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))


@pytest.fixture
def people(engine: Engine) -> None:
    with Session(engine) as session:
        register_person(session, email="olivia@x.io", role=Role.owner, actor="test")
        register_person(session, email="rita@x.io", role=Role.reviewer, actor="test")
        session.commit()
    seal_all(engine)


def refused(app_engine: Engine, sql: str, **params: object) -> str:
    """Run one statement as the app role; return the database's refusal."""
    with pytest.raises(DBAPIError) as caught, app_engine.begin() as connection:
        connection.execute(text(sql), params)
    return str(caught.value.orig)


PENDING = (
    "INSERT INTO auditpending (occurred_at, actor, channel, kind, entity_type, entity_id, "
    "payload) VALUES (:at, :actor, :channel, 'approval.decided', 'action', '1', '{}')"
)


def test_the_app_cannot_backdate_or_invent_a_person_in_a_pending_entry(
    app_engine: Engine, people: None
) -> None:
    backdated = refused(
        app_engine,
        PENDING,
        at=utcnow() - timedelta(days=2000),
        actor="olivia@x.io",
        channel="slack",
    )
    assert "not the database's time" in backdated
    stranger = refused(app_engine, PENDING, at=utcnow(), actor="mallory@x.io", channel="slack")
    assert "not a registered person" in stranger


def test_the_app_cannot_delete_a_pending_entry(app_engine: Engine, people: None) -> None:
    with Session(app_engine) as session:
        record_event(session, actor="t", kind="k", entity_type="x", entity_id=1)
        session.flush()
        # The entry stays pending within this transaction: try to drop it before sealing.
        with pytest.raises(DBAPIError, match="permission denied"):
            session.execute(text("DELETE FROM auditpending"))
        session.rollback()
    assert "permission denied" in refused(app_engine, "DELETE FROM auditpending")


def test_the_app_cannot_move_the_chain_head_or_seal_made_up_events(
    app_engine: Engine, people: None
) -> None:
    assert "permission denied" in refused(
        app_engine, "UPDATE auditchainhead SET hash = 'x', seq = seq + 5"
    )
    assert "permission denied" in refused(
        app_engine,
        "INSERT INTO auditevent (seq, occurred_at, actor, kind, entity_type, entity_id, payload, "
        "prev_hash, hash) VALUES (999, now(), 'x', 'k', 'x', '1', '{}', 'a', 'b')",
    )
    bogus = refused(
        app_engine, "SELECT agentops_seal_audit(ARRAY[424242], ARRAY['ab'], NULL::json)"
    )
    assert "only pending entries can be sealed" in bogus


def test_a_role_change_by_raw_sql_is_on_the_trail(
    app_engine: Engine, engine: Engine, people: None
) -> None:
    with app_engine.begin() as connection:
        connection.execute(text("UPDATE person SET role = 'admin' WHERE email = 'rita@x.io'"))
        # In the same transaction as the change itself.
        written = (
            connection.execute(
                text("SELECT payload FROM auditpending WHERE kind = 'db.person_changed'")
            )
            .scalars()
            .all()
        )
        assert any('"role":{"from":"reviewer","to":"admin"}' in text for text in written), written
        # Written as canonical JSON, so exports re-serialise it to the same hash.
        assert all(canonical_json(json.loads(text)) == text for text in written)
    seal_all(app_engine)
    with Session(engine) as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "db.person_changed")
        ).all()
        change = events[-1]
        assert change.payload["changed"]["role"] == {"from": "reviewer", "to": "admin"}
        assert change.actor.startswith("db:agentops_app_") and change.channel == "db"


def test_the_app_role_still_records_and_seals_and_the_trail_verifies(
    app_engine: Engine, people: None
) -> None:
    with Session(app_engine) as session:
        rita = session.exec(select(Person).where(Person.email == "rita@x.io")).one()
        record_event(
            session,
            actor=rita.email,
            kind="review.submitted",
            entity_type="review",
            entity_id=1,
            channel="web",
        )
        session.commit()
    assert seal_all(app_engine) >= 1
    with Session(app_engine) as session:
        assert session.exec(select(AuditPending)).all() == []
        assert verify_trail(session).intact


def test_young_events_cannot_be_deleted_even_by_the_owner(engine: Engine, people: None) -> None:
    with (
        pytest.raises(DBAPIError, match="younger than the minimum age of 365 days"),
        engine.begin() as connection,
    ):
        connection.execute(text("ALTER TABLE auditevent DISABLE TRIGGER auditevent_append_only"))
        connection.execute(text("DELETE FROM auditevent"))
