"""`agentops db …`: schema migrations."""

import typer
from sqlalchemy.engine import make_url

from agentops.cli.common import console, user_errors
from agentops.settings import get_settings
from agentops.store.db import engine_scope, normalise_url
from agentops.store.migrate import current_revision, head_revision, upgrade

app = typer.Typer(help="Manage the store's schema.")


@app.command("upgrade")
@user_errors
def upgrade_schema() -> None:
    """Migrate the configured database to the newest schema."""
    with engine_scope() as engine:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    where = _safe_url()
    if before == after:
        console.print(f"{where} is already at revision {after}.")
    else:
        console.print(f"{where} upgraded from {before or 'empty'} to {after}.")


@app.command("current")
@user_errors
def show_revision() -> None:
    """Show the database's schema revision and the newest one."""
    with engine_scope() as engine:
        console.print(f"database: {_safe_url()}")
        console.print(f"revision: {current_revision(engine) or 'empty'}")
        console.print(f"newest:   {head_revision(engine)}")


def _safe_url() -> str:
    return make_url(normalise_url(get_settings().database_url)).render_as_string(hide_password=True)


@app.command("app-grants")
@user_errors
def app_grants(
    role: str = typer.Argument(..., help="The application's PostgreSQL role, e.g. agentops_app."),
) -> None:
    """Print the SQL that limits the application role (run it as the owner after upgrades)."""
    from agentops.store.roles import app_role_grants

    for statement in app_role_grants(role):
        console.print(f"{statement};", soft_wrap=True, markup=False, highlight=False)
