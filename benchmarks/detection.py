"""How long would it take to notice? The shipped detector against reference detectors.

Every detector is set to one false-alarm interval (50,000 reviews on an agent healthy at
3% violations) and timed from a fresh start at degraded rates 6%, 10%, 15% and 30%
against the ideal CUSUM tuned to the true rate. CUSUM charts and the restarted SPRT are
exact Markov chains; the bank and the windows are simulated (numpy, fixed seeds).

    python benchmarks/detection.py                 # the README table (a few minutes)
    python benchmarks/detection.py --bank-factors  # re-measure agentops' BANK_FACTOR
"""

import argparse
import math
import time
from collections.abc import Sequence

import numpy as np

from agentops.triggers.cusum import (
    ChartDesign,
    chart_delay,
    design_bank,
    design_chart,
    design_measured_bank,
    llr_steps,
)

HEALTHY = 0.03
TARGET = 50_000.0
LOW, HIGH = 0.06, 0.30
DEGRADED = (0.06, 0.10, 0.15, 0.30)
GUARANTEE = 0.90
Lattice = Sequence[tuple[int, int, int]]  # (up, down, threshold) per chart


def lattices(charts: Sequence[ChartDesign]) -> list[tuple[int, int, int]]:
    """The integer charts the simulation runs."""
    return [(chart.up, chart.down, chart.threshold) for chart in charts]


def bank_interval(
    charts: Lattice, *, rate: float, chains: int, steps: int, seed: int
) -> tuple[float, float]:
    """Regenerative Monte Carlo of a bank's false-alarm interval: (estimate, std. error)."""
    rng = np.random.default_rng(seed)
    ups = np.array([c[0] for c in charts])[:, None]
    downs = np.array([c[1] for c in charts])[:, None]
    limits = np.array([c[2] for c in charts])[:, None]
    state = np.zeros((len(charts), chains), dtype=np.int64)
    alarms = np.zeros(chains, dtype=np.int64)
    block = 256
    for start in range(0, steps, block):
        draws = rng.random((min(block, steps - start), chains)) < rate
        for events in draws:
            state = np.where(events, state + ups, np.maximum(state - downs, 0))
            hit = (state >= limits).any(axis=0)
            if hit.any():
                alarms += hit
                state[:, hit] = 0
    total = alarms.sum()
    estimate = chains * steps / max(total, 1)
    # Alarm counts per chain are nearly Poisson; the relative error follows.
    return estimate, estimate / math.sqrt(max(total, 1))


def bank_delay(charts: Lattice, *, rate: float, chains: int, seed: int) -> tuple[float, float]:
    """Monte Carlo of a bank's expected delay from a fresh start: (mean, std. error)."""
    rng = np.random.default_rng(seed)
    ups = np.array([c[0] for c in charts])[:, None]
    downs = np.array([c[1] for c in charts])[:, None]
    limits = np.array([c[2] for c in charts])[:, None]
    state = np.zeros((len(charts), chains), dtype=np.int64)
    delay = np.zeros(chains, dtype=np.int64)
    running = np.ones(chains, dtype=bool)
    step = 0
    while running.any():
        step += 1
        events = rng.random(chains) < rate
        state = np.where(events, state + ups, np.maximum(state - downs, 0))
        hit = running & (state >= limits).any(axis=0)
        delay[hit] = step
        running &= ~hit
    return float(delay.mean()), float(delay.std() / math.sqrt(chains))


def sprt_restart_run_length(
    *, up: int, down: int, upper: int, lower: int, rate: float, worst: bool = False
) -> float:
    """Exact run length of Wald's SPRT restarted at 0 after each all-clear (lattice chain)."""
    # States lower+1 .. upper-1 (the log-likelihood ratio on the lattice); index 0 is lower+1.
    size = upper - lower - 1
    values = np.arange(lower + 1, upper)
    origin = -lower - 1
    matrix = np.eye(size)
    rises = values + up
    stays = rises < upper
    matrix[np.arange(size)[stays], rises[stays] - lower - 1] -= rate
    falls = values - down
    falls = np.where(falls <= lower, 0, falls)  # an all-clear restarts the test at zero
    matrix[np.arange(size), falls - lower - 1] -= 1.0 - rate
    lengths = np.linalg.solve(matrix, np.ones(size))
    # Under a degraded rate the worst case starts just above the lower boundary, where
    # evidence of health has piled up; Lorden's worst case is that maximum.
    return float(lengths[origin] if worst is False else lengths.max())


