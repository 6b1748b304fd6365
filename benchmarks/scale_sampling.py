"""Benchmark: sampling a window costs what the window holds, not what the store holds.

For each database, one store grows through ScaleOptions.stored_sizes by adding older
days at a steady rate (the smallest size a day), so every store's newest day is the same
traffic. The sample-conversations step (the flow's defaults: margin 0.1, at most 50) then
samples the last hour and the last 24 hours of it:
- time: the median of 15 runs (1 hour) or 5 (24 hours) in this process after one
  warm-up, each rolled back (warm page cache: dropping the OS cache would disturb
  everything else on the machine);
- peak memory: the peak RSS of a fresh process that samples the window once, beside the
  floor of a fresh process that only imports agentops and runs one query;
- the whole-row read the sampling used to do, on the same window: every column
  (transcripts included) loaded, signals in Python, the draw over the loaded ids.
Ratios are against the smallest store, measured in the same run. Run it alone with
`python benchmarks/scale_sampling.py [--quick] [--database sqlite|postgresql]`.
"""

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from sqlmodel import Session, col, select

from agentops.sampling.sampler import draw_sample
from agentops.sampling.service import sample_window
from agentops.signals.compute import SignalInput, compute_signals
from agentops.store.db import make_engine
from agentops.store.models import Agent, AgentVersion, Conversation, Rubric
from scale_data import ScaleOptions, in_fresh_process, migrated_engine, scratch_database
from scale_store import Fleet, register_fleet, store_conversations

END = datetime(2026, 11, 20, tzinfo=UTC)
WINDOWS_H = (1, 24)
# Runs per timing: a 1-hour window takes milliseconds, so more of them steady the median.
RUNS = {1: 15, 24: 5}
# The sample-conversations flow's defaults.
MARGIN, MAX_SAMPLE = 0.1, 50


@dataclass(frozen=True)
class Measured:
    """One window sampled on one store."""

    database: str
    stored: int
    hours: int
    population: int
    sampled: int
    seconds: float
    peak_mb: float
    whole_seconds: float
    whole_peak_mb: float


def sample_once(url: str, fleet: Fleet, hours: int) -> tuple[int, int, float]:
    """Sample the last `hours` of the store once, rolled back: (population, size, seconds)."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            agent = session.get(Agent, fleet.agent_id)
            version = session.get(AgentVersion, fleet.version_id)
            rubric = session.get(Rubric, fleet.rubric_id)
            start = time.perf_counter()
            result = sample_window(
                session,
                agent=agent,  # type: ignore[arg-type]
                version=version,  # type: ignore[arg-type]
                rubric=rubric,  # type: ignore[arg-type]
                window_start=END - timedelta(hours=hours),
                window_end=END,
                seed=1,
                margin=MARGIN,
                max_size=MAX_SAMPLE,
                actor="bench",
            )
            seconds = time.perf_counter() - start
            session.rollback()
        return result.sample.population, result.sample.size, seconds
    finally:
        engine.dispose()


def whole_rows_once(url: str, fleet: Fleet, hours: int) -> float:
    """The read sampling did before: whole rows of the window, signals and draw in Python."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            start = time.perf_counter()
            rows = session.exec(
                select(Conversation)
                .where(
                    Conversation.agent_version_id == fleet.version_id,
                    Conversation.started_at >= END - timedelta(hours=hours),
                    Conversation.started_at < END,
                )
                .order_by(col(Conversation.id))
            ).all()
            compute_signals(
                [SignalInput(c.escalated, c.contained, c.sentiment, c.latency_ms) for c in rows]
            )
            draw_sample([c.id for c in rows], size=MAX_SAMPLE, seed=1, key="bench")  # type: ignore[misc]
            return time.perf_counter() - start
    finally:
        engine.dispose()


