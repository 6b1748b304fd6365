"""Claims at fleet scale: many reviewers at once on PostgreSQL, and 8 on SQLite.

    python benchmarks/scale_claims.py [--quick] [--databases postgresql,sqlite]

Part of benchmarks/scale.py (`run(options, console)`). Reviewers are separate processes
(forked after the imports, each with its own engine and connection), as people's browsers
reach separate server workers. Each one claims the next item (`claim_next` in a write
session), reads it (`item_details`: transcript and rubric), thinks, then submits a verdict
with its fencing token (`submit_review`). A latency is the wall time of one service call
including its commit, measured in the reviewer's process: what the caller waits for.

PostgreSQL, with ScaleOptions.reviewers (1, 10, 50) reviewers on one queue of generated
tau-airline conversations:
- flat out: no thinking, a closed loop; this is the machine's ceiling, not a workload;
- paced: each reviewer reads about PACE_S seconds per item, and with the most reviewers
  also about SLOW_PACE_S (people take minutes, so both are faster than real reviewers);
- the previous path, emulated, as the baseline: the claim as a read then a write
  (SELECT … FOR UPDATE SKIP LOCKED, UPDATE, re-read), a submit that locks the row before
  its reads, and the audit sequencer run in the caller's thread after every commit;
- the floor: the raw claim statement alone (psycopg, autocommit), N workers flat out,
  and the most workers at the slow pace (the tail no claim can go under here).
Every item handed out twice is counted; afterwards the audit trail must verify and hold
every claim.

SQLite, 8 reviewers flat out, as processes and as threads of one process (as
`agentops serve` runs requests): write sessions (BEGIN IMMEDIATE, waiting on the busy
timeout) against deferred transactions (plain BEGIN, as `agentops review next` opened
them before): how many "database is locked" errors reach a reviewer.
"""

import argparse
import multiprocessing
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from sqlalchemy import create_engine, insert, select, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from agentops.agents.actors import Actor, Channel, person_actor
from agentops.agents.service import ensure_person, ensure_version, register_agent
from agentops.audit.service import (
    iter_events,
    record_event,
    seal_all,
    verify_chain,
)
from agentops.errors import AgentOpsError
from agentops.review import service as review
from agentops.review.queue import lease_until
from agentops.review.rubric import criteria_for, register_rubric
from agentops.serve.memory import freeze_startup_objects
from agentops.settings import get_settings
from agentops.store.db import StoreBusy, session_scope, write_session
from agentops.store.models import (
    Conversation,
    ItemStatus,
    ReviewItem,
    Role,
    Sample,
    utcnow,
)
from scale_data import (
    ScaleOptions,
    generated_records,
    migrated_engine,
    percentile,
    scratch_database,
)

RUBRIC = Path(__file__).resolve().parents[1] / "deployments" / "rubric.example.yaml"
PACE_S = 2.0  # mean seconds a paced reviewer reads an item (uniform 0 to 2x)
SLOW_PACE_S = 10.0
SQLITE_REVIEWERS = 8
TARGET_P99_MS = 20.0


@dataclass(frozen=True)
class Durations:
    """How long each scenario runs, and how big the queue is."""

    flat_s: float
    paced_s: float
    slow_s: float
    floor_s: float
    items: int

    @classmethod
    def of(cls, options: ScaleOptions) -> "Durations":
        """Full figures for the full run, seconds-long scenarios for --quick."""
        if max(options.ingest_sizes) >= 1_000_000:
            return cls(flat_s=15, paced_s=30, slow_s=60, floor_s=10, items=30_000)
        return cls(flat_s=4, paced_s=8, slow_s=20, floor_s=3, items=8_000)


# --- the queue -------------------------------------------------------------------------


def seed_queue(url: str, *, items: int, reviewers: list[str]) -> None:
    """A queue of `items` generated tau-airline conversations, and registered reviewers.

    One review per item (none drawn for double review), so every claim counted is a
    distinct item.
    """
    engine = migrated_engine(url)
    end = datetime.now(UTC) - timedelta(minutes=10)
    with Session(engine) as session:
        agent = register_agent(
            session, name="airline", owner_email="owner@bench.io",
            backup_email="backup@bench.io", actor="bench",
        )  # fmt: skip
        version = ensure_version(session, agent=agent, version="v1", actor="bench")
        rubric = register_rubric(session, text=RUBRIC.read_text(), source="bench", actor="bench")
        sample = Sample(
            agent_version_id=version.id,  # type: ignore[arg-type]
            rubric_id=rubric.id,  # type: ignore[arg-type]
            window_start=end - timedelta(hours=24), window_end=end, seed=1,
            population=items, size=items, method="bench",
        )  # fmt: skip
        session.add(sample)
        for email in reviewers:
            ensure_person(session, email=email, role=Role.reviewer)
        session.commit()
        ids = (agent.id, version.id, rubric.id, sample.id)
    for chunk in _chunks(generated_records(items, end=end), 1000):
        _insert_items(engine, chunk, *ids)  # type: ignore[arg-type]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
    engine.dispose()


