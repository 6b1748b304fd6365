"""A purge needs two registered admins through separate channels, an age, and a tombstone."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from agentops.agents.signin import register_person
from agentops.audit.export import file_sha256
from agentops.cli.app import app
from agentops.serve.app import create_app
from agentops.settings import Settings, get_settings
from agentops.store.models import AuditEvent, Role
from factories import login_token

ALICE, BOB, RITA = "alice@x.io", "bob@x.io", "rita@x.io"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def archive(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Two admins, a reviewer, a signing key and an archive of the whole trail so far."""
    monkeypatch.setenv("AGENTOPS_AUDIT_SIGNING_KEY", str(tmp_path / "keys" / "audit.key"))
    monkeypatch.setenv("AGENTOPS_AUDIT_PURGE_MIN_AGE_DAYS", "0")
    get_settings.cache_clear()
    with Session(engine) as session:
        register_person(session, email=ALICE, role=Role.admin, actor="test")
        register_person(session, email=BOB, role=Role.admin, actor="test")
        register_person(session, email=RITA, role=Role.reviewer, actor="test")
        session.commit()
    assert run("audit", "keygen")[0] == 0
    directory = str(tmp_path / "archive")
    code, out = run("audit", "archive", "--before", "2099-01-01", "-o", directory, "--as", ALICE)
    assert code == 0, out
    yield directory
    get_settings.cache_clear()


def web_confirmation(
    engine: Engine, email: str, archive: str, *, role: Role = Role.admin
) -> tuple[int, str]:
    """Sign in on the web as `email` and ask /admin/purge to confirm the archive's purge."""
    settings = Settings(database_url=str(engine.url))
    with TestClient(create_app(settings=settings, engine=engine)) as client:
        with Session(engine) as session:
            token = login_token(session, email, role=role)
            session.commit()
        assert client.post("/signin", data={"token": token}, follow_redirects=False).status_code
        page = client.get("/admin/purge")
        if page.status_code != 200:
            return page.status_code, ""
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        manifest = file_sha256(Path(archive) / "manifest.json")
        answer = client.post(
            "/admin/purge", data={"csrf": csrf.group(1), "manifest_sha256": manifest}
        )
        code = re.search(r'<code id="confirmation">([^<]+)</code>', answer.text)
        return answer.status_code, code.group(1) if code else answer.text


def events(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(AuditEvent)).one()


def test_one_person_cannot_purge_with_two_names(archive: str, engine: Engine) -> None:
    before = events(engine)
    # The attack: one shell user requests as an admin and "confirms" as anyone.
    code, out = run("audit", "purge-request", "--archive", archive, "--as", "nobody@x.io")
    assert code == 2 and "not a registered person" in out
    code, out = run("audit", "purge-request", "--archive", archive, "--as", RITA)
    assert code == 2 and "needs the admin role" in out
    assert run("audit", "purge-request", "--archive", archive, "--as", ALICE)[0] == 0
    code, out = run("audit", "purge-confirm", "--archive", archive)
    assert code == 2 and "--confirmation" in out
    code, out = run("audit", "purge-confirm", "--archive", archive, "--confirmation", "made-up")
    assert code == 2 and "not valid for this archive" in out
    # The requester cannot confirm her own request on the web either.
    status, page = web_confirmation(engine, ALICE, archive)
    assert status == 400 and "a second, different admin" in page
    assert events(engine) >= before  # nothing removed


def test_a_second_admins_web_confirmation_purges_once_and_the_tombstone_names_both(
    archive: str, engine: Engine
) -> None:
    with Session(engine) as session:
        archived = session.exec(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.kind != "audit.archived")
        ).one()
    assert run("audit", "purge-request", "--archive", archive, "--as", ALICE)[0] == 0
    status, _ = web_confirmation(engine, RITA, archive, role=Role.reviewer)
    assert status == 403
    status, code = web_confirmation(engine, BOB, archive)
    assert status == 200 and len(code) > 20, code
    done, out = run("audit", "purge-confirm", "--archive", archive, "--confirmation", code)
    assert done == 0 and "Removed" in out, out
    again, out = run("audit", "purge-confirm", "--archive", archive, "--confirmation", code)
    assert again == 2
    with Session(engine) as session:
        tombstone = session.exec(select(AuditEvent).where(AuditEvent.kind == "audit.purged")).one()
    assert tombstone.payload["requested_by"] == [ALICE]
    assert tombstone.payload["confirmed_by"] == BOB
    assert tombstone.payload["confirmed_via"] == "web" and tombstone.payload["removed"] >= archived
    code, out = run("audit", "verify", "--checkpoints", str(Path(archive) / "checkpoints"))
    assert code == 0 and "intact" in out, out


def test_events_younger_than_the_minimum_age_stay(
    archive: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENTOPS_AUDIT_PURGE_MIN_AGE_DAYS")
    get_settings.cache_clear()
    code, out = run("audit", "purge-request", "--archive", archive, "--as", ALICE)
    assert code == 2 and "younger than the minimum age of 365 days" in out


@pytest.mark.parametrize("hostile", ["alice@x.io\nforged line", "alice@x.io\x1b[2J"])
def test_control_characters_in_as_are_refused_on_archive_and_purge(
    archive: str, engine: Engine, tmp_path: Path, hostile: str
) -> None:
    code, out = run(
        "audit", "archive", "--before", "2099-01-01", "-o", str(tmp_path / "b"), "--as", hostile
    )
    assert code == 2 and "control characters" in out and "\x1b" not in out
    code, out = run("audit", "purge-request", "--archive", archive, "--as", hostile)
    assert code == 2 and "control characters" in out


def test_the_purge_names_the_missing_database_privilege(
    archive: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("database roles are PostgreSQL's")
    import uuid

    from agentops.store.roles import app_role_grants

    role = f"agentops_app_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
        for statement in app_role_grants(role):
            connection.execute(text(statement))
    try:
        assert run("audit", "purge-request", "--archive", archive, "--as", ALICE)[0] == 0
        status, code = web_confirmation(engine, BOB, archive)
        assert status == 200
        app_url = engine.url.set(username=role).render_as_string(hide_password=False)
        monkeypatch.setenv("AGENTOPS_DATABASE_URL", app_url)
        get_settings.cache_clear()
        done, out = run("audit", "purge-confirm", "--archive", archive, "--confirmation", code)
        assert done == 2 and "needs the owner of table auditevent" in out, out
        assert "ProgrammingError" not in out
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))