def floor_once(url: str) -> float:
    """A fresh process's floor: agentops imported, one query run."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            session.exec(select(Agent)).all()
        return 0.0
    finally:
        engine.dispose()


def _median_time(function: Any, *args: Any, runs: int) -> float:
    function(*args)  # warm-up: the first read pays for the page cache
    return statistics.median(_seconds(function(*args)) for _ in range(runs))


def _seconds(result: Any) -> float:
    return result[2] if isinstance(result, tuple) else result


def measure_database(kind: str, options: ScaleOptions, console: Console) -> list[Measured]:
    """Grow one store through the sizes and measure both windows at each size."""
    results = []
    per_day = min(options.stored_sizes)
    with scratch_database(kind, workdir=options.workdir) as url:
        engine = migrated_engine(url)
        fleet = register_fleet(engine)
        _, floor_mb = in_fresh_process(floor_once, url)
        console.print(f"{kind}: a fresh process's floor is {floor_mb:.0f} MB")
        stored = 0
        for size in sorted(options.stored_sizes):
            started = time.perf_counter()
            store_conversations(
                engine,
                fleet,
                count=size - stored,
                per_day=per_day,
                end=END,
                first_day=stored // per_day,
            )
            console.print(
                f"{kind}: stored {size:,} conversations "
                f"({size - stored:,} added in {time.perf_counter() - started:.0f} s)"
            )
            stored = size
            for hours in WINDOWS_H:
                population, sampled, _ = sample_once(url, fleet, hours)
                (_, _, _), peak = in_fresh_process(sample_once, url, fleet, hours)
                _, whole_peak = in_fresh_process(whole_rows_once, url, fleet, hours)
                results.append(
                    Measured(
                        database=kind,
                        stored=size,
                        hours=hours,
                        population=population,
                        sampled=sampled,
                        seconds=_median_time(sample_once, url, fleet, hours, runs=RUNS[hours]),
                        peak_mb=peak,
                        whole_seconds=_median_time(whole_rows_once, url, fleet, hours, runs=3),
                        whole_peak_mb=whole_peak,
                    )
                )
        engine.dispose()
    return results


def run(options: ScaleOptions, console: Console) -> None:
    """Measure and print sampling time and memory against the store's size."""
    results = [m for kind in options.databases for m in measure_database(kind, options, console)]
    table = Table(
        "db",
        "stored",
        "window",
        "in window",
        "drawn",
        "time",
        "vs smallest",
        "peak RSS",
        "whole rows",
        "its peak",
        title="Sampling one version's window: sample-conversations step, warm cache",
    )
    smallest = min(options.stored_sizes)
    for m in results:
        base = next(
            b for b in results if (b.database, b.hours, b.stored) == (m.database, m.hours, smallest)
        )
        table.add_row(
            m.database,
            f"{m.stored:,}",
            f"{m.hours} h",
            f"{m.population:,}",
            str(m.sampled),
            f"{m.seconds * 1000:.0f} ms",
            f"{m.seconds / base.seconds:.2f}",
            f"{m.peak_mb:.0f} MB",
            f"{m.whole_seconds * 1000:.0f} ms",
            f"{m.whole_peak_mb:.0f} MB",
        )
    console.print(table)
    console.print(
        "time: median of 15 (1 h) or 5 (24 h) runs in this process; peak RSS: a fresh process "
        "sampling once; whole rows: the read sampling did before (every column, signals in "
        "Python)"
    )
    for kind in options.databases:
        mine = [m for m in results if m.database == kind]
        hour = [m for m in mine if m.hours == 1]
        small, large = hour[0], hour[-1]
        console.print(
            f"{kind}: 1-hour window with {large.stored:,} stored / with {small.stored:,} stored "
            f"= {large.seconds / small.seconds:.2f} (target <= 2); peak RSS "
            f"{min(m.peak_mb for m in mine):.0f}-{max(m.peak_mb for m in mine):.0f} MB in every "
            f"store and window, whole rows up to {max(m.whole_peak_mb for m in mine):.0f} MB"
        )


def main() -> None:
    """Run the sampling part of the scale benchmark on its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (2k and 5k)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args()
    options = ScaleOptions()
    if args.quick:
        options = replace(options, stored_sizes=(2_000, 5_000))
    if args.database:
        options = replace(options, databases=tuple(args.database))
    run(options, Console(width=120))


if __name__ == "__main__":
    main()
