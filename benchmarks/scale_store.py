"""Stored fleet-scale data for the sampling and evaluation benchmarks, written in bulk.

Rows go straight into the tables (COPY on PostgreSQL, executemany on SQLite) with the
transcripts serialised once by orjson: the point is a large store quickly, not the
importer's speed (benchmarks/scale_ingest.py measures that). Each generated record's
escalation, containment, intent and sentiment are derived once per tau-airline transcript
by the importer's own parser, so the stored facts are what `agentops import` would store.
"""

import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).parent))

from agentops.agents.service import ensure_version, register_agent, set_live
from agentops.ingestion.bulk import COLUMNS
from agentops.ingestion.transcripts import parse_record
from agentops.review.rubric import register_rubric
from agentops.store.models import Person, Role, Sample, utcnow
from scale_data import generated_records

DAY = timedelta(hours=24)
RUBRIC = """\
name: airline-policy
version: 1
criteria:
  - key: confirm
    severity: critical
    description: Explicit yes before any booking change.
  - key: grounded
    severity: major
    description: No invented facts.
"""
BATCH = 5_000


@dataclass(frozen=True)
class Fleet:
    """The ids of the benchmark's agent, its live version and its rubric."""

    agent_id: int
    version_id: int
    rubric_id: int
    reviewer_id: int


def register_fleet(engine: Engine, *, agent: str = "fleet-agent") -> Fleet:
    """An agent with a live v1 and a rubric, registered through the services."""
    with Session(engine) as session:
        row = register_agent(
            session,
            name=agent,
            owner_email="owner@bench.io",
            backup_email="backup@bench.io",
            actor="bench",
        )
        version = ensure_version(session, agent=row, version="v1", actor="bench")
        set_live(session, agent=row, version=version, actor="bench")
        rubric = register_rubric(session, text=RUBRIC, source="bench.yaml", actor="bench")
        reviewer = Person(email="reviewer@bench.io", name="reviewer", role=Role.reviewer)
        session.add(reviewer)
        session.commit()
        return Fleet(row.id, version.id, rubric.id, reviewer.id)  # type: ignore[arg-type]


def _facts(record: dict[str, Any], cache: dict[bytes, dict[str, Any]]) -> dict[str, Any]:
    # The generated records repeat the 100 tau-airline transcripts: parse each one once.
    blob = orjson.dumps(record["messages"])
    if blob not in cache:
        parsed = parse_record(record)
        cache[blob] = {
            "intent": parsed.intent,
            "escalated": parsed.escalated,
            "contained": parsed.contained,
            "sentiment": parsed.sentiment,
            "transcript": blob.decode(),
        }
    return cache[blob]


def conversation_rows(
    fleet: Fleet,
    *,
    count: int,
    per_day: int,
    end: datetime,
    first_day: int = 0,
    prefix: str = "d",
) -> Iterator[dict[str, Any]]:
    """`count` conversations at `per_day` a day, day `first_day` back from `end` first.

    Day 0 ends at `end`; a store grown by older days keeps the same newest day, so a
    window near `end` holds the same traffic whatever the store's size. A part-day keeps
    that day's newest records.
    """
    cache: dict[bytes, dict[str, Any]] = {}
    imported = utcnow()
    days = (count + per_day - 1) // per_day
    for day in range(first_day, first_day + days):
        size = min(per_day, count - (day - first_day) * per_day)
        records = generated_records(
            per_day, end=end - day * DAY, span=DAY, prefix=f"{prefix}{day}", seed=7
        )
        for record in islice(records, per_day - size, None):
            yield {
                "agent_id": fleet.agent_id,
                "agent_version_id": fleet.version_id,
                "external_id": record["id"],
                "started_at": datetime.fromisoformat(record["started_at"]),
                "channel": "chat",
                "latency_ms": record["latency_ms"],
                "task_success": record["task_success"],
                "imported_at": imported,
                **_facts(record, cache),
            }


def store_conversations(engine: Engine, fleet: Fleet, *, count: int, **layout: Any) -> None:
    """Bulk-insert the generated conversations (layout: see conversation_rows)."""
    rows = conversation_rows(fleet, count=count, **layout)
    if engine.dialect.name == "postgresql":
        _copy_rows(engine, "conversation", COLUMNS, rows)
    else:
        _insert_rows(engine, rows)
        # No ANALYZE on SQLite: a real store seldom has planner statistics.
        return
    with engine.begin() as conn:  # autovacuum would, a little later
        conn.exec_driver_sql("ANALYZE")


