"""Many reviewers at once: real threads on the real database, fencing, sealing, a busy store."""

import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.agents.service import ensure_person
from agentops.audit import sealer
from agentops.audit.sealer import wait_until_sealed
from agentops.audit.service import iter_events, pending_count, record_event, verify_trail
from agentops.cli.app import run
from agentops.review import service as review
from agentops.review.queue import (
    STAGE_ADJUDICATION,
    STAGE_DONE,
    STAGE_SECOND,
    stage_after_verdict,
)
from agentops.serve.app import create_app
from agentops.settings import Settings, get_settings
from agentops.store.db import StoreBusy, make_engine, write_session
from agentops.store.models import ItemStatus, ReviewItem, Role
from factories import login_token, review_queue, reviewer_as

ALL_PASS = {"confirm": True, "grounded": True, "tone": True}
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
ALICE, CAROL = "alice@x.io", "carol@x.io"


def test_where_an_item_goes_after_each_verdict() -> None:
    after = stage_after_verdict
    assert after(stage=None, needs_second=False, violation=True, first_violation=None) == STAGE_DONE
    assert after(stage=None, needs_second=True, violation=False, first_violation=None) == (
        STAGE_SECOND
    )
    agree = after(stage=STAGE_SECOND, needs_second=True, violation=True, first_violation=True)
    differ = after(stage=STAGE_SECOND, needs_second=True, violation=False, first_violation=True)
    assert (agree, differ) == (STAGE_DONE, STAGE_ADJUDICATION)
    adjudicated = after(
        stage=STAGE_ADJUDICATION, needs_second=True, violation=False, first_violation=True
    )
    assert adjudicated == STAGE_DONE


