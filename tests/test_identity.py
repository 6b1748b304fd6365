"""One identity: Actor and Channel on the ground floor, named by the audit trail itself."""

import ast
from pathlib import Path

from sqlmodel import Session, select

from agentops.agents.actors import Actor as ResolvedActor
from agentops.agents.service import ensure_person
from agentops.audit.service import record_event, seal_visible
from agentops.identity import Actor, Channel, system_actor
from agentops.store.models import AuditEvent, Role

IDENTITY = Path(__file__).resolve().parents[1] / "src" / "agentops" / "identity.py"


def test_identity_is_the_ground_floor() -> None:
    tree = ast.parse(IDENTITY.read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("agentops")]
    assert ResolvedActor is Actor  # the agents layer names the very same class


def test_the_trail_records_an_actor_with_its_channel(session: Session) -> None:
    # A registered person: on PostgreSQL the database refuses web entries in anyone else's name.
    olivia = ensure_person(session, email="olivia@x.io", role=Role.owner)
    session.flush()
    record_event(
        session,
        actor=Actor(label="olivia@x.io", channel=Channel.web, person_id=olivia.id),
        kind="test.acted",
        entity_type="test",
        entity_id=1,
    )
    record_event(session, actor=system_actor("sweeper"), kind="test.swept", entity_type="test",
                 entity_id=2)  # fmt: skip
    record_event(session, actor="legacy", kind="test.plain", entity_type="test", entity_id=3)
    session.commit()
    seal_visible(session)
    session.commit()
    rows = session.exec(select(AuditEvent).where(AuditEvent.kind.startswith("test."))).all()  # type: ignore[attr-defined]
    assert sorted((e.kind, e.actor, e.channel) for e in rows) == [
        ("test.acted", "olivia@x.io", "web"),
        ("test.plain", "legacy", None),
        ("test.swept", "sweeper", "flow"),
    ]
