"""Benchmark the audit trail: streaming `audit verify` and concurrent appends.

    python benchmarks/audit_bench.py verify [--events 1000000] [--db sqlite,postgresql]
    python benchmarks/audit_bench.py append [--writers 1,50] [--seconds 10] [--rate 2]
        [--work-ms 5] [--compare] [--seal-on-commit]

`verify` fills a scratch database with N chained events (bulk-loaded, not timed), then
times `verify_trail` in a fresh process and reports that process's peak memory. The
smaller size (--small, default 100k) shows memory does not grow with the trail; --legacy
also times the previous whole-trail-in-memory verify at the small size.

`append` runs W writer threads on PostgreSQL, each recording one audit event per
transaction (the real `record_event`) after --work-ms of other work, paced at --rate
appends per second per writer (0: as fast as possible), while a sequencer process seals
pending entries (--seal-on-commit: the writers seal after their commits instead). It
prints appends per second, transaction latency p50/p99 (begin to commit returned), and
the sealing delay p99 (written to sealed). --compare adds the previous design, where each
writer locked the chain head for its whole transaction.
PostgreSQL: AGENTOPS_TEST_POSTGRES_URL (default postgres@127.0.0.1/test).
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

ADMIN_URL = os.environ.get(
    "AGENTOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
console = Console(width=150)
WARM_UP = 3
LOCK_HEAD = "SELECT seq FROM auditchainhead WHERE id = 1 FOR UPDATE"


# --- scratch databases ---------------------------------------------------------------


def scratch_postgres() -> tuple[str, Any]:
    """A fresh PostgreSQL database and a function that drops it."""
    name = f"agentops_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def migrated(url: str) -> Any:
    """An engine on the URL with the real migrations applied."""
    from agentops.store.db import make_engine
    from agentops.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    return engine


# --- verify ----------------------------------------------------------------------------


def chained_rows(count: int) -> Iterator[tuple[Any, ...]]:
    """Realistic sealed events: (seq, occurred_at, actor, kind, ..., prev_hash, hash)."""
    from agentops.audit.chain import GENESIS_HASH, canonical_json, event_hash_from_text

    start = datetime(2026, 1, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        occurred = start + timedelta(microseconds=seq * 250_001)
        payload = canonical_json(
            {
                "agent": "airline-assistant",
                "version": f"v{seq % 7}",
                "trigger": "policy-adherence",
                "outcome": "ok",
                "statistic": round(seq % 1000 / 333, 4),
                "evidence_sha256": f"{seq:064x}",
            }
        )
        actor = f"reviewer{seq % 50}@example.com"
        correlation = f"action:{seq // 10}"
        digest = event_hash_from_text(
            seq=seq,
            occurred_at=occurred.isoformat(),
            actor=actor,
            kind="evaluation.recorded",
            entity_type="evaluation",
            entity_id=str(seq),
            payload_text=payload,
            prev_hash=prev,
            channel="flow",
            correlation_id=correlation,
        )
        yield (seq, occurred, actor, "evaluation.recorded", "evaluation", str(seq), payload,
               prev, digest, "flow", correlation)  # fmt: skip
        prev = digest


def fill(url: str, count: int) -> float:
    """Bulk-load count chained events and the matching head; seconds taken."""
    from agentops.audit.merkle import MerkleFrontier

    engine = migrated(url)
    started = time.perf_counter()
    frontier = MerkleFrontier()
    last = ("0" * 64, 0)
    columns = ("seq, occurred_at, actor, kind, entity_type, entity_id, payload, prev_hash, hash, "
               "channel, correlation_id")  # fmt: skip
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY auditevent ({columns}) FROM STDIN") as copy:
                for row in chained_rows(count):
                    copy.write_row(row)
                    frontier.append(row[8])
                    last = (row[8], row[0])
        else:
            cursor.execute("BEGIN")  # the engine runs pysqlite in autocommit mode
            batch: list[tuple[Any, ...]] = []
            sql = f"INSERT INTO auditevent ({columns}) VALUES ({','.join('?' * 11)})"
            for row in chained_rows(count):
                stored = (row[0], row[1].strftime("%Y-%m-%d %H:%M:%S.%f"), *row[2:])
                batch.append(stored)
                frontier.append(row[8])
                last = (row[8], row[0])
                if len(batch) == 20_000:
                    cursor.executemany(sql, batch)
                    batch = []
            cursor.executemany(sql, batch)
        cursor.execute(
            "UPDATE auditchainhead SET seq = %s, hash = %s, merkle_frontier = %s WHERE id = 1"
            if engine.dialect.name == "postgresql"
            else "UPDATE auditchainhead SET seq = ?, hash = ?, merkle_frontier = ? WHERE id = 1",
            (last[1], last[0], json.dumps(frontier.to_json())),
        )
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - started


def timed_verify(url: str, *, legacy: bool) -> dict[str, Any]:
    """Run one verify in a child process: its seconds, peak RSS and what it found."""
    code = (
        "import json,resource,sys,time\n"
        "from sqlmodel import Session\n"
        "from agentops.store.db import make_engine\n"
        "from agentops.audit.service import verify_trail\n"
        "engine = make_engine(sys.argv[1])\n"
        "legacy = sys.argv[2] == '1'\n"
        "with Session(engine) as s:\n"
        "    t = time.perf_counter()\n"
        "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
        "    if legacy:\n"
        "        n, ok = legacy_verify(s)\n"
        "    else:\n"
        "        r = verify_trail(s); n, ok = r.events, r.intact\n"
        "    took = time.perf_counter() - t\n"
        "    v = resource.getrusage(resource.RUSAGE_SELF)\n"
        "cpu = v.ru_utime + v.ru_stime - u.ru_utime - u.ru_stime\n"
        "print(json.dumps({'seconds': took, 'cpu': cpu, 'events': n, 'intact': ok,"
        " 'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    legacy_code = (
        "from sqlmodel import select\n"
        "from agentops.store.models import AuditEvent, AuditChainHead\n"
        "from agentops.audit.chain import ChainedEvent, GENESIS_HASH, event_hash\n"
        "def legacy_verify(s):\n"
        "    # The verify this project shipped before: every row loaded, then checked.\n"
        "    head = s.get(AuditChainHead, 1)\n"
        "    rows = s.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()\n"
        "    triples = [(ChainedEvent(r.seq, r.occurred_at, r.actor, r.kind, r.entity_type,\n"
        "               r.entity_id, r.payload, r.channel, r.correlation_id),\n"
        "               r.prev_hash, r.hash) for r in rows]\n"
        "    ok = all(event_hash(e, p) == h for e, p, h in triples)\n"
        "    return len(triples), ok and head.seq == len(triples)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", legacy_code + code, url, "1" if legacy else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_verify(args: argparse.Namespace) -> None:
    """Fill and verify each database at the small and the full size."""
    table = Table(
        "database", "events", "verify (wall)", "verify (CPU)", "events/s", "peak memory", "result"
    )
    for db in args.db.split(","):
        for size in sorted({args.small, args.events}):
            url, drop = _database(db)
            try:
                fill(url, size)
                runs = [("streaming", False)]
                if args.legacy and size == args.small:
                    runs.append(("whole trail in memory (previous)", True))
                for label, legacy in runs:
                    found = timed_verify(url, legacy=legacy)
                    table.add_row(
                        f"{db} ({label})",
                        f"{found['events']:,}",
                        f"{found['seconds']:.1f} s",
                        f"{found['cpu']:.1f} s",
                        f"{found['events'] / found['seconds']:,.0f}",
                        f"{found['rss_mb']:.0f} MB",
                        "intact" if found["intact"] else "NOT INTACT",
                    )
                    busy = os.getloadavg()[0]
                    console.print(f"{db} {size:,} {label}: {found} (load avg {busy:.1f})")
            finally:
                drop()
    console.print(table)
    busy = os.getloadavg()[0]
    console.print(f"load average at the end: {busy:.1f} on {os.cpu_count()} cores")


def _database(db: str) -> tuple[str, Any]:
    if db == "postgresql":
        return scratch_postgres()
    folder = tempfile.mkdtemp(prefix="agentops-bench-")
    path = Path(folder) / "audit.db"

    def drop() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.rmdir(folder)

    return f"sqlite:///{path}", drop


# --- append --------------------------------------------------------------------------


def bench_append(args: argparse.Namespace) -> None:
    """Concurrent writers on PostgreSQL with a dedicated sequencer."""
    os.environ["AGENTOPS_AUDIT_SEAL_ON_COMMIT"] = "false" if args.sequencer else "true"
    from agentops.settings import get_settings

    get_settings.cache_clear()
    table = Table(
        "design", "writers", "pacing", "appends", "appends/s", "p50", "p99", "p99 sealed"
    )
    designs = [("sequencer", False)] + ([("head lock (previous)", True)] if args.compare else [])
    for design, locked in designs:
        for writers in [int(w) for w in args.writers.split(",")]:
            url, drop = scratch_postgres()
            try:
                row = run_writers(url, writers=writers, seconds=args.seconds, rate=args.rate,
                                  sequencer=args.sequencer, locked=locked,
                                  work=args.work_ms)  # fmt: skip
            finally:
                drop()
            pacing = f"{args.rate:g}/s each" if args.rate else "flat out"
            table.add_row(design, str(writers), pacing, *row)
    mode = "a sequencer process" if args.sequencer else "each writer seals after its commit"
    console.print(f"PostgreSQL, {mode}, {args.work_ms:g} ms of other work per transaction:")
    console.print(table)


def run_writers(
    url: str,
    *,
    writers: int,
    seconds: float,
    rate: float,
    sequencer: bool,
    locked: bool = False,
    work: float = 0.0,
) -> list[str]:
    """Run the writers for a while; the table row of figures."""
    from sqlmodel import Session

    from agentops.audit.service import record_event, verify_trail

    engine = migrated(url)
    engine.dispose()
    from agentops.store.db import make_engine

    engine = make_engine(url)
    engine.pool._pool.maxsize = writers + 5  # type: ignore[attr-defined]
    latencies: list[list[float]] = [[] for _ in range(writers)]
    stop = threading.Event()
    start_gate = threading.Barrier(writers + 1)

    def writer(index: int) -> None:
        start_gate.wait()
        interval = 1 / rate if rate else 0.0
        next_at = time.perf_counter() + (index / writers) * interval
        while not stop.is_set():
            if interval:
                pause = next_at - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                next_at += interval
            began = time.perf_counter()
            with Session(engine) as session:
                if locked:
                    # The previous design: every writer held the chain head until commit.
                    session.execute(text(LOCK_HEAD))
                if work:
                    # The rest of a real transaction (a claim, a decision) before commit.
                    session.execute(text("SELECT pg_sleep(:s)"), {"s": work / 1000})
                record_event(session, actor=f"reviewer{index}@example.com", kind="review.claimed",
                             entity_type="review_item", entity_id=index,
                             payload={"queue": "airline", "n": len(latencies[index])},
                             channel="web")  # fmt: skip
                session.commit()
            latencies[index].append(time.perf_counter() - began)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    # The sequencer runs in its own process, as the seal-audit-trail flow would.
    context = multiprocessing.get_context("spawn")
    drained = context.Event()  # set once every writer has finished
    delays = context.Queue()
    ready = context.Event()
    sequencer_process = context.Process(target=sequence, args=(url, drained, delays, ready))
    if sequencer:
        sequencer_process.start()
        ready.wait(60)  # its start-up (imports) is not a sealing delay
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    drained.set()
    sealed_delays: list[float] = delays.get() if sequencer else []
    if sequencer:
        sequencer_process.join()
    with Session(engine) as session:
        result = verify_trail(session)
    engine.dispose()
    assert result.intact and result.events == sum(map(len, latencies)), result
    # Each writer's first appends open its pooled connection: not what we measure.
    flat = sorted(value for per in latencies for value in per[WARM_UP:])
    delay = _percentile(sorted(sealed_delays), 0.99) if sealed_delays else None
    return [
        f"{result.events:,}",
        f"{result.events / elapsed:,.0f}",
        f"{statistics.median(flat) * 1000:.1f} ms",
        f"{_percentile(flat, 0.99) * 1000:.1f} ms",
        f"{delay * 1000:.0f} ms" if delay is not None else "at commit",
    ]


def sequence(url: str, drained: Any, delays: Any, ready: Any) -> None:
    """The sequencer process: seal until the writers are done and nothing is pending."""
    from sqlmodel import Session, col, select

    from agentops.audit.service import seal_pending
    from agentops.store.db import make_engine
    from agentops.store.models import AuditEvent, utcnow

    engine = make_engine(url)
    _pending(engine)  # connect before the writers start
    ready.set()
    found: list[float] = []
    while not drained.is_set() or _pending(engine):
        with Session(engine) as session:
            sealed = seal_pending(session)
            if sealed:
                now = utcnow()
                newest = session.exec(
                    select(AuditEvent.occurred_at).order_by(col(AuditEvent.seq).desc())
                    .limit(sealed)
                ).all()  # fmt: skip
                session.commit()
                found.extend((now - when).total_seconds() for when in newest)
        if not sealed:
            time.sleep(0.02)
    engine.dispose()
    delays.put(found)


def _pending(engine: Any) -> int:
    from sqlmodel import Session

    from agentops.audit.service import pending_count

    with Session(engine) as session:
        return pending_count(session)


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    """Parse arguments and run one benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="time a streaming audit verify")
    verify.add_argument("--events", type=int, default=1_000_000)
    verify.add_argument("--small", type=int, default=100_000)
    verify.add_argument("--db", default="sqlite,postgresql")
    verify.add_argument("--legacy", action="store_true", help="also time the old in-memory verify")
    append = sub.add_parser("append", help="concurrent appends on PostgreSQL")
    append.add_argument("--writers", default="1,50")
    append.add_argument("--seconds", type=float, default=10.0)
    append.add_argument(
        "--rate", type=float, default=2.0, help="appends/s per writer; 0: flat out"
    )
    append.add_argument(
        "--seal-on-commit",
        dest="sequencer",
        action="store_false",
        help="writers seal after their own commits instead of one sequencer",
    )
    append.add_argument(
        "--work-ms",
        type=float,
        default=5.0,
        help="other work in each writer's transaction before commit (pg_sleep)",
    )
    append.add_argument(
        "--compare", action="store_true", help="also run the previous lock-the-head design"
    )
    args = parser.parse_args()
    {"verify": bench_verify, "append": bench_append}[args.command](args)


if __name__ == "__main__":
    main()
