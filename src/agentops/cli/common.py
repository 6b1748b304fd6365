"""What every CLI command shares: consoles, store access and user-facing errors."""

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session

from agentops.agents.actors import Actor, Channel, person_actor
from agentops.agents.emails import normalise_email
from agentops.agents.roles import NotRegistered

# The consoles and error helpers live in output.py, which app.py loads without the store;
# command modules keep importing them from here.
from agentops.cli.output import USER_ERROR_EXIT as USER_ERROR_EXIT
from agentops.cli.output import console as console
from agentops.cli.output import err_console as err_console
from agentops.cli.output import fail as fail
from agentops.cli.output import warn as warn
from agentops.errors import AgentOpsError
from agentops.store.db import (
    DatabaseUrlError,
    busy_message,
    engine_scope,
    is_busy,
    session_scope,
    write_session,
)
from agentops.store.migrate import ensure_schema

P = ParamSpec("P")
R = TypeVar("R")


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn domain and database errors into a one-line message and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (AgentOpsError, DatabaseUrlError) as exc:
            raise fail(str(exc)) from None
        except ValidationError as exc:
            raise fail(f"invalid setting: {_settings_problem(exc)}") from None
        except OperationalError as exc:
            if is_busy(exc):
                raise fail(busy_message()) from None
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise fail(f"cannot use the database: {reason}") from None
        except SQLAlchemyError as exc:
            raise fail(f"database error, nothing was saved: {exc.__class__.__name__}") from None
        except OverflowError:
            raise fail("a number is too large for agentops to store or compute with") from None

    return wrapper


@contextmanager
def store_session(*, write: bool = False) -> Iterator[Session]:
    """A session on the configured store (migrated on first use); commits only on success.

    With write, SQLite's write lock is taken up front (see store.db.write_session), so
    concurrent writers queue instead of failing.
    """
    with engine_scope() as engine:
        ensure_schema(engine)
        scope = write_session if write else session_scope
        with scope(engine) as session:
            yield session


def _settings_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    if not first["loc"]:  # a rule across settings (e.g. Slack secrets in pairs) names them itself
        return str(first["msg"]).removeprefix("Value error, ")
    name = "AGENTOPS_" + "_".join(str(part) for part in first["loc"]).upper()
    return f"{name}: {first['msg']}"


def acting_user(email: str | None) -> str:
    """The person running the command: --as, else AGENTOPS_USER_EMAIL."""
    chosen = email or os.environ.get("AGENTOPS_USER_EMAIL")
    if not chosen:
        raise AgentOpsError("say who you are with --as EMAIL (or set AGENTOPS_USER_EMAIL)")
    return normalise_email(chosen)


def acting_person(session: Session, email: str | None) -> Actor:
    """The CLI user as an actor: the registered person behind --as (or AGENTOPS_USER_EMAIL).

    An unknown email is refused, never created: `--as` names who you are, not who to add.
    """
    actor = person_actor(session, email=acting_user(email), channel=Channel.cli)
    if not actor.is_person:
        raise NotRegistered(actor.label)
    return actor


# Ids are PostgreSQL integers: anything beyond is refused before it reaches the database.
MAX_ID = 2_147_483_647


def id_argument(help_text: str) -> Any:
    """A positional id with bounds, so a huge number is a clear error and not a crash."""
    return typer.Argument(..., help=help_text, min=1, max=MAX_ID)
