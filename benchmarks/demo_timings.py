"""Benchmark: the demo's detection delay and per-stage timings, plus the SPRT's delay curve.

Run with `make bench` (or `python benchmarks/demo_timings.py --seeds 2000`). It prints:
1. one full demo run: reviews and simulated time needed to detect v2, and wall-clock
   seconds per stage (sampling, review, evaluation, rollback gate, redeploy gate);
2. a Monte-Carlo of the policy-adherence trigger alone: how many reviews the sequential
   test needs to flag an agent at several true violation rates, and how often it
   wrongly flags a healthy one.
"""

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentops.triggers.config import load_trigger_file
from agentops.triggers.statistics import sprt_bernoulli

TRIGGERS = Path(__file__).resolve().parents[1] / "deployments" / "triggers.example.yaml"
VIOLATION_RATES = (0.02, 0.05, 0.10, 0.20, 0.30, 0.50)
MAX_REVIEWS = 400


def detection_curve(*, seeds: int, console: Console) -> None:
    """Print reviews-to-decision for the policy trigger at several violation rates."""
    trigger = next(t for t in load_trigger_file(TRIGGERS).triggers if t.kind == "policy_adherence")
    table = Table(
        "true violation rate",
        "flagged (breach)",
        "cleared (ok)",
        "undecided",
        "median reviews to decide",
        "p90 reviews",
        title=f"SPRT p0={trigger.p0} p1={trigger.p1} alpha={trigger.alpha} beta={trigger.beta}, "
        f"{seeds} runs each",
    )
    for rate in VIOLATION_RATES:
        decided: list[int] = []
        counts = {"accept_h1": 0, "accept_h0": 0, "continue": 0}
        for seed in range(seeds):
            rng = random.Random(f"{rate}:{seed}")
            outcomes = [rng.random() < rate for _ in range(MAX_REVIEWS)]
            result = sprt_bernoulli(
                outcomes, p0=trigger.p0, p1=trigger.p1, alpha=trigger.alpha, beta=trigger.beta
            )
            counts[result.decision] += 1
            if result.decision != "continue":
                decided.append(result.n_used)
        decided.sort()
        table.add_row(
            f"{rate:.0%}",
            f"{counts['accept_h1'] / seeds:.1%}",
            f"{counts['accept_h0'] / seeds:.1%}",
            f"{counts['continue'] / seeds:.1%}",
            f"{statistics.median(decided):.0f}" if decided else "-",
            f"{decided[int(0.9 * (len(decided) - 1))]}" if decided else "-",
        )
    console.print(table)


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
    """Parse arguments, run both measurements, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="demo seed")
    parser.add_argument("--seeds", type=int, default=1000, help="Monte-Carlo runs per rate")
    parser.add_argument("--skip-demo", action="store_true", help="only the SPRT curve")
    args = parser.parse_args()
    console = Console()
    detection_curve(seeds=args.seeds, console=console)
    if not args.skip_demo:
        demo_run(seed=args.seed, console=console)


if __name__ == "__main__":
    main()