def _chunks(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert_items(
    engine: Engine, records: list[dict[str, Any]], agent_id: int, version_id: int,
    rubric_id: int, sample_id: int,
) -> None:  # fmt: skip
    with engine.begin() as conn:
        rows = [
            {
                "agent_id": agent_id, "agent_version_id": version_id,
                "external_id": r["id"], "started_at": datetime.fromisoformat(r["started_at"]),
                "transcript": r["messages"], "escalated": False, "contained": True,
                "sentiment": 0.0, "latency_ms": r["latency_ms"], "imported_at": utcnow(),
            }
            for r in records
        ]
        ids = conn.execute(
            insert(Conversation).returning(Conversation.id, Conversation.started_at), rows
        ).all()
        conn.execute(
            insert(ReviewItem),
            [
                {
                    "sample_id": sample_id, "conversation_id": cid, "rubric_id": rubric_id,
                    "status": ItemStatus.open, "created_at": started,
                    "due_at": started + timedelta(minutes=15), "lease_token": 0,
                    "needs_second": False,
                }
                for cid, started in ids
            ],
        )


# --- reviewers --------------------------------------------------------------------------


@dataclass
class Run:
    """What the reviewers of one scenario did."""

    claims_ms: list[float] = field(default_factory=list)
    submits_ms: list[float] = field(default_factory=list)
    items: list[tuple[int, str]] = field(default_factory=list)  # (item id, reviewer)
    errors: Counter[str] = field(default_factory=Counter)
    ran_dry: bool = False
    seconds: float = 0.0
    load: float = 0.0  # the machine's 1-minute load average when the scenario ended
    cpu_s: float = 0.0  # CPU the reviewers' own processes used (all their threads)

    def add(self, other: "Run") -> None:
        """Merge one reviewer's figures into the scenario's."""
        self.claims_ms += other.claims_ms
        self.submits_ms += other.submits_ms
        self.items += other.items
        self.errors.update(other.errors)
        self.ran_dry |= other.ran_dry
        self.cpu_s += other.cpu_s

    @property
    def handed_out_twice(self) -> int:
        """Items given to two different reviewers (must be 0).

        A reviewer whose submit failed is rightly given back the item they still hold.
        """
        holders: dict[int, set[str]] = {}
        for item_id, email in self.items:
            holders.setdefault(item_id, set()).add(email)
        return sum(1 for people in holders.values() if len(people) > 1)


def previous_claim(session: Session, *, reviewer: Actor) -> ReviewItem | None:
    """The claim before this change: SELECT … FOR UPDATE SKIP LOCKED, UPDATE, re-read."""
    now = utcnow()
    expires = lease_until(now, 30)
    person = ensure_person(session, email=reviewer.label, role=Role.reviewer)
    held = review._held_claim(session, reviewer=person, agent=None, now=now)
    if held is not None:
        return held
    statements = review.claim_statements(for_agent=False, senior=False)
    values = review.claim_parameters(reviewer=person, agent=None, now=now, expires=expires)
    for _attempt in range(review.CLAIM_ATTEMPTS):
        found = session.execute(statements.pick, values).first()
        if found is None:
            return None
        result = session.execute(
            update(ReviewItem)
            .where(ReviewItem.id == found.id, review._claimable(now))  # type: ignore[arg-type]
            .values(
                status=ItemStatus.claimed, claimed_by_id=reviewer.id, claimed_at=now,
                lease_expires_at=expires, lease_token=ReviewItem.lease_token + 1,
            )
            .execution_options(synchronize_session=False)
        )
        item = session.get(ReviewItem, found.id, populate_existing=True)
        if result.rowcount == 1 and item is not None:  # type: ignore[attr-defined]
            record_event(
                session, actor=reviewer.email, kind="review.claimed",
                entity_type="review_item", entity_id=item.id,
                payload={"lease_token": item.lease_token, "took_over_from": found[1]},
            )  # fmt: skip
            return item
    return None


@dataclass(frozen=True)
class Variant:
    """How a reviewer claims and submits, and what else runs in its time."""

    name: str
    scope: Callable[[Engine], AbstractContextManager[Session]]
    claim: Callable[..., ReviewItem | None]
    lock_before_submit: bool = False
    seal_in_caller: bool = False


NEW = Variant("single statements, background sealer", write_session, review.claim_next)
PREVIOUS = Variant(
    "previous path (read then write, sealing in the caller)",
    write_session, previous_claim, lock_before_submit=True, seal_in_caller=True,
)  # fmt: skip
DEFERRED = Variant("deferred transactions (plain BEGIN)", session_scope, review.claim_next)
PATHS = {p.name: p for p in (NEW, PREVIOUS, DEFERRED)}


def _reviewer(
    url: str, email: str, path_name: str, think_s: float, seconds: float,
    barrier: Any, out: Any, seed: int,
) -> None:  # fmt: skip
    """One reviewer process: its own engine, then the review loop."""
    path = PATHS[path_name]
    if path.seal_in_caller:
        os.environ["AGENTOPS_AUDIT_SEAL_ON_COMMIT"] = "false"
    get_settings.cache_clear()
    engine = _reviewer_engine(url)
    with engine.connect() as conn:  # connect before the clock starts
        conn.execute(text("SELECT 1"))
    with Session(engine) as session:  # who is reviewing, resolved once as a channel would
        me = person_actor(session, email=email, channel=Channel.cli)
    if engine.dialect.name == "postgresql":
        # A serving process compiles the claim's statements once, on its first claim; warm
        # this one the same way, in a transaction rolled back, so no sample is a cold
        # start. (SQLite's part counts lock errors, and a warm-up could meet one.)
        with Session(engine) as session:
            path.claim(session, reviewer=me)
            session.rollback()
    freeze_startup_objects()  # as `agentops serve` does before its first request
    started = time.process_time()
    run = review_loop(engine, email=email, path=path, think_s=think_s, seconds=seconds,
                      barrier=barrier, seed=seed)  # fmt: skip
    engine.dispose()  # the background sealer seals what this reviewer wrote first
    run.cpu_s = time.process_time() - started
    out.put(run)


def review_loop(
    engine: Engine, *, email: str, path: Variant, think_s: float, seconds: float,
    barrier: Any, seed: int,
) -> Run:  # fmt: skip
    """Claim, read, think, submit, until the time is up; every call timed with its commit."""
    rng = random.Random(seed)
    run = Run()
    with Session(engine) as session:  # who is reviewing, resolved once as a channel would
        me = person_actor(session, email=email, channel=Channel.cli)
    barrier.wait()
    time.sleep(rng.uniform(0, think_s))  # people do not start in lockstep
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.perf_counter()
        try:
            with path.scope(engine) as session:
                item = path.claim(session, reviewer=me)
                claimed = (item.id, item.lease_token) if item is not None else None
            if path.seal_in_caller:
                seal_all(engine, wait=False)
        except (AgentOpsError, OperationalError) as exc:
            run.errors[_reason(exc)] += 1
            continue
        run.claims_ms.append((time.perf_counter() - began) * 1000)
        if claimed is None:
            run.ran_dry = True
            break
        item_id, token = claimed
        run.items.append((item_id, email))  # type: ignore[arg-type]
        with Session(engine) as session:  # the reviewer reads the transcript and rubric
            details = review.item_details(session, item_id=item_id)  # type: ignore[arg-type]
            verdict = {c.key: True for c in criteria_for(session, rubric=details.rubric)}
        if think_s:
            time.sleep(rng.uniform(0, 2 * think_s))
        began = time.perf_counter()
        try:
            with path.scope(engine) as session:
                if path.lock_before_submit:
                    session.execute(
                        select(ReviewItem.id).where(ReviewItem.id == item_id).with_for_update()
                    )
                review.submit_review(
                    session, item_id=item_id, reviewer=me,  # type: ignore[arg-type]
                    findings=verdict, lease_token=token,
                )  # fmt: skip
            if path.seal_in_caller:
                seal_all(engine, wait=False)
        except (AgentOpsError, OperationalError) as exc:
            run.errors[_reason(exc)] += 1
            continue
        run.submits_ms.append((time.perf_counter() - began) * 1000)
    return run


def _reviewer_engine(url: str) -> Engine:
    """The store as `make_engine` opens it; on PostgreSQL with one pooled connection.

    Fifty processes with a connection each for the reviewer and for its sealer would
    reach PostgreSQL's default max_connections (100); the sealer shares the one.
    """
    from agentops.store.db import make_engine, normalise_url

    if not url.startswith("postgresql"):
        return make_engine(url)
    return create_engine(normalise_url(url), pool_pre_ping=True, pool_size=1, max_overflow=0)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, StoreBusy) or "database is locked" in str(exc):
        return "database is locked"
    return str(getattr(exc, "orig", exc)).splitlines()[0][:80]


