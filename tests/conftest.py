"""Shared fixtures: a real database (SQLite or PostgreSQL) and one Prefect test harness."""

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Prefect reads these at import time: keep its test server quiet and offline.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")  # tests talk to 127.0.0.1 only
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
# One review per item unless a test asks for double review (tests of it set the share).
os.environ.setdefault("AGENTOPS_REVIEW_DOUBLE_SHARE", "0")

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from agentops.settings import get_settings
from agentops.store.db import make_engine
from agentops.store.migrate import upgrade
from fresh_database import Template, reset

TEST_DATABASE = os.environ.get("AGENTOPS_TEST_DATABASE", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get(
    "AGENTOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TAU_AIRLINE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tau-airline"


def pytest_report_header() -> str:
    return f"agentops test database: {TEST_DATABASE}"


def admin_engine() -> Engine:
    """An autocommit engine on the PostgreSQL server's admin database (CREATE DATABASE)."""
    return create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A new empty PostgreSQL database's URL, dropped (connections and all) at the end."""
    admin = admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """A throwaway PostgreSQL database for this session, when testing on PostgreSQL."""
    if TEST_DATABASE != "postgresql":
        yield None
        return
    with scratch_database(f"agentops_test_{uuid.uuid4().hex[:10]}") as url:
        yield url


@pytest.fixture(scope="session")
def migrated_template(
    postgres_database: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path | Template]:
    """A database the real migrations built once per session, for tests to copy.

    SQLite: a file. PostgreSQL: a template database and the state it holds.
    """
    if postgres_database is None:
        path = tmp_path_factory.mktemp("migrated") / "agentops.db"
        _migrate(f"sqlite:///{path}")
        # The app's engine puts the file in WAL mode (kept in the file header); closing the
        # last connection checkpoints and deletes the -wal file, so the file alone is whole.
        assert not path.with_name(path.name + "-wal").exists()
        yield path
        return
    name = f"{make_url(postgres_database).database}_template"
    with scratch_database(name) as url:
        _migrate(url)
        engine = create_engine(url)
        template = Template.read(engine, name)
        engine.dispose()  # a template database must have no connections to be copied
        yield template


def _migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)  # the real migrations, so tests see the schema users get
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, postgres_database: str | None, tmp_path: Path
) -> str:
    """The URL of this test's own database.

    Empty, unless the test uses `engine`: then a fresh copy of the migrated template (a
    file copy on SQLite; on PostgreSQL see fresh_database.py), made in a fraction of the
    time the migrations take.
    """
    migrated = "engine" in request.fixturenames
    template = request.getfixturevalue("migrated_template") if migrated else None
    if postgres_database is None:
        path = tmp_path / "agentops.db"
        if isinstance(template, Path):
            shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    if isinstance(template, Template):
        admin = admin_engine()
        name = str(make_url(postgres_database).database)
        reset(admin=admin, url=postgres_database, name=name, template=template)
        admin.dispose()
        return postgres_database
    engine = create_engine(postgres_database)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return postgres_database


@pytest.fixture
def engine(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An engine on a freshly migrated schema; the CLI sees the same database."""
    monkeypatch.setenv("AGENTOPS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
    get_settings.cache_clear()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the test database."""
    with Session(engine) as session:
        yield session


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for every flow test in the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def tau_airline() -> Path:
    """The shared tau-bench airline data; tests using it skip when it is absent."""
    if not (TAU_AIRLINE / "conversations.json").exists():
        pytest.skip(f"shared tau-airline data not found at {TAU_AIRLINE}")
    return TAU_AIRLINE


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Module scope, not session: Playwright's sync API keeps an asyncio loop running while it
# is open, and Prefect then treats every later test as async code (coroutines come back).
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Debian Chromium per test module (Playwright never downloads one)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()
