"""Benchmark: how much sooner do reviews plus a certified check notice a degraded agent?

Run with `python benchmarks/policy_monitor.py [--quick]`. The violation rate goes from 3%
(healthy) to 10% (degraded); every detector is set to one false alarm per 1,000 hours.
Monitors: 20 human reviews per hour; a check with TPR .8 and TNR .95 on 60 conversations
per hour; both in one chart (agentops.checks.detection.design_combined); and the check on
600 conversations per hour. It prints, with the project's own code:

- the exact expected time to detect (Markov chain, as `triggers check` shows it);
- the same, measured by simulation with fixed hourly arrivals (20 reviews and 60
  conversations each hour, in random order), not the chain's model of random mixing;
- each detector's false-alarm interval measured by simulation: long runs of healthy
  traffic, restarting the chart after each alarm, hours divided by alarms.

Done when: both <= 0.65x the reviews-only time, at an equal measured false-alarm interval,
and the combined detector's measured interval within 10% of its promise.
"""

import argparse
import time

import numpy as np

from agentops.checks.detection import (
    CombinedChart,
    Stream,
    design_combined,
    expected_flag_rate,
)

HEALTHY, DEGRADED = 0.03, 0.10
TPR, TNR = 0.8, 0.95
PROMISE_HOURS = 1000.0


def hourly_order(chart: CombinedChart, rng: np.random.Generator) -> np.ndarray:
    """One hour's arrivals: the stream index of each observation, shuffled."""
    counts = [round(stream.per_hour) for stream in chart.streams]
    order = np.concatenate([np.full(count, index) for index, count in enumerate(counts)])
    rng.shuffle(order)
    return order


def simulate(
    chart: CombinedChart, rates: tuple[float, ...], *, runs: int, hours: int, seed: int
) -> tuple[float, int]:
    """Hours simulated per alarm over `runs` paths of `hours` (charts restart after alarms)."""
    rng = np.random.default_rng(seed)
    ups = np.array([up for up, _ in chart.steps])
    downs = np.array([down for _, down in chart.steps])
    state = np.zeros(runs, dtype=np.int64)
    alarms = 0
    for _ in range(hours):
        for index in hourly_order(chart, rng):
            event = rng.random(runs) < rates[index]
            state = np.where(event, state + ups[index], np.maximum(state - downs[index], 0))
            fired = state >= chart.threshold
            alarms += int(fired.sum())
            state[fired] = 0
    return runs * hours / max(alarms, 1), alarms


def time_to_detect(
    chart: CombinedChart, rates: tuple[float, ...], *, runs: int, seed: int
) -> float:
    """Mean hours from a fresh chart to its first alarm at these rates (simulated)."""
    rng = np.random.default_rng(seed)
    ups = np.array([up for up, _ in chart.steps])
    downs = np.array([down for _, down in chart.steps])
    state = np.zeros(runs, dtype=np.int64)
    detected = np.full(runs, np.nan)
    hour = 0
    while np.isnan(detected).any():
        order = hourly_order(chart, rng)
        for position, index in enumerate(order):
            event = rng.random(runs) < rates[index]
            state = np.where(event, state + ups[index], np.maximum(state - downs[index], 0))
            fired = (state >= chart.threshold) & np.isnan(detected)
            detected[fired] = hour + (position + 1) / len(order)
        hour += 1
    return float(detected.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer simulated hours and runs")
    args = parser.parse_args()
    # Healthy traffic simulated per detector: runs x hours, ~1,500 alarms in full mode.
    runs, hours = (600, 800) if args.quick else (2000, 800)
    detect_runs = 500 if args.quick else 2000
    started = time.perf_counter()
    f0 = expected_flag_rate(HEALTHY, tpr=TPR, tnr=TNR)
    f1 = expected_flag_rate(DEGRADED, tpr=TPR, tnr=TNR)
    reviews = Stream(HEALTHY, DEGRADED, 20)
    check = Stream(f0, f1, 60)
    monitors = {
        "20 reviews/h": (reviews,),
        "check on 60 conv/h": (check,),
        "both": (reviews, check),
        "check on 600 conv/h": (Stream(f0, f1, 600),),
    }
    print(
        f"violations {HEALTHY:.0%} -> {DEGRADED:.0%}; check TPR {TPR}, TNR {TNR}: flag rate "
        f"{f0:.4f} -> {f1:.4f}; promised false alarm every {PROMISE_HOURS:,.0f} h"
    )
    print(
        f"{'monitor':22} {'detect h (exact)':>17} {'detect h (sim)':>15} "
        f"{'false alarm h (exact)':>22} {'measured':>9} {'alarms':>7}"
    )
    results = {}
    for name, streams in monitors.items():
        chart = design_combined(streams, false_alarm_hours=PROMISE_HOURS)
        degraded = tuple(stream.degraded for stream in streams)
        healthy = tuple(stream.healthy for stream in streams)
        exact = chart.hours_to_detect(degraded)
        simulated = time_to_detect(chart, degraded, runs=detect_runs, seed=1)
        per_hour = max(stream.per_hour for stream in streams)
        # The fast stream needs fewer hours for the same number of alarms.
        sim_hours = hours if per_hour <= 100 else hours // 4
        measured, alarms = simulate(chart, healthy, runs=runs, hours=sim_hours, seed=2)
        results[name] = (exact, simulated, chart.false_alarm_hours, measured)
        print(
            f"{name:22} {exact:17.2f} {simulated:15.2f} {chart.false_alarm_hours:22.0f} "
            f"{measured:9.0f} {alarms:7d}"
        )
    both, alone = results["both"], results["20 reviews/h"]
    print(
        f"both / reviews only, time to detect: {both[1] / alone[1]:.2f}x simulated "
        f"({both[0] / alone[0]:.2f}x exact); target <= 0.65x"
    )
    print(f"measured false-alarm interval, both / reviews only: {both[3] / alone[3]:.2f}")
    print(
        f"combined detector's measured interval / promise: {both[3] / PROMISE_HOURS:.2f} "
        "(target within 10%)"
    )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