def run_reviewers(
    url: str, *, emails: list[str], path: Variant, think_s: float, seconds: float
) -> Run:
    """Run one scenario: every reviewer in its own process, all starting together."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    barrier = context.Barrier(len(emails) + 1)
    processes = [
        context.Process(
            target=_reviewer,
            args=(url, email, path.name, think_s, seconds, barrier, out, n),
        )
        for n, email in enumerate(emails)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    began = time.perf_counter()
    total = Run()
    for _ in processes:
        total.add(out.get(timeout=seconds + 300))
    total.seconds = time.perf_counter() - began
    for process in processes:
        process.join()
    return total


def run_reviewer_threads(
    url: str, *, emails: list[str], path: Variant, think_s: float, seconds: float
) -> Run:
    """Run one scenario with every reviewer a thread of one process sharing one engine.

    This is how `agentops serve` runs requests. The threads share the GIL, so a latency
    here also holds time spent waiting for it.
    """
    engine = _reviewer_engine(url)
    barrier = threading.Barrier(len(emails) + 1)
    runs: list[Run] = []

    def reviewer(email: str, seed: int) -> None:
        loop = review_loop(
            engine, email=email, path=path, think_s=think_s, seconds=seconds,
            barrier=barrier, seed=seed,
        )  # fmt: skip
        runs.append(loop)

    threads = [
        threading.Thread(target=reviewer, args=(email, n)) for n, email in enumerate(emails)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    total = Run(seconds=time.perf_counter() - began)
    for run in runs:
        total.add(run)
    engine.dispose()
    return total


# --- the floor: the raw claim statement alone ------------------------------------------


def _raw_claimer(
    dsn: str, sql: str, params: dict[str, Any], seconds: float, think_s: float,
    barrier: Any, out: Any, seed: int,
) -> None:  # fmt: skip
    import psycopg

    rng = random.Random(seed)
    latencies: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql, params, prepare=True).fetchone()
        barrier.wait()
        time.sleep(rng.uniform(0, think_s))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.perf_counter()
            conn.execute(sql, params, prepare=True).fetchone()
            latencies.append((time.perf_counter() - began) * 1000)
            if think_s:
                time.sleep(rng.uniform(0, 2 * think_s))
    out.put(latencies)


def raw_floor(
    url: str, *, emails: list[str], seconds: float, think_s: float = 0.0
) -> tuple[list[float], float]:
    """N workers run the claim statement itself, back to back or paced: (latencies, seconds).

    Paced like the reviewers, it is the floor a claim's tail cannot go under on this
    machine: the statement's own durable commit and the scheduler, with no Python around.
    """
    engine = migrated_engine(url)
    now = utcnow()
    statement = review.claim_statements(for_agent=False, senior=False).pick_and_take
    compiled = statement.compile(engine)
    processors = compiled._bind_processors
    work = []
    with Session(engine) as session:
        for email in emails:
            reviewer = ensure_person(session, email=email, role=Role.reviewer)
            # The lease ends at the claim's own `now`, so the item is claimable again at
            # once: the workers keep contending for the head of the queue.
            values = review.claim_parameters(reviewer=reviewer, agent=None, now=now, expires=now)
            params = {
                key: processors[key](value) if key in processors else value
                for key, value in compiled.construct_params(values).items()
            }
            # psycopg sends a str; the status enum is one by value.
            params = {k: v.value if isinstance(v, Enum) else v for k, v in params.items()}
            work.append((str(compiled), params))
        session.commit()
    engine.dispose()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    barrier = context.Barrier(len(emails) + 1)
    processes = [
        context.Process(
            target=_raw_claimer,
            args=(dsn, sql, params, seconds, think_s, barrier, out, seed),
        )
        for seed, (sql, params) in enumerate(work)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    began = time.perf_counter()
    latencies: list[float] = []
    for _ in processes:
        latencies += out.get(timeout=seconds + 120)
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
    return latencies, elapsed


# --- reporting --------------------------------------------------------------------------


def _rate(count: int, seconds: float) -> str:
    rate = count / seconds if seconds else 0.0
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.1f}" if values else "-"


def _errors(run: Run) -> str:
    if not run.errors:
        return "0"
    return ", ".join(f"{n} {reason}" for reason, n in run.errors.most_common(3))


def trail_check(url: str, *, claims: int) -> str:
    """Seal anything left, verify the whole trail, and count its claim events."""
    engine = migrated_engine(url)
    with Session(engine) as session:
        problems = verify_chain(session)
        recorded = sum(1 for _ in iter_events(session, kind_prefix="review.claimed"))
        session.commit()
    engine.dispose()
    state = "intact" if not problems else f"{len(problems)} problems"
    return f"audit trail {state}; {recorded} claim events for {claims} claims"


def postgres_part(options: ScaleOptions, console: Console, sizes: Durations) -> None:
    """Claims on PostgreSQL: the table the issue asks for, with baselines and the floor."""
    most = max(options.reviewers)
    people = {
        name: [f"{name}{n}@bench.io" for n in range(most)]
        for name in ("flat", "paced", "slow", "previous", "previouspaced", "previousslow")
    }
    with scratch_database("postgresql", workdir=options.workdir) as url:
        began = time.perf_counter()
        seed_queue(url, items=sizes.items, reviewers=[e for g in people.values() for e in g])
        console.print(
            f"PostgreSQL queue: {sizes.items:,} generated tau-airline conversations "
            f"seeded in {time.perf_counter() - began:.0f} s; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        floors: dict[int, tuple[list[float], float]] = {}
        table = Table(
            "path", "pace", "reviewers", "claims/s", "claim p50 ms", "claim p99 ms",
            "submit p50 ms", "submit p99 ms", "p99 vs floor", "twice", "errors",
            "client CPU ms/item", "load",
            title="Claims on PostgreSQL (reviewers are processes; latency includes commit)",
        )  # fmt: skip
        claims = 0
        results: dict[tuple[str, str, int], Run] = {}
        for count in options.reviewers:
            for label, path, group, think, seconds in _scenarios(count, most, sizes):
                run = run_reviewers(
                    url, emails=people[group][:count], path=path, think_s=think,
                    seconds=seconds,
                )  # fmt: skip
                run.load = os.getloadavg()[0]
                results[(path.name, label, count)] = run
                claims += len(run.claims_ms)
                console.print(f"  ran {path.name}, {label}, {count} reviewers")
        # The floor last: its claims recycle the head of the queue.
        for count in options.reviewers:
            floors[count] = raw_floor(
                url, emails=[f"raw{n}@bench.io" for n in range(count)], seconds=sizes.floor_s
            )
        paced_floor = raw_floor(
            url, emails=[f"raw{n}@bench.io" for n in range(most)], seconds=sizes.slow_s,
            think_s=SLOW_PACE_S,
        )  # fmt: skip
        for (name, label, count), run in results.items():
            floor = floors[count][0]
            ratio = percentile(run.claims_ms, 0.99) / percentile(floor, 0.99) if floor else 0
            table.add_row(
                name, label, str(count), _rate(len(run.claims_ms), run.seconds),
                _ms(run.claims_ms, 0.5), _ms(run.claims_ms, 0.99),
                _ms(run.submits_ms, 0.5), _ms(run.submits_ms, 0.99),
                f"{ratio:.1f}x", str(run.handed_out_twice),
                _errors(run) + (" (queue ran dry)" if run.ran_dry else ""),
                f"{run.cpu_s / max(len(run.claims_ms), 1) * 1000:.0f}", f"{run.load:.1f}",
            )  # fmt: skip
        console.print(table)
        floor_table = Table(
            "workers", "pace", "statements/s", "p50 ms", "p99 ms",
            title="Floor: the raw claim statement alone (psycopg, autocommit)",
        )  # fmt: skip
        rows = [(count, "flat out", floor) for count, floor in floors.items()]
        rows.append((most, f"~{SLOW_PACE_S:g} s/item", paced_floor))
        for count, pace, (latencies, seconds) in rows:
            floor_table.add_row(
                str(count), pace, f"{len(latencies) / seconds:.1f}",
                _ms(latencies, 0.5), _ms(latencies, 0.99),
            )  # fmt: skip
        console.print(floor_table)
        console.print(trail_check(url, claims=claims))
        _verdict(console, results, most, paced_floor=paced_floor[0])


def _scenarios(
    count: int, most: int, sizes: Durations
) -> list[tuple[str, Variant, str, float, float]]:
    """(pace label, path, reviewer group, think seconds, duration) for `count` reviewers."""
    paced, slow = f"~{PACE_S:g} s/item", f"~{SLOW_PACE_S:g} s/item"
    rows = [
        ("flat out", NEW, "flat", 0.0, sizes.flat_s),
        ("flat out", PREVIOUS, "previous", 0.0, sizes.flat_s),
        (paced, NEW, "paced", PACE_S, sizes.paced_s),
        (paced, PREVIOUS, "previouspaced", PACE_S, sizes.paced_s),
    ]
    if count == most:
        rows += [
            (slow, NEW, "slow", SLOW_PACE_S, sizes.slow_s),
            (slow, PREVIOUS, "previousslow", SLOW_PACE_S, sizes.slow_s),
        ]
    return rows


def _verdict(
    console: Console, results: dict[tuple[str, str, int], Run], most: int, *,
    paced_floor: list[float],
) -> None:  # fmt: skip
    paced = results.get((NEW.name, f"~{SLOW_PACE_S:g} s/item", most))
    flat = results.get((NEW.name, "flat out", most))
    twice = sum(run.handed_out_twice for run in results.values())
    if paced is None or flat is None:
        return
    p99 = percentile(paced.claims_ms, 0.99)
    met = "met" if p99 < TARGET_P99_MS and twice == 0 else "missed"
    console.print(
        f"Target (p99 claim < {TARGET_P99_MS:g} ms with {most} reviewers, no double claims): "
        f"{met} at a reviewer's pace (p99 {p99:.1f} ms; the bare statement at that pace: "
        f"p99 {percentile(paced_floor, 0.99):.1f} ms); flat out, {most} closed-loop "
        f"reviewers on {os.cpu_count()} cores give p99 {percentile(flat.claims_ms, 0.99):.1f} "
        f"ms at {len(flat.claims_ms) / flat.seconds:.0f} claims/s; items handed out twice: "
        f"{twice}"
    )


def sqlite_part(options: ScaleOptions, console: Console, sizes: Durations) -> None:
    """8 reviewers on one SQLite file: no "database is locked" may reach them."""
    table = Table(
        "path", "reviewers are", "claims/s", "claim p50 ms", "claim p99 ms", "submit p50 ms",
        "submit p99 ms", "locked errors to callers", "twice",
        title=f"SQLite, {SQLITE_REVIEWERS} reviewers flat out",
    )  # fmt: skip
    emails = [f"s{n}@bench.io" for n in range(SQLITE_REVIEWERS)]
    for path, runner, how in (
        (NEW, run_reviewers, "processes"),
        (NEW, run_reviewer_threads, "threads of one process"),
        (DEFERRED, run_reviewers, "processes"),
    ):
        with scratch_database("sqlite", workdir=options.workdir) as url:
            seed_queue(url, items=min(sizes.items, 4000), reviewers=emails)
            run = runner(url, emails=emails, path=path, think_s=0.0, seconds=sizes.flat_s)
        table.add_row(
            path.name, how, _rate(len(run.claims_ms), run.seconds),
            _ms(run.claims_ms, 0.5), _ms(run.claims_ms, 0.99),
            _ms(run.submits_ms, 0.5), _ms(run.submits_ms, 0.99),
            str(run.errors.get("database is locked", 0)), str(run.handed_out_twice),
        )  # fmt: skip
        if other := {k: n for k, n in run.errors.items() if k != "database is locked"}:
            console.print(f"  {path.name}: other errors {other}")
    console.print(table)


def run(options: ScaleOptions, console: Console) -> None:
    """Measure and print the claims tables for the databases in options."""
    sizes = Durations.of(options)
    if "postgresql" in options.databases:
        postgres_part(options, console, sizes)
    if "sqlite" in options.databases:
        sqlite_part(options, console, sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long scenarios")
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--reviewers", default="1,10,50")
    args = parser.parse_args()
    options = ScaleOptions(
        databases=tuple(args.databases.split(",")),
        reviewers=tuple(int(n) for n in args.reviewers.split(",")),
    )
    if args.quick:
        options = ScaleOptions(
            databases=options.databases, reviewers=options.reviewers,
            ingest_sizes=(2_000,), review_sizes=(1_000,), stored_sizes=(2_000, 5_000),
        )  # fmt: skip
    run(options, Console(width=170))


if __name__ == "__main__":
    main()
