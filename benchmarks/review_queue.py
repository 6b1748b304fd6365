"""Benchmark: the review queue under concurrent reviewers, and the review page's render time.

Run with `python benchmarks/review_queue.py` (PostgreSQL at AGENTOPS_BENCH_POSTGRES_URL,
default postgresql+psycopg://postgres@127.0.0.1:5432/test; a scratch database is created and
dropped). It prints:
1. PostgreSQL, 50 concurrent reviewers (threads of this one process) claiming and
   submitting from one queue, paced (each reads ~5 s, then ~1 s, per item) and flat out:
   claims per second, p50/p99 claim latency, and whether any item was handed out twice;
2. SQLite, 8 concurrent reviewers: the same figures and how many "database is locked"
   errors a user would have seen (the target is none);
3. the review page of a 200-turn transcript: server time to render it (p50/p99 of 100).
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
# One review per item: every claim counted is then a distinct item (a double-reviewed item
# is rightly claimed twice, by two people).
os.environ["AGENTOPS_REVIEW_DOUBLE_SHARE"] = "0"

from agentops.agents.actors import Channel, person_actor
from agentops.agents.signin import register_person
from agentops.review import service as review
from agentops.store.db import make_engine, write_session
from agentops.store.migrate import upgrade
from agentops.store.models import Role
from factories import review_queue

POSTGRES_URL = os.environ.get(
    "AGENTOPS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ALL_PASS = {"confirm": True, "grounded": True, "tone": True}


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def seed_queue(engine: Engine, *, items: int, reviewers: int) -> list[str]:
    """A queue of `items` conversations and `reviewers` registered reviewers."""
    with Session(engine) as session:
        review_queue(session, count=items, turns=4, margin=0.001)
        emails = [f"reviewer{i}@bench.io" for i in range(reviewers)]
        for email in emails:
            register_person(session, email=email, role=Role.reviewer, actor="bench")
        session.commit()
    return emails


def work(
    engine: Engine, *, emails: list[str], seconds: float, think_s: float
) -> tuple[list[float], list[int], Counter[str]]:
    """Every reviewer claims, reads for about `think_s`, submits, until the time is up.

    Returns the claim latencies in ms, the claimed item ids and the errors seen.
    """
    rng = random.Random(7)
    latencies: list[float] = []
    claimed: list[int] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    start = threading.Barrier(len(emails))

    def reviewer(email: str, offset: float) -> None:
        with Session(engine) as session:  # resolved once, as a channel would
            me = person_actor(session, email=email, channel=Channel.cli)
        start.wait()
        # People do not start in lockstep: each begins somewhere in their first read.
        time.sleep(offset)
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                with write_session(engine) as session:
                    item = review.claim_next(session, reviewer=me)
                    item_id = item.id if item else None
            except OperationalError as exc:
                with lock:
                    errors[str(exc.orig).splitlines()[0]] += 1
                continue
            elapsed = (time.perf_counter() - began) * 1000
            if item_id is None:
                return
            with lock:
                latencies.append(elapsed)
                claimed.append(item_id)
                pause = rng.uniform(0, 2 * think_s)
            time.sleep(pause)
            try:
                with write_session(engine) as session:
                    review.submit_review(
                        session, item_id=item_id, reviewer=me, findings=ALL_PASS
                    )
            except OperationalError as exc:
                with lock:
                    errors[str(exc.orig).splitlines()[0]] += 1

    threads = [
        threading.Thread(target=reviewer, args=(email, rng.uniform(0, think_s)))
        for email in emails
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, claimed, errors


def report(
    label: str, latencies: list[float], claimed: list[int], errors: Counter[str], seconds: float
) -> None:
    """Print one scenario's figures."""
    twice = sum(1 for _, n in Counter(claimed).items() if n > 1)
    print(f"\n{label}")
    print(f"  claims: {len(claimed)} in {seconds:.1f} s = {len(claimed) / seconds:.0f} claims/s")
    if latencies:
        print(
            f"  claim latency: p50 {statistics.median(latencies):.1f} ms, "
            f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
        )
    print(f"  items handed out twice: {twice}")
    print(f"  errors a reviewer would see: {sum(errors.values())} {dict(errors) or ''}")


def postgres(*, reviewers: int, items: int, seconds: float, think_s: float) -> None:
    """50 reviewers on one PostgreSQL queue."""
    name = f"agentops_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(url, pool_size=reviewers, max_overflow=0)
        upgrade(engine)
        emails = seed_queue(engine, items=items, reviewers=reviewers)
        began = time.perf_counter()
        latencies, claimed, errors = work(
            engine, emails=emails, seconds=seconds, think_s=think_s
        )
        elapsed = time.perf_counter() - began
        report(
            f"PostgreSQL, {reviewers} concurrent reviewers, {items} items, "
            f"~{think_s:g} s reading per item",
            latencies,
            claimed,
            errors,
            elapsed,
        )
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlite(*, reviewers: int, items: int, seconds: float, think_s: float) -> None:
    """8 reviewers on one SQLite file: writers queue behind BEGIN IMMEDIATE."""
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        upgrade(engine)
        emails = seed_queue(engine, items=items, reviewers=reviewers)
        began = time.perf_counter()
        latencies, claimed, errors = work(
            engine, emails=emails, seconds=seconds, think_s=think_s
        )
        elapsed = time.perf_counter() - began
        report(
            f"SQLite, {reviewers} concurrent reviewers, {items} items, "
            f"~{think_s:g} s reading per item",
            latencies,
            claimed,
            errors,
            elapsed,
        )
        engine.dispose()


def render(*, turns: int, runs: int) -> None:
    """Server time to render the review page of a `turns`-turn transcript."""
    from fastapi.testclient import TestClient

    from agentops.serve.app import create_app
    from agentops.settings import Settings
    from factories import login_token

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/render.db"
        engine = make_engine(url)
        upgrade(engine)
        with Session(engine) as session:
            review_queue(session, count=1, turns=turns)
            token = login_token(session, "reader@bench.io")
        app = create_app(settings=Settings(database_url=url), engine=engine)
        timings: list[float] = []

        @app.middleware("http")
        async def timed(request, call_next: Callable):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            response = await call_next(request)
            if "/review/items/" in request.url.path and request.method == "GET":
                timings.append((time.perf_counter() - began) * 1000)
            return response

        with TestClient(app) as client:
            client.post("/signin", data={"token": token})
            page = client.post("/review/next", data={"csrf": _csrf(client)})
            assert page.status_code == 200 and f"{turns} turns" in page.text
            timings.clear()
            for _ in range(runs):
                assert client.get(str(page.url).split("?")[0]).status_code == 200
        engine.dispose()
    print(f"\nReview page, {turns}-turn transcript, {runs} renders (server time)")
    print(
        f"  p50 {statistics.median(timings):.1f} ms, p99 {percentile(timings, 0.99):.1f} ms "
        f"(target: under 100 ms)"
    )


def _csrf(client: object) -> str:
    import re

    page = client.get("/review").text  # type: ignore[attr-defined]
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    if not args.skip_postgres:
        # Paced: each reviewer reads for ~5 s (people take minutes) before submitting.
        postgres(reviewers=50, items=3000, seconds=args.seconds * 2, think_s=5.0)
        postgres(reviewers=50, items=3000, seconds=args.seconds, think_s=1.0)
        # Stress: no reading at all, every reviewer claims back to back (throughput).
        postgres(reviewers=50, items=3000, seconds=args.seconds, think_s=0.0)
    sqlite(reviewers=8, items=2000, seconds=args.seconds, think_s=0.0)
    render(turns=200, runs=100)


if __name__ == "__main__":
    main()
