"""`agentops status`: the readiness checks `/readyz` serves, for operators at a terminal."""

import contextlib

import typer
from rich.table import Table

from agentops.cli.common import console, user_errors
from agentops.cli.safe_text import styled


@user_errors
def status() -> None:
    """Check the store, the Slack outbox, Prefect and the last sweep; exit 1 when not ready."""
    from sqlalchemy.exc import SQLAlchemyError

    from agentops.health.readiness import readiness
    from agentops.settings import get_settings
    from agentops.store.db import engine_scope
    from agentops.store.migrate import ensure_schema

    with engine_scope() as engine:
        # An unreachable store is the first check's answer, not an error here.
        with contextlib.suppress(SQLAlchemyError):
            ensure_schema(engine)
        checks = readiness(engine, settings=get_settings())
    table = Table("check", "state", "detail")
    for check in checks:
        state = ("ok", "green") if check.ok else ("NOT READY", "bold red")
        table.add_row(check.name, styled(state), styled(check.detail))
    console.print(table)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
