"""A refusal recorded on the trail is committed before it is raised, on every path."""

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from agentops.agents.service import ensure_person
from agentops.audit.service import iter_events, record_event
from agentops.cli.app import app
from agentops.store.db import write_session
from agentops.store.models import AuditPending, Role
from agentops.store.refusals import refusal_kept
from factories import breach_rollback, degraded_fleet


class Refused(Exception):
    pass


def test_a_refusal_keeps_what_was_written_and_other_errors_roll_back(engine: Engine) -> None:
    def write(kind: str, error: Exception) -> None:
        with write_session(engine) as session, refusal_kept(session, Refused):
            record_event(session, actor="t", kind=kind, entity_type="t", entity_id=1)
            raise error

    with pytest.raises(Refused):
        write("kept", Refused("no"))
    with pytest.raises(ValueError):
        write("rolled-back", ValueError("bug"))
    with Session(engine) as session:
        kinds = [e.kind for e in iter_events(session)] + [
            row.kind for row in session.exec(select(AuditPending))
        ]
    assert "kept" in kinds and "rolled-back" not in kinds


def test_a_refused_cli_cancel_stays_on_the_trail(engine: Engine, session: Session) -> None:
    action_id = breach_rollback(session, degraded_fleet(session)).id
    ensure_person(session, email="mallory@x.io", role=Role.owner)
    session.commit()
    result = CliRunner().invoke(
        app, ["actions", "cancel", str(action_id), "--as", "mallory@x.io", "--reason", "mine"]
    )
    assert result.exit_code == 2 and "only the agent's owner" in result.output
    with Session(engine) as reading:
        kinds = [e.kind for e in iter_events(reading)] + [
            row.kind for row in reading.exec(select(AuditPending))
        ]
    assert "action.cancel_refused" in kinds
