"""Benchmark: does the PPI++ interval (reviews plus check flags) cover the true rate ~95 %?

Run with `python benchmarks/ppi_coverage.py [--quick]`. Each replication draws a version's
traffic (N conversations, true violation rate p), flags it with a check of given TPR/TNR,
reviews a simple random sample of n, and computes the PPI++ interval
(agentops.checks.estimate.ppi_mean) and the reviews-only interval (λ = 0). It prints the
coverage of both and their mean widths, for several check qualities and rates.
"""

import argparse
import time

import numpy as np

from agentops.checks.estimate import ppi_mean

SETTINGS = (
    # (true rate, TPR, TNR, conversations, reviews)
    (0.03, 0.8, 0.95, 1440, 480),
    (0.10, 0.8, 0.95, 1440, 480),
    (0.10, 0.6, 0.90, 1440, 480),
    (0.05, 0.95, 0.99, 14400, 480),
    (0.10, 0.8, 0.95, 2000, 60),
)


def replicate(rng: np.random.Generator, rate: float, tpr: float, tnr: float, big_n: int, n: int):
    truth = (rng.random(big_n) < rate).astype(float)
    noise = rng.random(big_n)
    flags = np.where(truth == 1, noise < tpr, noise > tnr).astype(float)
    reviewed = rng.choice(big_n, size=n, replace=False)
    tuned = ppi_mean(truth[reviewed], flags[reviewed], flags)
    alone = ppi_mean(truth[reviewed], flags[reviewed], flags, lam=0.0)
    target = truth.mean()
    return (
        tuned.lower <= target <= tuned.upper,
        alone.lower <= target <= alone.upper,
        tuned.upper - tuned.lower,
        alone.upper - alone.lower,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 replications per setting")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args()
    reps = args.reps or (500 if args.quick else 4000)
    rng = np.random.default_rng(2023)
    started = time.perf_counter()
    print(f"PPI++ coverage, nominal 95 %, {reps} replications per row")
    print(" rate  TPR   TNR      N    n | PPI++ cover  width | reviews cover  width")
    for rate, tpr, tnr, big_n, n in SETTINGS:
        rows = np.array([replicate(rng, rate, tpr, tnr, big_n, n) for _ in range(reps)])
        print(
            f"{rate:5.2f} {tpr:4.2f} {tnr:5.2f} {big_n:6d} {n:4d} | "
            f"{rows[:, 0].mean():10.3f} {rows[:, 2].mean():7.4f} | "
            f"{rows[:, 1].mean():12.3f} {rows[:, 3].mean():7.4f}"
        )
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
