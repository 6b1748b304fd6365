"""`agentops people …`: register people with roles and hand out web sign-in links."""

import typer
from rich.table import Table

from agentops.agents.signin import issue_login_link, list_people, register_person, signing_key
from agentops.cli.common import console, fail, store_session, user_errors
from agentops.settings import get_settings
from agentops.store.models import Role

# Where `agentops serve` listens by default.
DEFAULT_BASE_URL = "http://127.0.0.1:8000"

app = typer.Typer(help="People who may sign in to the web pages, their roles and sign-in links.")


@app.command("add")
@user_errors
def add(
    email: str = typer.Argument(..., help="The person's email (their identity everywhere)."),
    role: str = typer.Option(..., "--role", help="reviewer, owner, manager or admin."),
    name: str | None = typer.Option(None, "--name", help="Display name (default: from email)."),
) -> None:
    """Register a person with a role, or change the role of someone already registered."""
    try:
        chosen = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise fail(f"unknown role {role!r}: use one of {roles}") from None
    with store_session() as session:
        person = register_person(session, email=email, role=chosen, name=name, actor="cli")
        shown = f"{person.email} is a {person.role.value}."
    console.print(shown)


@app.command("list")
@user_errors
def list_all() -> None:
    """Everyone registered, with their role."""
    with store_session() as session:
        table = Table("email", "name", "role")
        for person in list_people(session):
            table.add_row(person.email, person.name, person.role.value)
    console.print(table)


@app.command("login-link")
@user_errors
def login_link(
    email: str = typer.Argument(..., help="A registered person's email."),
    minutes: int | None = typer.Option(
        None, "--minutes", min=1, max=1440, help="How long the link works (default 15)."
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Where `agentops serve` is reachable (AGENTOPS_WEB_BASE_URL)."
    ),
) -> None:
    """Print a one-time, signed sign-in link that expires."""
    base = base_url or get_settings().web_base_url or DEFAULT_BASE_URL
    console.print(issue_link(email, base_url=base, minutes=minutes), soft_wrap=True)


def issue_link(email: str, *, base_url: str, minutes: int | None = None) -> str:
    """A fresh one-time sign-in link for a registered person, on `base_url`."""
    settings = get_settings()
    if not base_url.startswith(("http://", "https://")):
        raise fail(f"the base URL must start with http:// or https://, got {base_url!r}")
    configured = settings.web_secret.get_secret_value() if settings.web_secret else None
    with store_session() as session:
        key = signing_key(session, configured=configured)
        return issue_login_link(
            session,
            email=email,
            key=key,
            base_url=base_url,
            minutes=minutes or settings.login_link_minutes,
            actor="cli",
        )
