"""Benchmark: agentops at fleet scale, every figure of issue 11 in one run.

    python benchmarks/scale.py [--quick] [--only ingest,evaluation,sampling,cli,claims]
        [--db sqlite,postgresql] [--workdir DIR]

Each part measures against a baseline taken in the same run and prints the ratio:
- ingest: records/s and peak memory at 10k, 100k and 1M generated records, against orjson
  parsing alone and against a raw bulk insert (COPY on PostgreSQL, executemany on SQLite)
  of the same rows into the same table;
- evaluation: trigger evaluation time with 1k, 10k and 100k reviews of history;
- sampling: a 1-hour and a 24-hour window with 10k, 100k and 1M conversations stored,
  time and peak memory;
- cli: start-up of `agentops --help`, `agents list` and `review next` against
  `python -c "import sqlmodel"`;
- claims: claim p50/p99 with 1, 10 and 50 concurrent reviewers on PostgreSQL.
Records are the shared tau-airline transcripts (../shared/data/tau-airline) under new ids
and times (benchmarks/scale_data.py). The full run needs about 40 GB of free disk for the
1M-record stores (--workdir chooses where SQLite files go) and takes a long while; --quick
runs every part at small sizes in a few minutes. PostgreSQL: AGENTOPS_TEST_POSTGRES_URL
(default postgres@127.0.0.1/test; scratch databases are created and dropped).
"""

import argparse
import importlib
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from scale_data import ScaleOptions

PARTS = ("ingest", "evaluation", "sampling", "cli", "claims")
QUICK = ScaleOptions(
    ingest_sizes=(2_000, 5_000),
    review_sizes=(1_000, 3_000),
    stored_sizes=(2_000, 10_000),
    reviewers=(1, 10, 50),
)


def options_from(args: argparse.Namespace) -> ScaleOptions:
    """The sizes and databases this run measures."""
    options = QUICK if args.quick else ScaleOptions()
    databases = tuple(name.strip() for name in args.db.split(",") if name.strip())
    return replace(options, databases=databases, workdir=Path(args.workdir))


def parse_parts(text: str) -> list[str]:
    """The parts named in --only, in the order given; exits on an unknown name."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--db", default="sqlite,postgresql", help="databases to measure")
    parser.add_argument("--workdir", default=os.environ.get("TMPDIR", "/tmp"))
    args = parser.parse_args()
    options = options_from(args)
    console = Console(width=160)
    for part in parse_parts(args.only):
        module = importlib.import_module(f"scale_{part}")
        console.rule(f"{part}")
        started = time.perf_counter()
        module.run(options, console)
        console.print(f"({part} took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