def test_concurrent_reviewers_never_share_an_item_and_every_step_is_sealed(
    engine: Engine,
) -> None:
    with Session(engine) as session:
        review_queue(
            session, count=40, margin=0.0001, reviewers=[f"r{n}@x.io" for n in range(8)]
        )
        queued = len(session.exec(select(ReviewItem.id)).all())
    claims: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def reviewer(email: str) -> None:
        try:
            start.wait()
            while True:
                with write_session(engine) as session:
                    item = review.claim_next(session, reviewer=reviewer_as(session, email))
                    if item is None:
                        return
                    item_id, token = item.id, item.lease_token
                claims.append(item_id)  # type: ignore[arg-type]
                with write_session(engine) as session:
                    review.submit_review(
                        session,
                        item_id=item_id,  # type: ignore[arg-type]
                        reviewer=reviewer_as(session, email),
                        findings=ALL_PASS,
                        lease_token=token,
                    )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(f"r{n}@x.io",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(claims) == queued and len(set(claims)) == queued  # nobody got an item twice
    assert wait_until_sealed(engine, timeout=10)
    with Session(engine) as session:
        assert review.queue_counts(session) == {"open": 0, "claimed": 0, "reviewed": queued}
        # Sealed by the writers' commits (SQLite) or the background sealer, not by a reader.
        assert pending_count(session) == 0
        result = verify_trail(session)
        assert result.intact and result.pending == 0
        kinds = Counter(e.kind for e in iter_events(session, kind_prefix="review."))
    assert kinds["review.claimed"] == queued and kinds["review.submitted"] == queued


def test_a_lost_lease_can_neither_submit_nor_renew_nor_release(session: Session) -> None:
    review_queue(session, count=1, reviewers=[ALICE, CAROL])
    alice, carol = reviewer_as(session, ALICE), reviewer_as(session, CAROL)
    first = review.claim_next(session, reviewer=alice, now=T0, lease_minutes=1)
    assert first is not None
    alice_token = first.lease_token
    session.commit()
    later = T0 + timedelta(minutes=2)
    taken = review.claim_next(session, reviewer=carol, now=later)
    assert taken is not None and taken.id == first.id and taken.lease_token == alice_token + 1
    session.commit()
    item_id: int = first.id  # type: ignore[assignment]

    def as_alice(call: object, **options: object) -> None:
        with pytest.raises(review.LeaseLost, match="your verdict was not saved"):
            call(session, item_id=item_id, reviewer=alice, lease_token=alice_token, **options)  # type: ignore[operator]
        session.rollback()

    as_alice(review.submit_review, findings=ALL_PASS, now=later)
    as_alice(review.renew_lease, lease_minutes=30, now=later)
    as_alice(review.release_claim, now=later)
    # Carol's claim is untouched, and her verdict counts.
    renewed = review.renew_lease(
        session, item_id=item_id, reviewer=carol, lease_token=taken.lease_token,
        lease_minutes=30, now=later,
    )  # fmt: skip
    assert renewed.lease_expires_at == later + timedelta(minutes=30)
    review.submit_review(
        session, item_id=item_id, reviewer=carol, findings=ALL_PASS,
        lease_token=taken.lease_token, now=later,
    )  # fmt: skip
    session.commit()
    assert session.get(ReviewItem, item_id).status == ItemStatus.reviewed  # type: ignore[union-attr]
    with pytest.raises(review.LeaseLost):
        review.renew_lease(
            session, item_id=item_id, reviewer=carol, lease_token=taken.lease_token,
            lease_minutes=30, now=later,
        )  # fmt: skip


def test_the_fence_refuses_a_submit_whose_claim_changed_after_it_was_read(engine: Engine) -> None:
    """The rules pass on the row as read; the release commits before the verdict's update."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write lock keeps any other writer out between read and update")
    with Session(engine) as session:
        review_queue(session, count=1, reviewers=[ALICE])
        item = review.claim_next(session, reviewer=reviewer_as(session, ALICE))
        assert item is not None
        item_id, token = item.id, item.lease_token
        session.commit()
    outcome: list[BaseException | None] = []
    with Session(engine) as releasing:
        review.release_claim(releasing, item_id=item_id, reviewer=reviewer_as(releasing, ALICE))  # type: ignore[arg-type]
        releasing.flush()  # the row is now locked by this uncommitted release

        def submit() -> None:
            try:
                with write_session(engine) as session:
                    review.submit_review(
                        session, item_id=item_id, reviewer=reviewer_as(session, ALICE),  # type: ignore[arg-type]
                        findings=ALL_PASS, lease_token=token,
                    )  # fmt: skip
                outcome.append(None)
            except BaseException as exc:  # checked below
                outcome.append(exc)

        submitting = threading.Thread(target=submit)
        submitting.start()
        time.sleep(0.5)  # the submit read the old claim and now waits on the row
        releasing.commit()
    submitting.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], review.LeaseLost)
    with Session(engine) as session:
        assert session.get(ReviewItem, item_id).status == ItemStatus.open  # type: ignore[union-attr]


def test_postgres_writers_leave_sealing_to_the_background_sealer(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite seals inside the writer's own transaction")
    monkeypatch.setattr(sealer, "DEBOUNCE_S", 0.5)
    with Session(engine) as session:
        record_event(session, actor="t", kind="review.claimed", entity_type="x", entity_id=1)
        began = time.perf_counter()
        session.commit()
        committed_in = time.perf_counter() - began
        assert pending_count(session) == 1  # the commit returned before anything sealed it
    assert committed_in < 0.5
    assert wait_until_sealed(engine, timeout=10)
    with Session(engine) as session:
        assert pending_count(session) == 0 and verify_trail(session).events == 1


def test_sqlite_writers_seal_inside_their_own_transaction(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL seals in the background")
    with Session(engine) as session:
        record_event(session, actor="t", kind="review.claimed", entity_type="x", entity_id=1)
        session.commit()
        assert pending_count(session) == 0 and verify_trail(session).events == 1


@dataclass
class BusyStore:
    """A queued SQLite store, an engine with a 0.2 s busy timeout, and Alice's sign-in token."""

    engine: Engine
    holder: sqlite3.Connection  # holds the write lock (BEGIN IMMEDIATE) until rolled back
    token: str


@pytest.fixture
def busy_store(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[BusyStore]:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL has no database-wide write lock")
    with Session(engine) as session:
        review_queue(session, count=2)
        token = login_token(session, ALICE)
        session.commit()
    monkeypatch.setenv("AGENTOPS_SQLITE_BUSY_TIMEOUT_S", "0.2")
    get_settings.cache_clear()
    holder = sqlite3.connect(engine.url.database, isolation_level=None)  # type: ignore[arg-type]
    holder.execute("BEGIN IMMEDIATE")
    busy = BusyStore(make_engine(str(engine.url)), holder, token)
    yield busy
    holder.close()
    busy.engine.dispose()


def test_a_busy_sqlite_store_gives_the_cli_one_clear_line(
    busy_store: BusyStore, capsys: pytest.CaptureFixture[str]
) -> None:
    engine, holder = busy_store.engine, busy_store.holder
    began = time.perf_counter()
    code = run(["review", "next", "--as", ALICE])
    waited = time.perf_counter() - began
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in captured.err + captured.out
    assert lines[0].startswith("error: the store is busy")
    assert "nothing was saved" in lines[0] and "PostgreSQL" in lines[0]
    assert waited >= 0.2  # it waited for the lock before giving up
    with pytest.raises(StoreBusy), write_session(engine) as session:
        session.exec(select(ReviewItem.id)).first()
    holder.rollback()
    assert run(["review", "next", "--as", ALICE]) == 0  # once the lock is free, it works
    with Session(engine) as session:
        assert review.queue_counts(session)["claimed"] == 1


def test_a_busy_sqlite_store_gives_the_web_a_friendly_page(busy_store: BusyStore) -> None:
    engine, holder = busy_store.engine, busy_store.holder
    holder.rollback()  # signing in writes too
    settings = Settings(database_url=str(engine.url))
    with TestClient(create_app(settings=settings, engine=engine)) as client:
        assert client.post("/signin", data={"token": busy_store.token}).status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/review").text)
        assert csrf is not None
        holder.execute("BEGIN IMMEDIATE")
        page = client.post("/review/next", data={"csrf": csrf.group(1)})
        assert page.status_code == 503
        assert "busy saving other reviewers" in page.text and "locked" not in page.text
        holder.rollback()
        assert client.post("/review/next", data={"csrf": csrf.group(1)}).status_code == 200


def test_a_bad_busy_timeout_setting_is_one_clear_line(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTOPS_SQLITE_BUSY_TIMEOUT_S", "-1")
    get_settings.cache_clear()
    assert run(["review", "next", "--as", ALICE]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid setting: AGENTOPS_SQLITE_BUSY_TIMEOUT_S")


def test_the_claim_query_walks_the_queue_index(engine: Engine) -> None:
    with Session(engine) as session:
        review_queue(session, count=3)
        reviewer = ensure_person(session, email=ALICE, role=Role.reviewer)
        pick = review.claim_statements(for_agent=False, senior=False).pick
        values = review.claim_parameters(reviewer=reviewer, agent=None, now=T0, expires=T0)
        compiled = pick.params(values).compile(engine, compile_kwargs={"literal_binds": True})
        explain = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
        if engine.dialect.name == "postgresql":
            session.exec(text("SET LOCAL enable_seqscan = off"))  # type: ignore[call-overload]
        rows = session.exec(text(f"{explain} {compiled}"))  # type: ignore[call-overload]
        plan = " ".join(str(row) for row in rows)
    assert "ix_reviewitem_queue" in plan


def test_sqlite_writers_in_one_process_queue_then_give_up_with_the_busy_message(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writers take row locks")
    monkeypatch.setenv("AGENTOPS_SQLITE_BUSY_TIMEOUT_S", "0.2")
    get_settings.cache_clear()
    holding = threading.Event()
    release = threading.Event()

    def hold_the_write_lock() -> None:
        with write_session(engine) as session:
            session.exec(select(ReviewItem.id)).first()
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    assert holding.wait(10)
    began = time.perf_counter()
    with pytest.raises(StoreBusy, match=r"the store is busy.*PostgreSQL"), write_session(engine):
        pass
    assert time.perf_counter() - began >= 0.2
    release.set()
    holder.join(10)
    with write_session(engine) as session:  # free again
        assert session.exec(select(ReviewItem.id)).first() is None