def _insert_rows(engine: Engine, rows: Iterator[dict[str, Any]]) -> None:
    # The transcript is already JSON text: the driver's executemany takes it as it is.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        # Commits every BATCH rows keep the write-ahead log small during a long load.
        cursor.execute("PRAGMA synchronous=OFF")
        placeholders = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT INTO conversation ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(tuple(_sqlite_value(row[name]) for name in COLUMNS))
            if len(batch) == BATCH:
                _insert_batch(cursor, sql, batch)
        _insert_batch(cursor, sql, batch)
    finally:
        raw.close()


def _insert_batch(cursor: Any, sql: str, batch: list[tuple[Any, ...]]) -> None:
    # The engine's connections run in autocommit: each batch is one explicit transaction.
    cursor.execute("BEGIN")
    cursor.executemany(sql, batch)
    cursor.execute("COMMIT")
    batch.clear()


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy stores UTC instants on SQLite as 'YYYY-MM-DD HH:MM:SS.ffffff'.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def _copy_rows(
    engine: Engine, table: str, columns: tuple[str, ...], rows: Iterator[dict[str, Any]]
) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[name] for name in columns))
        raw.commit()
    finally:
        raw.close()


def store_reviewed_history(
    engine: Engine,
    fleet: Fleet,
    *,
    reviews: int,
    violation_rate: float = 0.03,
    review_delay: timedelta = timedelta(minutes=30),
    **layout: Any,
) -> None:
    """`reviews` conversations (layout: see conversation_rows), each reviewed and settled.

    A review is submitted and settled `review_delay` after its conversation started, as
    one reviewer working the queue would; verdicts are violations at `violation_rate`.
    """
    first_conversation = _next_id(engine, "conversation")
    store_conversations(engine, fleet, count=reviews, **layout)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, started_at FROM conversation WHERE id >= :first ORDER BY id"),
            {"first": first_conversation},
        ).all()
    first_item = _next_id(engine, "reviewitem")
    first_review = _next_id(engine, "review")
    sample_id = _sample(engine, fleet, size=len(rows))
    rng = random.Random(first_conversation)
    items: list[tuple[Any, ...]] = []
    verdicts: list[tuple[Any, ...]] = []
    for offset, (conversation_id, started_at) in enumerate(rows):
        started = _as_utc(started_at)
        settled = started + review_delay
        violation = rng.random() < violation_rate
        item_id = first_item + offset
        item = (item_id, sample_id, conversation_id, fleet.rubric_id, "reviewed", started)
        items.append((*item, 1.0, "all", False, "done", violation, settled, 1))
        verdicts.append((first_review + offset, item_id, fleet.reviewer_id, violation, settled))
    _bulk(engine, "reviewitem", ITEM_COLUMNS, items)
    _bulk(engine, "review", REVIEW_COLUMNS, verdicts)


ITEM_COLUMNS = (
    "id",
    "sample_id",
    "conversation_id",
    "rubric_id",
    "status",
    "created_at",
    "inclusion_probability",
    "stratum",
    "needs_second",
    "stage",
    "final_violation",
    "settled_at",
    "lease_token",
)
REVIEW_COLUMNS = ("id", "review_item_id", "reviewer_id", "violation", "submitted_at")


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite hands back the stored text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _next_id(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").scalar())


def _sample(engine: Engine, fleet: Fleet, *, size: int) -> int:
    with Session(engine) as session:
        sample = Sample(
            agent_version_id=fleet.version_id,
            rubric_id=fleet.rubric_id,
            window_start=utcnow() - DAY,
            window_end=utcnow(),
            seed=0,
            population=size,
            size=size,
            method="bench",
        )
        session.add(sample)
        session.commit()
        return sample.id  # type: ignore[return-value]


def _bulk(
    engine: Engine, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    if engine.dialect.name == "postgresql":
        _copy_rows(engine, table, columns, (dict(zip(columns, row, strict=True)) for row in rows))
        with engine.begin() as conn:
            # Explicit ids leave the sequence behind: move it past them.
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT MAX(id) FROM {table}))"
            )
            conn.exec_driver_sql(f"ANALYZE {table}")
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        )
        for start in range(0, len(rows), BATCH):
            _insert_batch(
                cursor, sql, [tuple(map(_sqlite_value, row)) for row in rows[start : start + BATCH]]
            )
    finally:
        raw.close()
