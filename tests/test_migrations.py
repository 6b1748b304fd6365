"""Alembic migrations build exactly the schema the models describe, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.settings import get_settings
from agentops.store.db import make_engine
from agentops.store.migrate import (
    HEAD_REVISION,
    current_revision,
    downgrade_to_base,
    ensure_schema,
    head_revision,
    stored_revision,
    upgrade,
)


def test_upgrade_matches_models(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    assert stored_revision(engine) is None
    assert ensure_schema(engine) is True
    assert current_revision(engine) == head_revision(engine)
    assert stored_revision(engine) == current_revision(engine)
    assert ensure_schema(engine) is False
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diffs == []


def test_head_revision_constant_names_the_newest_migration(database_url: str) -> None:
    # ensure_schema compares against the constant so commands need not import alembic.
    engine = make_engine(database_url)
    assert head_revision(engine) == HEAD_REVISION
    engine.dispose()


def test_ensure_schema_upgrades_a_store_left_behind(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine, revision="0001")
    assert stored_revision(engine) == "0001"
    assert ensure_schema(engine) is True
    assert stored_revision(engine) == HEAD_REVISION
    engine.dispose()


def test_downgrade_to_empty_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    downgrade_to_base(engine)
    assert current_revision(engine) is None
    assert stored_revision(engine) is None
    with engine.connect() as connection:
        assert inspect(connection).get_table_names() == ["alembic_version"]
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    engine.dispose()


def test_db_upgrade_command(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOPS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "upgraded from empty" in " ".join(first.output.split())
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0 and "already at revision" in " ".join(again.output.split())
    get_settings.cache_clear()
