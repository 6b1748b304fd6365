"""Benchmark: one full demo run, its detection delay and per-stage timings.

Run with `make bench` (or `python benchmarks/demo_timings.py --seed 7`). The detectors'
own delays and false-alarm intervals are measured by `benchmarks/detection.py`.
"""

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def demo_run(*, seed: int, console: Console) -> None:
    """Run the demo once in a scratch folder and print what it measured."""
    from agentops.demo.runner import execute_demo

    quiet = Console(quiet=True)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        result = execute_demo(seed=seed, workdir=Path(scratch), fresh=True, console=quiet)
        total = time.perf_counter() - started
    table = Table("measure", "value", title=f"demo run, seed {seed}")
    table.add_row("detected", str(result.detected))
    table.add_row("trigger(s) fired", ", ".join(result.breached_triggers) or "-")
    table.add_row("reviews needed to detect", str(result.reviews_to_detect))
    table.add_row(
        "degraded conversations served before detection",
        str(result.v2_conversations_before_detection),
    )
    table.add_row("simulated time to detect", str(result.simulated_time_to_detect))
    for stage, seconds in result.stage_seconds.items():
        table.add_row(f"wall clock: {stage}", f"{seconds:.2f} s")
    for label, outcome in (("rollback", result.rollback), ("redeploy", result.redeploy)):
        timings = outcome.get("timings", {})
        table.add_row(f"{label}: approval wait", f"{timings.get('approval_wait_s', 0):.2f} s")
        table.add_row(f"{label}: deploy + verify", f"{timings.get('executing_s', 0):.2f} s")
    table.add_row("wall clock: whole demo", f"{total:.2f} s")
    console.print(table)


def main() -> None:
    """Parse arguments, run the demo once, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="demo seed")
    args = parser.parse_args()
    demo_run(seed=args.seed, console=Console())


if __name__ == "__main__":
    main()
