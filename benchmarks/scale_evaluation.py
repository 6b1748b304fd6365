"""Benchmark: an evaluation costs what is new, not the version's history of reviews.

For each database, one live version's history grows through ScaleOptions.review_sizes
(1,000 reviewed conversations a day, each review settled 30 minutes after its
conversation; 3% violations). At each size the trigger charts start afresh and a first
evaluation reads the whole history once (that includes calibrating five CUSUM banks);
then an hour of new traffic arrives and the evaluation every scheduled run does is
timed: the median of 11 runs after one warm-up, each rolled back, with five triggers (one
on reviews, four on conversations). Ratios are against the smallest history, measured in
the same run. Run it alone with
`python benchmarks/scale_evaluation.py [--quick] [--database sqlite|postgresql]`.
"""

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import delete
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).parent))

from agentops.store.models import Agent, AgentVersion, TriggerChart, TriggerSet
from agentops.triggers.service import evaluate_version, register_trigger_set
from scale_data import ScaleOptions, migrated_engine, scratch_database
from scale_store import Fleet, register_fleet, store_reviewed_history

REVIEWS_PER_DAY = 1_000
HISTORY_END = datetime(2026, 11, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
RUNS = 11
# Healthy rates a little above the generated data's, so no chart alarms and holds still.
TRIGGERS = """\
version: 1
agent: fleet-agent
expected_volume:
  reviews_per_day: 1000
  conversations_per_day: 1000
triggers:
  - name: policy-adherence
    kind: policy_adherence
    healthy_rate: 0.04
    degraded_rates: [0.10, 0.40]
    false_alarm_every: 5 years
  - name: escalation-rate
    kind: escalation_rate
    healthy_rate: 0.20
    degraded_rates: [0.30, 0.60]
    false_alarm_every: 5 years
  - name: slow-replies
    kind: latency
    limit_ms: 4000
    healthy_rate: 0.01
    degraded_rates: [0.05, 0.30]
    false_alarm_every: 5 years
  - name: negative-sentiment
    kind: negative_sentiment
    healthy_rate: 0.03
    degraded_rates: [0.08, 0.30]
    false_alarm_every: 5 years
  - name: unresolved
    kind: not_contained
    healthy_rate: 0.20
    degraded_rates: [0.30, 0.60]
    false_alarm_every: 5 years
"""


@dataclass(frozen=True)
class Measured:
    """One history size on one database."""

    database: str
    reviews: int
    first_seconds: float
    seconds: float
    new_reviews: int
    outcomes: str


def evaluate_once(engine: object, fleet: Fleet, trigger_set_id: int, as_of: datetime) -> tuple:
    """One evaluation of the live version at as_of: (seconds, new reviews read, outcomes)."""
    with Session(engine) as session:  # type: ignore[arg-type]
        agent = session.get(Agent, fleet.agent_id)
        version = session.get(AgentVersion, fleet.version_id)
        trigger_set = session.get(TriggerSet, trigger_set_id)
        charts = session.exec(select(TriggerChart)).all()
        before = {chart.trigger_name: chart.state["observations"] for chart in charts}
        start = time.perf_counter()
        report = evaluate_version(
            session,
            agent=agent,  # type: ignore[arg-type]
            version=version,  # type: ignore[arg-type]
            trigger_set=trigger_set,  # type: ignore[arg-type]
            actor="bench",
            as_of=as_of,
        )
        seconds = time.perf_counter() - start
        policy = report.evaluations[0].evidence["observations"]
        outcomes = "/".join(sorted({e.outcome.value for e in report.evaluations}))
        session.rollback()
    return seconds, policy - before.get("policy-adherence", 0), outcomes


def _first(engine: object, fleet: Fleet, trigger_set_id: int, as_of: datetime) -> float:
    """Fresh charts, then one evaluation reading the whole history (kept)."""
    with Session(engine) as session:  # type: ignore[arg-type]
        session.execute(delete(TriggerChart))
        session.commit()
        agent = session.get(Agent, fleet.agent_id)
        version = session.get(AgentVersion, fleet.version_id)
        trigger_set = session.get(TriggerSet, trigger_set_id)
        start = time.perf_counter()
        evaluate_version(
            session,
            agent=agent,  # type: ignore[arg-type]
            version=version,  # type: ignore[arg-type]
            trigger_set=trigger_set,  # type: ignore[arg-type]
            actor="bench",
            as_of=as_of,
        )
        seconds = time.perf_counter() - start
        session.commit()
    return seconds


def measure_database(kind: str, options: ScaleOptions, console: Console) -> list[Measured]:
    """Grow one version's reviewed history through the sizes and time evaluations at each."""
    results = []
    if any(size % REVIEWS_PER_DAY for size in options.review_sizes):
        # The history grows by whole days: a part-day would repeat its conversations' ids.
        raise SystemExit(f"review sizes must be multiples of {REVIEWS_PER_DAY:,}")
    with scratch_database(kind, workdir=options.workdir) as url:
        engine = migrated_engine(url)
        fleet = register_fleet(engine)
        with Session(engine) as session:
            agent = session.get(Agent, fleet.agent_id)
            trigger_set_id = register_trigger_set(
                session,
                agent=agent,
                text=TRIGGERS,
                source="bench.yaml",
                actor="bench",  # type: ignore[arg-type]
            ).id
            session.commit()
        # Every review of the history has settled (30 minutes after its conversation).
        stored, now = 0, HISTORY_END + HOUR
        for size in sorted(options.review_sizes):
            started = time.perf_counter()
            # Older days first in id order does not matter: the charts start afresh below.
            store_reviewed_history(
                engine,
                fleet,
                reviews=size - stored,
                per_day=REVIEWS_PER_DAY,
                end=HISTORY_END,
                first_day=stored // REVIEWS_PER_DAY,
                prefix="h",
            )
            console.print(
                f"{kind}: {size:,} reviewed conversations stored "
                f"({size - stored:,} added in {time.perf_counter() - started:.0f} s)"
            )
            stored = size
            first = _first(engine, fleet, trigger_set_id, now)
            # An hour of new traffic, reviewed as it comes: what the next evaluation reads.
            store_reviewed_history(
                engine,
                fleet,
                reviews=REVIEWS_PER_DAY // 24,
                per_day=REVIEWS_PER_DAY,
                end=now + HOUR,
                prefix=f"new{size}-",
            )
            now += HOUR
            evaluate_once(engine, fleet, trigger_set_id, now)  # warm-up
            runs = [evaluate_once(engine, fleet, trigger_set_id, now) for _ in range(RUNS)]
            results.append(
                Measured(
                    database=kind,
                    reviews=size,
                    first_seconds=first,
                    seconds=statistics.median(run[0] for run in runs),
                    new_reviews=runs[0][1],
                    outcomes=runs[0][2],
                )
            )
            # The next size's first evaluation must start after this hour's reviews settle.
            now += HOUR
        engine.dispose()
    return results


def run(options: ScaleOptions, console: Console) -> None:
    """Measure and print evaluation time against the version's history of reviews."""
    results = [m for kind in options.databases for m in measure_database(kind, options, console)]
    table = Table(
        "db",
        "reviews of history",
        "evaluation",
        "vs smallest",
        "new reviews read",
        "outcomes",
        "first evaluation",
        title="Evaluating five triggers on a live version after an hour of new traffic",
    )
    smallest = min(options.review_sizes)
    for m in results:
        base = next(b for b in results if (b.database, b.reviews) == (m.database, smallest))
        table.add_row(
            m.database,
            f"{m.reviews:,}",
            f"{m.seconds * 1000:.0f} ms",
            f"{m.seconds / base.seconds:.2f}",
            str(m.new_reviews),
            m.outcomes,
            f"{m.first_seconds:.1f} s",
        )
    console.print(table)
    console.print(
        f"evaluation: median of {RUNS} runs in this process; new reviews read: settled since "
        "the last evaluation; first evaluation: fresh charts reading the whole history once "
        "(calibration included, cached in the process after its first run)"
    )
    for kind in options.databases:
        mine = [m for m in results if m.database == kind]
        console.print(
            f"{kind}: {mine[-1].reviews:,} reviews of history / {mine[0].reviews:,} = "
            f"{mine[-1].seconds / mine[0].seconds:.2f} (target <= 2)"
        )


def main() -> None:
    """Run the evaluation part of the scale benchmark on its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (2k and 5k)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args()
    options = ScaleOptions()
    if args.quick:
        options = replace(options, review_sizes=(2_000, 5_000))
    if args.database:
        options = replace(options, databases=tuple(args.database))
    run(options, Console(width=120))


if __name__ == "__main__":
    main()
