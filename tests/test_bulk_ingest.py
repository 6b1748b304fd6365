"""Bulk import: chunked commits with their audit events, duplicates counted from what the
insert stored, rows stored exactly as the ORM stores them, and hostile values refused."""

import json
import re
import sqlite3
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from agentops.agents.service import ensure_version
from agentops.audit.service import iter_events, verify_chain
from agentops.cli import import_cmd
from agentops.cli.app import run
from agentops.cli.safe_text import SafeConsole
from agentops.ingestion import bulk, parallel, service
from agentops.ingestion.files import read_records
from agentops.ingestion.service import ImportInterrupted, Rejection, import_conversations
from agentops.store.models import Agent, AgentVersion, AuditPending, Conversation
from factories import agent_named, conversation
from factories import chat_record as generic


@pytest.fixture
def agent(session: Session) -> Agent:
    return agent_named(session)


@pytest.fixture
def v1(session: Session, agent: Agent) -> AgentVersion:
    return ensure_version(session, agent=agent, version="v1", actor="t")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(service, "CHUNK_RECORDS", 2)
    return 2


def jsonl(path: Path, records: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(engine: Engine) -> dict[str, str]:
    """external_id -> channel of every stored conversation, read on a connection of its own."""
    with Session(engine) as other:
        return {c.external_id: c.channel for c in other.exec(select(Conversation))}


def imported_events(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as other:
        return [e.payload for e in iter_events(other, kind_prefix="conversations.imported")]


def test_duplicates_in_the_file_and_across_runs_are_counted_from_what_was_stored(
    session: Session,
    engine: Engine,
    agent: Agent,
    v1: AgentVersion,
    tmp_path: Path,
    small_chunks: int,
) -> None:
    path = jsonl(
        tmp_path / "export.jsonl",
        [
            generic("c-1"),
            generic("c-2"),
            generic("c-1", channel="voice"),  # same id, next chunk
            generic("c-3"),
            generic("c-4"),
            generic("c-4", channel="voice"),  # same id, same chunk
        ],
    )
    first = import_conversations(
        session, agent=agent, version=v1, records=read_records(path), actor="t"
    )
    assert (first.imported, first.duplicates, first.rejected_count) == (4, 2, 0)
    # The first of each id is the one kept.
    assert stored(engine) == {"c-1": "chat", "c-2": "chat", "c-3": "chat", "c-4": "chat"}

    again = import_conversations(
        session, agent=agent, version=v1, records=read_records(path), actor="t"
    )
    session.commit()
    assert (again.imported, again.duplicates) == (0, 6)
    assert len(stored(engine)) == 4
    events = imported_events(engine)
    assert [(e["imported"], e["duplicates"]) for e in events] == [
        (2, 0),
        (1, 1),
        (1, 1),
        (0, 2),
        (0, 2),
        (0, 2),
    ]


def test_each_chunk_is_committed_with_an_event_covering_it(
    session: Session, engine: Engine, agent: Agent, v1: AgentVersion, small_chunks: int
) -> None:
    records = [(f"item {n}", generic(f"c-{n}")) for n in range(5)]
    records.insert(3, ("item bad", {"id": "c-bad"}))
    seen: list[tuple[int, int]] = []

    def progress(handled: int) -> None:
        # Called once a chunk is stored; what earlier chunks stored is committed by then.
        seen.append((handled, len(stored(engine))))

    report = import_conversations(
        session,
        agent=agent,
        version=v1,
        records=records,
        actor="t",
        progress=progress,
        source="batch",
    )
    assert (report.imported, report.rejected_count) == (5, 1)
    assert seen == [(2, 0), (4, 2), (6, 3)]
    events = imported_events(engine)
    assert [(e["part"], e["first"], e["last"], e["complete"]) for e in events] == [
        (1, "item 0", "item 1", False),
        (2, "item 2", "item bad", False),
        (3, "item 3", "item 4", True),
    ]
    assert [e["imported"] for e in events] == [2, 1, 2]
    assert events[1]["rejections"] == [{"label": "item bad", "reason": "missing 'messages'"}]
    assert events[2]["total"] == {
        "imported": 5,
        "escalated": 0,
        "duplicates": 0,
        "rejected": 1,
        "versions": {"v1": 5},
    }
    assert all(e["source"] == "batch" and e["agent"] == agent.name for e in events)
    with Session(engine) as other:
        assert verify_chain(other) == []


def test_nothing_is_committed_until_a_record_is_accepted(
    session: Session, engine: Engine, agent: Agent, tmp_path: Path, small_chunks: int
) -> None:
    session.commit()  # the agent; the version below is registered by the import itself
    bad = {"id": "c-bad", "agent_version": "v1"}
    only_bad = jsonl(tmp_path / "bad.jsonl", [bad] * 5)
    report = import_conversations(
        session, agent=agent, version=None, records=read_records(only_bad), actor="t"
    )
    assert (report.accepted, report.rejected_count) == (0, 5)
    assert stored(engine) == {} and imported_events(engine) == []
    session.rollback()  # what the CLI does: nothing of it remains
    # Entries from the agent's registration may still wait for the background sealer.
    unsealed_imports = (
        select(func.count())
        .select_from(AuditPending)
        .where(AuditPending.kind == "conversations.imported")
    )
    assert session.exec(unsealed_imports).one() == 0

    # Rejected-only chunks before the first good one are committed with it, in one event.
    mixed = jsonl(tmp_path / "mixed.jsonl", [bad, bad, bad, generic("c-1", agent_version="v2")])
    report = import_conversations(
        session, agent=agent, version=None, records=read_records(mixed), actor="t"
    )
    assert (report.imported, report.rejected_count) == (1, 3)
    events = imported_events(engine)
    assert [(e["first"], e["last"], e["imported"], e["rejected"]) for e in events] == [
        ("line 1", "line 4", 1, 3)
    ]
    assert stored(engine) == {"c-1": "chat"}


def test_bulk_rows_read_back_exactly_like_rows_the_orm_wrote(
    session: Session, engine: Engine, agent: Agent, v1: AgentVersion
) -> None:
    session.add(
        conversation(agent, v1, external_id="orm", started_at=datetime(2024, 5, 15, 15, tzinfo=UTC))
    )
    record = generic("bulk", started_at="2024-05-15T10:00:00.5-05:00", latency_ms=7)
    record["messages"][1]["content"] = 'Merci, très bien \u2014 \U0001f600 \\ "quoted"'
    import_conversations(session, agent=agent, version=v1, records=[("a", record)], actor="t")

    with Session(engine) as other:
        rows = {c.external_id: c for c in other.exec(select(Conversation))}
        bulk_row = rows["bulk"]
        assert bulk_row.transcript == record["messages"]
        assert bulk_row.started_at == datetime(2024, 5, 15, 15, 0, 0, 500000, tzinfo=UTC)
        assert bulk_row.imported_at.tzinfo is not None
        assert (bulk_row.escalated, bulk_row.contained, bulk_row.latency_ms) == (False, True, 7)
        # Time windows compare stored values: both rows fall in [15:00, 15:01) alike.
        window = select(Conversation.external_id).where(
            Conversation.started_at >= datetime(2024, 5, 15, 15, tzinfo=UTC),
            Conversation.started_at < datetime(2024, 5, 15, 15, 1, tzinfo=UTC),
        )
        assert sorted(other.exec(window)) == ["bulk", "orm"]
        if engine.dialect.name == "sqlite":
            raw = dict(
                other.execute(text("SELECT external_id, started_at FROM conversation")).all()
            )
            assert raw == {
                "orm": "2024-05-15 15:00:00.000000",
                "bulk": "2024-05-15 15:00:00.500000",
            }
        # The stored transcript is JSON text any reader can parse.
        transcript = other.execute(
            text("SELECT transcript FROM conversation WHERE external_id = 'bulk'")
        ).scalar_one()
        loaded = json.loads(transcript) if isinstance(transcript, str) else transcript
        assert loaded == record["messages"]


@pytest.mark.parametrize(
    ("count", "largest", "sizes"),
    [
        (1000, 2520, [512, 256, 128, 64, 32, 8]),
        (300, 76, [64, 64, 64, 64, 32, 8, 4]),  # SQLite's old bound of 999 parameters
        (3, 0, [1, 1, 1]),
        (0, 100, []),
    ],
)
def test_sqlite_statements_come_in_few_power_of_two_sizes(
    count: int, largest: int, sizes: list[int]
) -> None:
    assert bulk.statement_sizes(count, largest=largest) == sizes


def test_multi_row_statements_store_every_row_and_still_name_the_duplicates(
    session: Session, engine: Engine, agent: Agent, v1: AgentVersion
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("multi-row statements are the SQLite path")
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    # Room for two rows' parameters per statement: seven rows take statements of 2, 2, 2, 1.
    driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 2 * len(bulk.COLUMNS))
    imported_at = bulk.bind_value("imported_at", datetime.now(UTC), connection.dialect)

    def rows(*ids: str) -> list[tuple[Any, ...]]:
        started = bulk.bind_value(
            "started_at", datetime(2024, 5, 15, tzinfo=UTC), connection.dialect
        )
        return [
            (agent.id, v1.id, i, started, "chat", None, "[]", 0, 1, 0.0, 5, None, imported_at)
            for i in ids
        ]

    inserter = bulk.ConversationInserter(connection)
    assert inserter.insert(rows(*(f"n-{n}" for n in range(7)))) == [True] * 7
    # n-5 is stored already and x-1 comes twice: the batch is redone row by row to say so.
    assert inserter.insert(rows("x-1", "n-5", "x-2", "x-1", "x-3")) == [
        True,
        False,
        True,
        False,
        True,
    ]
    session.commit()
    assert sorted(stored(engine)) == sorted([f"n-{n}" for n in range(7)] + ["x-1", "x-2", "x-3"])


def test_nan_and_infinity_are_rejected_in_json_arrays_and_lines(
    session: Session, agent: Agent, v1: AgentVersion, tmp_path: Path
) -> None:
    nan = json.dumps(generic("c-nan")).replace('{"id": "X1"}', '{"id": NaN}')
    huge = json.dumps(generic("c-inf")).replace('"Done."', '[{"type": "text", "score": 1e999}]')
    array = tmp_path / "batch.json"
    array.write_text(f"[{json.dumps(generic('c-1'))}, {nan}, {huge}]")
    report = import_conversations(
        session, agent=agent, version=v1, records=read_records(array), actor="t"
    )
    assert report.imported == 1
    assert report.rejected == [
        Rejection(
            "index 1",
            "message 3 contains NaN (at tool_calls[0].function.arguments.id), "
            "which is not valid JSON",
        ),
        Rejection(
            "index 2",
            "message 5 contains Infinity (at content[0].score), which is not valid JSON",
        ),
    ]
    lines = jsonl(tmp_path / "lines.jsonl", [generic("c-2"), huge, '{"id": "c-3" "x": NaN}'])
    report = import_conversations(
        session, agent=agent, version=v1, records=read_records(lines), actor="t"
    )
    assert report.imported == 1
    assert [str(r) for r in report.rejected] == [
        "line 2: message 5 contains Infinity (at content[0].score), which is not valid JSON",
        "line 3: invalid JSON: Expecting ',' delimiter (column 14)",
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (json.dumps(generic("c\u0000x")), "id contains a NUL character"),
        (json.dumps(generic("c-1", channel="a\u0000")), "channel contains a NUL character"),
        (json.dumps(generic("c-1", latency_ms=2**40)), "latency_ms must be at most 2147483647"),
        (
            json.dumps(generic("c-1", started_at="0001-01-01T00:00:00+01:00")),
            "started_at '0001-01-01T00:00:00+01:00' is out of range",
        ),
        (
            json.dumps(generic("c-1")).replace('"Done."', '"\\ud800"'),
            "a message is not valid Unicode (a lone surrogate)",
        ),
        (json.dumps(generic("c-1", intent="\ud800")), "intent is not valid Unicode"),
        (json.dumps(generic(10**30)), "'id' must be a non-empty string"),
    ],
)
def test_values_no_database_would_store_are_rejected_one_by_one(
    session: Session,
    engine: Engine,
    agent: Agent,
    v1: AgentVersion,
    tmp_path: Path,
    line: str,
    reason: str,
) -> None:
    # Each would fail a whole batch at the database (or silently lose precision): refused
    # here, the rest of the file still imports.
    path = jsonl(tmp_path / "hostile.jsonl", [line, generic("c-ok")])
    report = import_conversations(
        session, agent=agent, version=v1, records=read_records(path), actor="t"
    )
    assert report.imported == 1
    assert len(report.rejected) == 1 and report.rejected[0].label == "line 1"
    assert reason in report.rejected[0].reason
    assert stored(engine) == {"c-ok": "chat"}


def test_a_database_error_after_some_chunks_says_what_is_stored_and_how_to_resume(
    session: Session,
    engine: Engine,
    agent: Agent,
    v1: AgentVersion,
    small_chunks: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = bulk.ConversationInserter.insert
    calls: list[int] = []

    def insert_then_fail(self: bulk.ConversationInserter, rows: list[Any]) -> list[bool]:
        calls.append(len(rows))
        if len(calls) == 3:  # fault injection: the database goes away mid-import
            raise OperationalError("INSERT", None, Exception("server closed the connection"))
        return original(self, rows)

    monkeypatch.setattr(bulk.ConversationInserter, "insert", insert_then_fail)
    records = [(f"item {n}", generic(f"c-{n}")) for n in range(8)]
    with pytest.raises(ImportInterrupted) as raised:
        import_conversations(session, agent=agent, version=v1, records=records, actor="t")
    assert str(raised.value) == (
        "the import stopped after its first 4 records were committed: (builtins.Exception) "
        "server closed the connection. Run the same import again to finish it; records "
        "already stored are skipped"
    )
    session.rollback()
    # Chunks 1 and 2 are committed, each with its event; chunk 3 failed and rolled back.
    assert sorted(stored(engine)) == ["c-0", "c-1", "c-2", "c-3"]
    assert [e["imported"] for e in imported_events(engine)] == [2, 2]


def test_the_cli_shows_records_per_second_on_a_terminal_only(
    engine: Engine,
    tmp_path: Path,
    small_chunks: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Session(engine) as session:
        agent_named(session)
        session.commit()
    path = jsonl(tmp_path / "export [b].jsonl", [generic(f"c-{n}") for n in range(7)])
    assert run(["import", str(path), "--agent", "airline", "--version", "v1"]) == 0
    assert capsys.readouterr().err == ""  # not a terminal: no progress at all

    terminal = StringIO()
    monkeypatch.setattr(
        import_cmd, "err_console", SafeConsole(file=terminal, force_terminal=True, width=150)
    )
    assert run(["import", str(path), "--agent", "airline", "--version", "v1"]) == 0
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())
    assert "importing export [b].jsonl" in shown
    assert re.search(r"7 records, [\d,]+/s", shown)
    assert "7 already stored" in capsys.readouterr().out


def test_parallel_parsing_reads_a_file_exactly_as_in_process_parsing(
    session: Session,
    engine: Engine,
    tmp_path: Path,
    small_chunks: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Worker processes get the file in blocks of whole lines: line numbers, blank lines,
    # a byte-order mark, CRLF, broken and NaN lines, lines longer than a block and a last
    # line without a newline must all come out as reading it line by line does.
    monkeypatch.setattr(parallel, "worthwhile", lambda *_: True)  # small file, any database
    monkeypatch.setattr(service, "CHUNK_BYTES", 3000)
    long_one = generic("c-long")
    long_one["messages"][4]["content"] = "x" * 7000
    lines = [
        "\ufeff" + json.dumps(generic("c-1")),
        "",
        json.dumps(generic("c-2")) + "\r",
        '{"id": "c-3", "messages": [',
        json.dumps(long_one),
        json.dumps(generic("c-1")),
        "   ",
        json.dumps(generic("c-nan")).replace('{"id": "X1"}', '{"id": NaN}'),
        json.dumps(generic("c-4")),
        json.dumps(generic("c-5")),
    ]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")  # no newline at the end
    reports = {}
    for name, parallel_parse in (("in-process", False), ("workers", True)):
        target = agent_named(session, name)
        version = ensure_version(session, agent=target, version="v1", actor="t")
        reports[name] = import_conversations(
            session,
            agent=target,
            version=version,
            records=read_records(path),
            actor="t",
            parallel_parse=parallel_parse,
        )
    one, other = reports["in-process"], reports["workers"]
    assert (other.imported, other.duplicates, other.rejected) == (
        one.imported,
        one.duplicates,
        one.rejected,
    )
    assert (one.imported, one.duplicates) == (5, 1)
    assert [r.label for r in one.rejected] == ["line 4", "line 8"]
    with Session(engine) as check:
        events = [e.payload for e in iter_events(check, kind_prefix="conversations.imported")]
        rows = check.exec(select(Conversation.agent_id, Conversation.external_id)).all()
    # Chunks may be cut elsewhere (workers get blocks of lines, blank ones included), but
    # both trails cover every record, in order, up to the last line.
    for name in reports:
        mine = [e for e in events if e["agent"] == name]
        assert sum(e["imported"] for e in mine) == 5
        assert mine[0]["first"] == "line 1" and mine[-1]["last"] == "line 10"
        assert mine[-1]["complete"]
    assert len(rows) == 10
