import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from agentops.agents.service import register_agent
from agentops.audit.service import (
    AuditTamperError,
    event_count,
    export_events,
    iter_events,
    record_event,
    verify_chain,
)
from agentops.store.models import AuditEvent


def test_chain_verifies_and_detects_edited_payload(session: Session) -> None:
    register_agent(
        session, name="airline", owner_email="o@x.io", backup_email="b@x.io", actor="test"
    )
    record_event(session, actor="t", kind="custom", entity_type="x", entity_id=1, payload={"a": 1})
    session.commit()
    events = list(iter_events(session))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert verify_chain(session) == []

    # A direct SQL edit bypasses the ORM guard: verification must catch it.
    session.exec(text("UPDATE auditevent SET actor = 'mallory' WHERE seq = 2"))  # type: ignore[call-overload]
    session.commit()
    session.expire_all()
    problems = verify_chain(session)
    assert [p.seq for p in problems] == [2]
    assert "changed" in problems[0].reason


def test_deleted_event_is_detected(session: Session) -> None:
    for i in range(3):
        record_event(session, actor="t", kind="k", entity_type="x", entity_id=i)
    session.commit()
    session.exec(text("DELETE FROM auditevent WHERE seq = 2"))  # type: ignore[call-overload]
    session.commit()
    session.expire_all()
    reasons = [p.reason for p in verify_chain(session)]
    assert any("missing" in r for r in reasons)


def test_orm_refuses_to_change_events(session: Session) -> None:
    record_event(session, actor="t", kind="k", entity_type="x", entity_id=1)
    session.commit()
    event = session.exec(select(AuditEvent)).one()
    event.actor = "mallory"
    session.add(event)
    with pytest.raises(AuditTamperError):
        session.commit()


def test_export_formats(session: Session) -> None:
    record_event(session, actor="t", kind="k", entity_type="x", entity_id=1, payload={"n": 1})
    session.commit()
    events = list(iter_events(session))
    jsonl = export_events(events, fmt="jsonl")
    assert jsonl.count("\n") == 1 and '"payload":{"n":1}' in jsonl
    csv_text = export_events(events, fmt="csv")
    assert csv_text.splitlines()[0].startswith("seq,occurred_at,actor")
    with pytest.raises(ValueError):
        export_events(events, fmt="xml")


def test_newest_events_come_back_in_chain_order(session: Session) -> None:
    for i in range(5):
        record_event(session, actor="t", kind=f"k{i}", entity_type="x", entity_id=i)
    session.commit()
    assert [e.kind for e in iter_events(session, newest=2)] == ["k3", "k4"]
    assert [e.kind for e in iter_events(session, kind_prefix="k1", newest=3)] == ["k1"]
    assert event_count(session) == 5
