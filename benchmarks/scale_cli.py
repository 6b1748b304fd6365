"""CLI start-up for benchmarks/scale.py: quick commands timed against importing sqlmodel.

`agentops --help`, `agentops agents list` and `agentops review next` run as fresh processes
on an empty migrated store, interleaved round by round with `python -c "import sqlmodel"`
(the database layer's own import), so machine load hits baseline and commands alike. The
figures are medians over the rounds and their ratios to the baseline's median; the issue's
target is `agents list` within 1.5x of the baseline. Reference rows add the database
driver to the baseline import, and run `agents list` exiting Python's default way, with
the final garbage collection the entry point's gc.freeze() spares it. Everything runs
from cached bytecode, as an installed package does.

A second table says where `agents list` spends what is left over the baseline: one fresh
process per round imports sqlmodel untimed, then times each step the command takes, in
the command's order of need (the driver, the libraries every command uses, agentops'
settings and tables, connecting, the query, printing), and the medians are set against
the target's budget.

    python benchmarks/scale_cli.py [--quick] [--runs N] [--database sqlite|postgresql]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from scale_data import ScaleOptions, migrated_engine, percentile, scratch_database

TARGET_RATIO = 1.5
FULL_RUNS = 20
QUICK_RUNS = 10
REVIEWER = "reviewer@example.com"


@dataclass(frozen=True)
class Case:
    """One command line timed from process start to exit."""

    label: str
    argv: tuple[str, ...]
    expect: str  # text the command must print, so a failing command is not timed as fast


def agentops_command() -> tuple[str, ...]:
    """The installed console script beside this interpreter, else the same entry point."""
    script = Path(sys.executable).with_name("agentops")
    if script.exists():
        return (str(script),)
    return (sys.executable, "-c", "from agentops.cli.app import main; main()")


# The database layer with its driver, for reference: on PostgreSQL psycopg and SQLAlchemy's
# postgresql dialects are a large share of any command that connects.
DRIVERS = {
    "sqlite": "import sqlmodel, sqlite3, sqlalchemy.dialects.sqlite",
    "postgresql": "import sqlmodel, psycopg, sqlalchemy.dialects.postgresql",
}


# `agents list` run as the entry point runs it, but exiting without its gc.freeze(), so
# the interpreter's final collection walks every object: what the freeze saves.
FULL_SHUTDOWN = (
    "import sys; from agentops.cli.app import run; sys.argv[0] = 'agentops'; sys.exit(run())"
)


def cases(kind: str) -> list[Case]:
    """The baseline first, then the commands measured against it."""
    agentops = agentops_command()
    return [
        Case('python -c "import sqlmodel"', (sys.executable, "-c", "import sqlmodel"), ""),
        Case("  + the database driver", (sys.executable, "-c", DRIVERS[kind]), ""),
        Case("agentops --help", (*agentops, "--help"), "Commands"),
        Case("agentops agents list", (*agentops, "agents", "list"), "No agents yet"),
        Case(
            "  + Python's final garbage collection",
            (sys.executable, "-c", FULL_SHUTDOWN, "agents", "list"),
            "No agents yet",
        ),
        Case(
            "agentops review next",
            (*agentops, "review", "next", "--as", REVIEWER),
            "The queue is empty",
        ),
    ]


def timed(case: Case, env: dict[str, str]) -> float:
    """Seconds from spawning the command to its exit; a failure stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(case.argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or case.expect not in done.stdout:
        raise SystemExit(f"{case.label} failed (exit {done.returncode}): {done.stderr.strip()}")
    return elapsed


def measure(kind: str, url: str, *, runs: int) -> dict[str, list[float]]:
    """Every case's times over `runs` interleaved rounds on the store at `url`."""
    env = dict(os.environ, AGENTOPS_DATABASE_URL=url, COLUMNS="100")
    env.pop("AGENTOPS_USER_EMAIL", None)
    # An installed package runs from cached bytecode, as sqlmodel's own import does; without
    # it every run would time compiling agentops' source rather than importing it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    chosen = cases(kind)
    for case in chosen:  # one untimed round warms the file cache and bytecode
        timed(case, env)
    times: dict[str, list[float]] = {case.label: [] for case in chosen}
    for _ in range(runs):
        for case in chosen:
            times[case.label].append(timed(case, env))
    return times


# Run in a fresh process after an untimed `import sqlmodel`: each step's seconds, as JSON.
STEPS = """
import json, sys, time
import sqlmodel
steps = {}
def step(label, code):
    start = time.perf_counter()
    exec(code, globals())
    steps[label] = time.perf_counter() - start
step("the database driver", sys.argv[1])
step("typer", "import typer, typer.main")
step("rich", "import rich.console, rich.table")
step("pydantic-settings", "import pydantic_settings")
step("agentops settings", "import agentops.settings; agentops.settings.get_settings()")
step("the six core tables", "import agentops.store.core_tables")
step("the rest of agentops' modules", "import agentops.cli.app, agentops.cli.agents_cmd")
step("connecting, checking the schema", "from agentops.store.db import make_engine\\n"
     "from agentops.store.migrate import ensure_schema\\n"
     "engine = make_engine(); ensure_schema(engine)")
step("the query", "from agentops.store.db import session_scope\\n"
     "from agentops.agents.service import list_agents\\n"
     "with session_scope(engine) as s: list_agents(s)")
step("printing", "from agentops.cli.common import console\\n"
     "console.print('No agents yet.')")
print(json.dumps(steps))
"""


def breakdown(kind: str, url: str, *, runs: int) -> dict[str, list[float]]:
    """Each step's seconds in `agents list`'s order of need, over `runs` fresh processes."""
    env = dict(os.environ, AGENTOPS_DATABASE_URL=url, COLUMNS="100")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    driver = "import " + DRIVERS[kind].removeprefix("import sqlmodel, ")
    argv = (sys.executable, "-c", STEPS, driver)
    times: dict[str, list[float]] = {}
    for _ in range(runs + 1):  # the first round warms the file cache and is dropped
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the start-up breakdown failed: {done.stderr.strip()}")
        steps = json.loads(done.stdout.splitlines()[-1])
        for label, seconds in steps.items():
            times.setdefault(label, []).append(seconds)
    return {label: values[1:] for label, values in times.items()}


def report_breakdown(
    kind: str, steps: dict[str, list[float]], baseline: float, console: Console
) -> None:
    """Print each step's median and what is left of the target's budget after it."""
    budget = (TARGET_RATIO - 1) * baseline
    table = Table(
        "step",
        "median ms",
        "budget left ms",
        title=f"agents list on {kind}, step by step after `import sqlmodel` "
        f"(budget {budget * 1000:.0f} ms: {TARGET_RATIO}x of {baseline:.3f} s, less the import)",
    )
    left = budget
    for label, values in steps.items():
        median = statistics.median(values)
        left -= median
        table.add_row(label, f"{median * 1000:.1f}", f"{left * 1000:.1f}")
    console.print(table)


def report(kind: str, times: dict[str, list[float]], console: Console) -> None:
    """Print medians, p90 and ratios to the baseline's median."""
    labels = list(times)
    baseline = statistics.median(times[labels[0]])
    table = Table(
        "command",
        "median s",
        "p90 s",
        "x import sqlmodel",
        title=f"CLI start-up on an empty migrated {kind} store ({len(times[labels[0]])} runs)",
    )
    for label in labels:
        median = statistics.median(times[label])
        table.add_row(
            label,
            f"{median:.3f}",
            f"{percentile(times[label], 0.9):.3f}",
            f"{median / baseline:.2f}",
        )
    console.print(table)
    ratio = statistics.median(times["agentops agents list"]) / baseline
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    console.print(f"target: agents list within {TARGET_RATIO}x of import sqlmodel: {verdict}")


def register_reviewer(url: str) -> None:
    """Migrate the store and sign up REVIEWER: claiming needs a registered reviewer."""
    from sqlmodel import Session

    from agentops.agents.service import ensure_person
    from agentops.store.models import Role

    engine = migrated_engine(url)
    with Session(engine) as session:
        ensure_person(session, email=REVIEWER, role=Role.reviewer)
        session.commit()
    engine.dispose()


def run(options: ScaleOptions, console: Console, *, runs: int | None = None) -> None:
    """Measure and print CLI start-up on each of the options' databases."""
    # scale.py's --quick shrinks every size; start-up has none, so it means fewer rounds.
    quick = max(options.ingest_sizes) < 1_000_000
    rounds = runs or (QUICK_RUNS if quick else FULL_RUNS)
    for kind in options.databases:
        with scratch_database(kind, workdir=options.workdir) as url:
            register_reviewer(url)
            times = measure(kind, url, runs=rounds)
            report(kind, times, console)
            baseline = statistics.median(next(iter(times.values())))
            report_breakdown(kind, breakdown(kind, url, runs=rounds), baseline, console)


def main(argv: Sequence[str] | None = None) -> None:
    """Standalone entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_RUNS} rounds, not {FULL_RUNS}"
    )
    parser.add_argument("--runs", type=int, help="rounds to time (overrides --quick)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args(argv)
    options = ScaleOptions()
    if args.quick:
        options = replace(options, ingest_sizes=(2_000, 5_000))
    if args.database:
        options = replace(options, databases=tuple(args.database))
    run(options, Console(), runs=args.runs)


if __name__ == "__main__":
    main()
