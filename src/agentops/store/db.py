"""Engine creation and schema management for SQLite and PostgreSQL."""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from agentops.errors import AgentOpsError
from agentops.settings import get_settings


class DatabaseUrlError(ValueError):
    """The configured database URL cannot be used."""


class StoreBusy(AgentOpsError):
    """SQLite's one write lock stayed taken by other writers past the busy timeout."""


SQLITE_BUSY, SQLITE_LOCKED = 5, 6


def is_busy(exc: BaseException) -> bool:
    """True for SQLite's "database is locked" (busy timeout ran out, or a stale snapshot)."""
    orig = getattr(exc, "orig", None)
    if not isinstance(exc, OperationalError) or orig is None:
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in {SQLITE_BUSY, SQLITE_LOCKED}  # extended codes keep the base low
    return "database is locked" in str(orig)


def busy_message() -> str:
    """The one line a user sees when the SQLite store stayed busy."""
    timeout = get_settings().sqlite_busy_timeout_s
    return (
        f"the store is busy: other writers held SQLite's write lock for over {timeout:g} s "
        "(AGENTOPS_SQLITE_BUSY_TIMEOUT_S) and nothing was saved; try again, and with more "
        "than a few reviewers or flows writing at once, move to PostgreSQL"
    )


def normalise_url(url: str) -> str:
    """Pin PostgreSQL URLs to the psycopg 3 driver; leave others as given."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises a bare ArgumentError subclass
        # The URL may hold a password: never echo it.
        raise DatabaseUrlError(
            "AGENTOPS_DATABASE_URL is not a database URL (expected e.g. "
            "sqlite:///path/to.db or postgresql://user@host/db)"
        ) from exc
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise DatabaseUrlError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str | None = None) -> Engine:
    """Create an engine for the URL (default: the configured one)."""
    url = normalise_url(url or get_settings().database_url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _refuse_other_files(Path(parsed.database))
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUrlError(
                    f"cannot create the folder for the SQLite store {folder}: {exc.strerror}"
                ) from exc
        # Python's sqlite3 turns `timeout` into sqlite3_busy_timeout: a writer waits that
        # long for the write lock. It only helps a transaction that asks for the lock
        # before reading (BEGIN IMMEDIATE, see write_session): one that read first and was
        # overtaken by another writer's commit fails at once, as waiting cannot help it.
        timeout = get_settings().sqlite_busy_timeout_s
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": timeout}
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


SQLITE_HEADER = b"SQLite format 3\x00"


def _refuse_other_files(path: Path) -> None:
    # SQLite would happily turn any file it is pointed at into a database (even on a
    # read-only command, which migrates first): only an empty file or a database will do.
    try:
        if not path.exists() or path.stat().st_size == 0:
            return
        if not path.is_file():
            raise DatabaseUrlError(f"{path} is not a regular file, so not a SQLite store")
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise DatabaseUrlError(f"cannot read the SQLite store {path}: {exc.strerror}") from exc
    if header != SQLITE_HEADER:
        raise DatabaseUrlError(f"{path} is not a SQLite database; nothing was written to it")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite only opens a transaction before a write, so a row read to check a rule and
    # the update that follows would run in different snapshots; SQLAlchemy's begin event
    # below opens the transaction itself, so a stale check fails instead of overwriting.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers work while a flow writes.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get(IMMEDIATE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


IMMEDIATE_OPTION = "agentops_write_lock"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    SQLite's "database is locked" becomes StoreBusy, with a message a user can act on.
    """
    with Session(engine) as session:
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            if is_busy(exc):
                raise StoreBusy(busy_message()) from exc
            raise
        except BaseException:
            session.rollback()
            raise


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session that takes the write lock up front, committing on success.

    On SQLite, concurrent read-then-write transactions fail with "database is locked";
    taking the lock first makes them queue instead, for up to the busy timeout, after
    which StoreBusy is raised (PostgreSQL relies on row locks).
    """
    lock = _writer_lock(engine)
    if lock is None:
        with session_scope(engine.execution_options(**{IMMEDIATE_OPTION: True})) as session:
            yield session
        return
    # Threads of one process queue here, in Python, and are handed the lock the moment it
    # is free; SQLite's own busy handler polls at growing intervals (up to 100 ms), which
    # leaves the lock idle and lets newcomers overtake writers that waited longest.
    if not lock.acquire(timeout=get_settings().sqlite_busy_timeout_s):
        raise StoreBusy(busy_message())
    try:
        with session_scope(engine.execution_options(**{IMMEDIATE_OPTION: True})) as session:
            yield session
    finally:
        lock.release()


_RLock = type(threading.RLock())
_writer_locks: dict[str, _RLock] = {}  # type: ignore[valid-type]
_writer_locks_guard = threading.Lock()


def _writer_lock(engine: Engine) -> _RLock | None:  # type: ignore[valid-type]
    """This process's lock for writers to one SQLite file (None on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return None
    with _writer_locks_guard:
        return _writer_locks.setdefault(engine.url.database or "", threading.RLock())


# A forked child has none of its parent's threads, so none of their locks can be held.
os.register_at_fork(after_in_child=_writer_locks.clear)


@contextmanager
def engine_scope(url: str | None = None) -> Iterator[Engine]:
    """An engine on the URL (default: the configured one), disposed of when the block ends."""
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