def restarted_sprt(*, p1: float, beta: float) -> tuple[dict[float, float], float]:
    """The restarted SPRT at p0=3% vs p1, its upper boundary set to the target interval."""
    up_nats, down_nats = llr_steps(HEALTHY, p1)
    unit = down_nats / max(1, round(8 * down_nats / 0.1))
    up, down = round(up_nats / unit), round(down_nats / unit)

    def interval(upper: int, lower: int, rate: float = HEALTHY, worst: bool = False) -> float:
        return sprt_restart_run_length(
            up=up, down=down, upper=upper, lower=lower, rate=rate, worst=worst
        )

    # Wald's lower boundary ln(beta / (1 - alpha)) with alpha ~ 0: ln(beta).
    lower = -round(-math.log(beta) / unit)
    low, high = 1, 2
    while interval(high, lower) < TARGET:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if interval(middle, lower) >= TARGET:
            high = middle
        else:
            low = middle
    delays = {rate: interval(high, lower, rate, worst=True) for rate in DEGRADED}
    return delays, interval(high, lower)


def window_rule(
    *, window: int, limit: int, rate: float, chains: int, steps: int, seed: int, warm: bool
) -> tuple[float, float]:
    """Alarm when at least `limit` events are in the last `window`, restart on alarm.

    warm=False: regenerative false-alarm interval over `steps`; warm=True: delay after a
    healthy window's worth of data (the window is full when the change happens).
    """
    rng = np.random.default_rng(seed)
    ring = np.zeros((window, chains), dtype=np.int8)
    count = np.zeros(chains, dtype=np.int64)
    if warm:
        for position in range(window):
            new = rng.random(chains) < HEALTHY
            ring[position] = new
            count += new
        count = np.minimum(count, limit - 1)  # condition on no alarm before the change
    alarms = np.zeros(chains, dtype=np.int64)
    delay = np.zeros(chains, dtype=np.int64)
    running = np.ones(chains, dtype=bool)
    step = 0
    while (step < steps) if not warm else running.any():
        position = step % window
        new = (rng.random(chains) < rate).astype(np.int8)
        count += new - ring[position]
        ring[position] = new
        step += 1
        hit = count >= limit
        if warm:
            first = hit & running
            delay[first] = step
            running &= ~first
        elif hit.any():
            alarms += hit
            ring[:, hit] = 0
            count[hit] = 0
    if warm:
        return float(delay.mean()), float(delay.std() / math.sqrt(chains))
    total = alarms.sum()
    estimate = chains * steps / max(total, 1)
    return estimate, estimate / math.sqrt(max(total, 1))


def best_window(seed: int) -> tuple[int, int, float, dict[float, float]]:
    """The window length and count limit with the best worst-case ratio at the target."""
    best: tuple[float, int, int, float, dict[float, float]] | None = None
    for window in (100, 150, 200, 300, 450):
        # The smallest limit whose (simulated) interval reaches the target; a whole
        # number of events cannot land exactly on it, so each window sits a bit above.
        mean = window * HEALTHY
        limit = max(2, math.floor(mean + 3.5 * math.sqrt(mean)))
        while True:
            interval, _ = window_rule(
                window=window, limit=limit, rate=HEALTHY, chains=4000, steps=6000,
                seed=seed, warm=False,
            )
            if interval >= TARGET:
                break
            limit += 1
        delays = {
            rate: window_rule(
                window=window, limit=limit, rate=rate, chains=1500, steps=0,
                seed=seed + 1, warm=True,
            )[0]
            for rate in DEGRADED
        }
        worst = max(delays[rate] / IDEAL[rate] for rate in DEGRADED)
        if best is None or worst < best[0]:
            best = (worst, window, limit, interval, delays)
    assert best is not None
    return best[1], best[2], best[3], best[4]


def ideal_delays() -> dict[float, float]:
    """The ideal CUSUM, tuned to each true rate, at exactly the target interval."""
    return {
        rate: chart_delay(
            design_chart(
                healthy_rate=HEALTHY, degraded_rate=rate, calibrated_rate=HEALTHY, target=TARGET
            ),
            rate,
        )
        for rate in DEGRADED
    }


IDEAL: dict[float, float] = {}


def row(name: str, interval: str, delays: dict[float, float]) -> str:
    """One markdown table row: delays and their ratio to the ideal."""
    cells = [f"{delays[rate]:,.0f} ({delays[rate] / IDEAL[rate]:.2f}x)" for rate in DEGRADED]
    return f"| {name} | {interval} | " + " | ".join(cells) + " |"


def estimation_table() -> list[str]:
    """The shipped bank with its healthy rate counted on n reviews (truly 3%).

    The bank's interval at the true rate rises with the count of violations seen (a
    higher count calibrates at a higher upper bound), so the draws keeping the promise
    are exactly those at or above one count, found by bisection, and the median interval
    and delay are those at the median count.
    """
    lines = [
        "| healthy rate estimated from | draws keeping the promise | median interval "
        "| median delay at 10% |",
        "| --- | --- | --- | --- |",
    ]
    for n in (300, 1000, 3000):
        low, high = 0, round(n * LOW)
        while high - low > 1:
            middle = (low + high) // 2
            if measured_interval(middle, n)[0] >= TARGET:
                high = middle
            else:
                low = middle
        kept = sum(_binomial_mass(successes, n) for successes in range(high, n + 1))
        interval, delay = measured_interval(round(n * HEALTHY), n)
        lines.append(f"| {n:,} reviews | {kept:.1%} | {interval:,.0f} | {delay:,.0f} |")
    return lines


