"""Benchmark: the demo's detection delay and per-stage timings, plus the SPRT's delay curve.

Run with `make bench` (or `python benchmarks/demo_timings.py --seeds 2000`). It prints:
1. one full demo run: reviews and simulated time needed to detect v2, and wall-clock
   seconds per stage (sampling, review, evaluation, rollback gate, redeploy gate);
2. a Monte-Carlo of the policy-adherence trigger alone: how many reviews the sequential
   test needs to flag a new version at several true violation rates, and how often it
   wrongly flags a healthy one;
3. the same test as a continuous monitor (restarted after each all-clear): reviews to a
   false alarm on a healthy agent, and reviews to detect a version that degrades later.
"""

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentops.triggers.config import load_trigger_file
from agentops.triggers.statistics import sprt_bernoulli, sprt_monitor

TRIGGERS = Path(__file__).resolve().parents[1] / "deployments" / "triggers.example.yaml"
VIOLATION_RATES = (0.02, 0.05, 0.10, 0.20, 0.30, 0.50)
MAX_REVIEWS = 400
MONITOR_HORIZON = 2000
CHANGE_AT = 200


def detection_curve(*, seeds: int, console: Console) -> None:
    """Print reviews-to-decision for the policy trigger at several violation rates."""
    trigger = policy_trigger()
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


def monitoring_curve(*, seeds: int, console: Console) -> None:
    """Print false-alarm run lengths and detection delays of the restarted test."""
    trigger = policy_trigger()
    table = Table(
        "scenario",
        "median reviews",
        "p90 reviews",
        "never within horizon",
        title=f"continuous monitoring (SPRT restarted after each all-clear), {seeds} runs each",
    )
    for rate in (0.02, 0.05):
        lengths = [
            _first_alarm([_draws(rate, MONITOR_HORIZON, f"h{rate}:{seed}")], trigger)
            for seed in range(seeds)
        ]
        table.add_row(f"healthy at {rate:.0%}: reviews to a false alarm", *_spread(lengths))
    for before, after in ((0.02, 0.30), (0.05, 0.20), (0.05, 0.30)):
        delays = []
        for seed in range(seeds):
            healthy = _draws(before, CHANGE_AT, f"b{before}:{seed}")
            degraded = _draws(after, MONITOR_HORIZON, f"a{after}:{seed}")
            alarm = _first_alarm([healthy, degraded], trigger)
            delays.append(None if alarm is None else alarm - CHANGE_AT)
        table.add_row(
            f"{before:.0%} → {after:.0%} after {CHANGE_AT} reviews: reviews to detect",
            *_spread(delays),
        )
    console.print(table)


def policy_trigger() -> Any:
    """The example file's policy-adherence trigger."""
    return next(t for t in load_trigger_file(TRIGGERS).triggers if t.kind == "policy_adherence")


def _draws(rate: float, count: int, key: str) -> list[bool]:
    rng = random.Random(key)
    return [rng.random() < rate for _ in range(count)]


def _first_alarm(parts: list[list[bool]], trigger: Any) -> int | None:
    outcomes = [outcome for part in parts for outcome in part]
    monitor = sprt_monitor(
        outcomes, p0=trigger.p0, p1=trigger.p1, alpha=trigger.alpha, beta=trigger.beta
    )
    if monitor.decision != "accept_h1" or monitor.deciding is None:
        return None
    return monitor.deciding_start + monitor.deciding.n_used


def _spread(values: list[int | None]) -> tuple[str, str, str]:
    seen = sorted(value for value in values if value is not None)
    never = f"{(len(values) - len(seen)) / len(values):.1%}"
    if not seen:
        return "-", "-", never
    return f"{statistics.median(seen):.0f}", f"{seen[int(0.9 * (len(seen) - 1))]}", never


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
    monitoring_curve(seeds=args.seeds, console=console)
    if not args.skip_demo:
        demo_run(seed=args.seed, console=console)


if __name__ == "__main__":
    main()
