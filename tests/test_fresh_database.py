"""Every test starts from the same freshly migrated store, however the last one left it."""

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, func, select

from agentops.audit.chain import GENESIS_HASH
from agentops.audit.sealer import wait_until_sealed
from agentops.store.core_tables import AuditChainHead
from agentops.store.migrate import HEAD_REVISION, stored_revision
from agentops.store.models import Agent
from conftest import TEST_DATABASE, admin_engine
from factories import agent_named
from fresh_database import Template, fingerprint, reset


def chain_head(session: Session) -> tuple[int, str]:
    head = session.exec(select(AuditChainHead)).one()
    return head.seq, head.hash


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_gets_an_empty_store_at_the_newest_revision(
    engine: Engine, session: Session, turn: int
) -> None:
    # Run twice: the second run sees nothing of the first's agent, ids or audit events.
    assert stored_revision(engine) == HEAD_REVISION
    assert session.exec(select(func.count()).select_from(Agent)).one() == 0
    assert chain_head(session) == (0, GENESIS_HASH)  # the row the migrations insert
    agent = agent_named(session)
    session.commit()
    assert agent.id == 1  # sequences start again
    assert wait_until_sealed(engine)
    session.expire_all()
    assert chain_head(session)[0] > 0


@pytest.mark.skipif(TEST_DATABASE != "sqlite", reason="the SQLite copy is a file")
def test_the_sqlite_copy_keeps_the_journal_mode_the_app_sets(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


postgres_only = pytest.mark.skipif(
    TEST_DATABASE != "postgresql", reason="the template database is PostgreSQL's"
)


@postgres_only
def test_an_unchanged_schema_is_emptied_in_place(
    engine: Engine, session: Session, migrated_template: Template
) -> None:
    agent_named(session)
    session.commit()
    assert wait_until_sealed(engine)
    with engine.begin() as conn:
        assert migrated_template.restore(conn)
    session.expire_all()
    assert session.exec(select(func.count()).select_from(Agent)).one() == 0
    assert chain_head(session) == (0, GENESIS_HASH)


@postgres_only
def test_a_changed_schema_is_recreated_from_the_template(
    engine: Engine, database_url: str, migrated_template: Template
) -> None:
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE auditevent DISABLE TRIGGER USER"))
    with engine.begin() as conn:
        assert not migrated_template.restore(conn)
    engine.dispose()
    admin = admin_engine()
    name = str(make_url(database_url).database)
    reset(admin=admin, url=database_url, name=name, template=migrated_template)
    admin.dispose()
    with engine.connect() as conn:
        assert fingerprint(conn) == migrated_template.fingerprint
