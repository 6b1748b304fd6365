"""Store work is retried, with backoff, when its connection drops; other errors fail at once."""

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from agentops.agents import service as agents
from agentops.settings import get_settings
from agentops.store.db import make_engine, write_session
from agentops.store.models import Agent
from agentops.store.retrying import backoff_delays, is_transient, with_store_retries


def test_backoff_doubles_up_to_the_cap() -> None:
    assert backoff_delays(attempts=9, first_s=1.0) == [1, 2, 4, 8, 16, 30, 30, 30]
    assert sum(backoff_delays(attempts=9, first_s=1.0)) > 120  # outlasts a 2-minute storm
    assert backoff_delays(attempts=1, first_s=1.0) == []


def test_a_dropped_connection_is_retried_until_it_works(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the first attempt's backend is killed; SQLite: the write lock is held."""
    monkeypatch.setenv("AGENTOPS_SQLITE_BUSY_TIMEOUT_S", "0.1")
    get_settings.cache_clear()
    store = make_engine(database_url)
    attempts: list[int] = []
    waits: list[float] = []
    release = threading.Event()

    def register() -> int:
        attempts.append(1)
        with write_session(store) as session:
            if engine.dialect.name == "postgresql" and len(attempts) == 1:
                pid = session.exec(text("select pg_backend_pid()")).one()[0]  # type: ignore[call-overload]
                with engine.connect() as other:
                    other.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
            agent = agents.register_agent(
                session, name="retry-me", owner_email="o@x.io", backup_email="b@x.io", actor="t"
            )
            session.flush()
            assert agent.id is not None
            return agent.id

    holder = None
    if engine.dialect.name == "sqlite":
        locked = threading.Event()

        def hold_the_lock() -> None:
            # Another process's writer, as far as this one's in-process lock can tell.
            writer = engine.execution_options(agentops_write_lock=True)
            with writer.connect() as conn, conn.begin():
                locked.set()
                release.wait(10)

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert locked.wait(10)

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            release.set()  # the store comes back after two failed attempts
        time.sleep(0.01)

    agent_id = with_store_retries(register, what="registering", first_delay_s=0.5, sleep=wait)
    if holder is not None:
        holder.join()
    store.dispose()
    assert agent_id > 0
    expected = 3 if engine.dialect.name == "sqlite" else 2
    assert len(attempts) == expected and waits == [0.5, 1.0][: expected - 1]
    with Session(engine) as session:
        assert len(session.exec(select(Agent).where(Agent.name == "retry-me")).all()) == 1
    get_settings.cache_clear()


def test_other_errors_fail_at_once(engine: Engine) -> None:
    calls: list[int] = []

    def ownerless() -> None:
        calls.append(1)
        with write_session(engine) as session:
            session.add(Agent(name="ownerless", owner_id=None))  # type: ignore[arg-type]
            session.flush()

    with pytest.raises(IntegrityError):
        with_store_retries(ownerless, what="t", sleep=lambda _: pytest.fail("no retry"))
    assert calls == [1]

    def missing_table() -> None:
        calls.append(1)
        with engine.connect() as conn:
            conn.execute(text("select * from no_such_table"))

    with pytest.raises(Exception) as raised:
        with_store_retries(missing_table, what="t", sleep=lambda _: pytest.fail("no retry"))
    assert not is_transient(raised.value)
    assert len(calls) == 2


def test_attempts_run_out(engine: Engine) -> None:
    calls: list[int] = []

    def always_down() -> None:
        calls.append(1)
        raise OperationalError("select 1", {}, Exception("server closed the connection"))

    with pytest.raises(OperationalError):
        with_store_retries(always_down, what="t", attempts=3, sleep=lambda _: None)
    assert len(calls) == 3
