"""Schema migrations (alembic) for the agentops store.

Every command checks the schema, so that check reads the stored revision with one query and
compares it to HEAD_REVISION; alembic (a quarter of a second to import) loads only when a
migration actually runs or a `db` command asks.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# The newest migration's revision: update it with every new migration (a test checks it
# against the scripts in migrations/versions).
HEAD_REVISION = "0013"

# alembic's default table for the applied revision.
VERSION_TABLE = "alembic_version"


def alembic_config(engine: Engine) -> "Config":
    """An alembic config that runs on the given engine, no alembic.ini needed."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    """The newest revision the migration scripts define."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def stored_revision(engine: Engine) -> str | None:
    """The revision recorded in the database, read without alembic (None when there is none)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    # One row on a linear history; anything else is for alembic to sort out.
    return rows[0][0] if len(rows) == 1 else None


def upgrade(engine: Engine, *, revision: str = "head") -> None:
    """Bring the database schema up to the revision."""
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def ensure_schema(engine: Engine) -> bool:
    """Upgrade to head when behind; True if anything ran."""
    if stored_revision(engine) == HEAD_REVISION:
        return False
    upgrade(engine)
    return True


def downgrade_to_base(engine: Engine) -> None:
    """Undo every migration (used to prove migrations are reversible)."""
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