def measured_interval(successes: int, n: int) -> tuple[float, float]:
    """The bank calibrated on this count: its interval at the true 3%, its delay at 10%."""
    design = design_measured_bank(
        successes=successes, n=n, guarantee=GUARANTEE, degraded_low=LOW,
        degraded_high=HIGH, target=TARGET,
    )
    # Each chart's exact interval at the true rate, over the bank factor.
    interval = min(chart_delay(chart, HEALTHY) for chart in design.charts) / design.factor
    return interval, design.delay_bound(0.10)


def _binomial_mass(successes: int, n: int) -> float:
    return math.exp(
        math.lgamma(n + 1) - math.lgamma(successes + 1) - math.lgamma(n - successes + 1)
        + successes * math.log(HEALTHY) + (n - successes) * math.log1p(-HEALTHY)
    )


def measure_bank_factors() -> None:
    """Print, per bank size, the factor that puts the bank's interval at the target."""
    for count in range(2, 9):
        high = LOW * 1.71 ** (count - 1)
        design = design_bank(
            healthy_rate=HEALTHY, degraded_low=LOW, degraded_high=min(high, 0.95), target=TARGET
        )
        interval, error = bank_interval(
            lattices(design.charts), rate=HEALTHY, chains=20_000, steps=8_000, seed=count
        )
        # The factor that makes `BankDesign.false_alarm_every` equal the simulated one.
        needed = min(chart.false_alarm_every for chart in design.charts) / interval
        print(f"{count} charts: interval {interval:,.0f} ± {error:,.0f}; factor {needed:.2f}")


def main() -> None:
    """Print the detection table for the README."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bank-factors", action="store_true")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.bank_factors:
        measure_bank_factors()
        return
    IDEAL.update(ideal_delays())
    bank = design_bank(healthy_rate=HEALTHY, degraded_low=LOW, degraded_high=HIGH, target=TARGET)
    charts = lattices(bank.charts)
    interval, error = bank_interval(
        charts, rate=HEALTHY, chains=40_000, steps=5_000, seed=args.seed
    )
    shipped = {
        rate: bank_delay(charts, rate=rate, chains=20_000, seed=args.seed + index)[0]
        for index, rate in enumerate(DEGRADED)
    }
    single = design_chart(
        healthy_rate=HEALTHY, degraded_rate=0.10, calibrated_rate=HEALTHY, target=TARGET
    )
    sprt, sprt_interval = restarted_sprt(p1=0.10, beta=0.10)
    window, limit, window_interval, window_delays = best_window(args.seed)
    naive_interval, _ = window_rule(
        window=200, limit=11, rate=HEALTHY, chains=4000, steps=3000, seed=args.seed, warm=False
    )
    naive = {
        rate: window_rule(
            window=200, limit=11, rate=rate, chains=1500, steps=0, seed=args.seed, warm=True
        )[0]
        for rate in DEGRADED
    }
    rates = " | ".join(f"delay at {rate:.0%}" for rate in DEGRADED)
    print(f"healthy {HEALTHY:.0%}; delays in reviews from a fresh start (ratio to the ideal)\n")
    print(f"| detector | false alarm every | {rates} |")
    print("| --- | --- |" + " --- |" * len(DEGRADED))
    print(row("ideal CUSUM tuned to the true rate (exact)", f"{TARGET:,.0f}", IDEAL))
    print(
        row(
            f"**shipped: bank of {len(bank.charts)} CUSUMs "
            + ", ".join(f"{c.degraded_rate:.1%}" for c in bank.charts)
            + "**",
            f"{interval:,.0f} ± {error:,.0f}",
            shipped,
        )
    )
    print(
        row(
            "single CUSUM tuned to 10% (exact)",
            f"{single.false_alarm_every:,.0f}",
            {rate: chart_delay(single, rate) for rate in DEGRADED},
        )
    )
    sprt_name = "restarted SPRT, p1 10%, beta 10% (exact, worst start)"
    print(row(sprt_name, f"{sprt_interval:,.0f}", sprt))
    print(
        row(
            f"best sliding window: >= {limit} in the last {window}",
            f"{window_interval:,.0f}",
            window_delays,
        )
    )
    print(row("naive: adherence < 95% over the last 200", f"{naive_interval:,.0f}", naive))
    worst = max(shipped[rate] / IDEAL[rate] for rate in DEGRADED)
    print(f"\nshipped worst-case ratio to the ideal: {worst:.3f}x")
    print(
        f"\nhealthy rate estimated (truly 3%), thresholds calibrated at the one-sided "
        f"{GUARANTEE:.0%} upper bound; promise {TARGET:,.0f} reviews:\n"
    )
    for line in estimation_table():
        print(line)
    print(f"\n(ran in {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
