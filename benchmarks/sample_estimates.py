"""Benchmark: does the weighted adherence interval cover the true rate about 95 % of the time?

Run with `python benchmarks/sample_estimates.py [--reps 1000]`. A fixed population of
conversations in strata of very different sizes and adherence rates is sampled 1,000 times
by the stratified plan (each time with a new salt, so a new sample), with unequal inclusion
probabilities (Neyman allocation, and proportional allocation with a floor that over-samples
the small strata). For each sample it computes the Hájek estimate and its Wilson interval
at the effective sample size, and prints how often the interval contains the true rate.
"""

import argparse
import random
import statistics
import time

from agentops.sampling.estimate import Observation, hajek
from agentops.sampling.plan import SamplePlan, Unit, draw

# (channel, intent, escalated, conversations, true adherence rate)
STRATA = (
    ("chat", "booking", False, 2400, 0.97),
    ("chat", "booking", True, 240, 0.80),
    ("voice", "refund", False, 900, 0.92),
    ("voice", "refund", True, 120, 0.65),
    ("chat", "baggage", False, 600, 0.995),
    ("email", "other", False, 60, 0.85),
)


def population(seed: int = 1) -> tuple[list[Unit], dict[int, bool]]:
    """The conversations and whether each one adhered (fixed for every replication)."""
    rng = random.Random(seed)
    units, adhered = [], {}
    for channel, intent, escalated, size, rate in STRATA:
        for _ in range(size):
            unit_id = len(units) + 1
            units.append(Unit(unit_id, f"conv-{unit_id}", channel, intent, escalated))
            adhered[unit_id] = rng.random() < rate
    return units, adhered


def coverage(plan: SamplePlan, *, reps: int) -> tuple[float, float, float, float]:
    """Share of intervals covering the truth, mean n, mean width, and the true rate."""
    units, adhered = population()
    truth = sum(adhered.values()) / len(units)
    covered, sizes, widths = 0, [], []
    for rep in range(reps):
        sample = draw(plan.model_copy(update={"salt": f"rep-{rep}"}), units)
        estimate = hajek(
            [Observation(adhered[d.id], d.inclusion_probability, d.stratum) for d in sample],
            per_stratum=False,
        )
        assert estimate.low is not None and estimate.high is not None
        covered += estimate.low <= truth <= estimate.high
        sizes.append(len(sample))
        widths.append(estimate.high - estimate.low)
    return covered / reps, statistics.mean(sizes), statistics.mean(widths), truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    args = parser.parse_args()
    plans = {
        "Neyman, floor 5": SamplePlan(allocation="neyman", floor=5, half_width=0.03),
        "proportional, floor 10": SamplePlan(allocation="proportional", floor=10, half_width=0.03),
    }
    print(f"{len(STRATA)} strata, {sum(s[3] for s in STRATA)} conversations, {args.reps} samples")
    for label, plan in plans.items():
        began = time.perf_counter()
        share, mean_n, mean_width, truth = coverage(plan, reps=args.reps)
        print(
            f"{label}: true rate {truth:.4f}; 95% interval covered it in {share:.1%} of "
            f"samples (mean n {mean_n:.0f}, mean width {mean_width:.3f}; "
            f"{time.perf_counter() - began:.1f} s)"
        )


if __name__ == "__main__":
    main()
