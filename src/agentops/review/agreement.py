"""Agreement between two reviewers of the same items: raw, Cohen's kappa, Gwet's AC1 (pure).

Kappa corrects for chance using each reviewer's own marginals; when nearly everything
passes (adherence around 95 %) its chance term approaches 1 and kappa collapses even when
reviewers almost always agree (the "kappa paradox"). Gwet's AC1 uses a chance term that
stays small there, so both are reported. Intervals are percentile bootstraps over items.

Written out here rather than taken from irrCAC (the reference implementation of AC1),
which would pull pandas, numpy and scipy into every install for thirty lines of
arithmetic; the tests check these against worked examples from Gwet (2008).
"""

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

Pair = tuple[Hashable, Hashable]


@dataclass(frozen=True)
class Interval:
    """A statistic with its bootstrap interval (None where undefined)."""

    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Agreement:
    """How much two reviewers agree on n items."""

    n: int
    raw: Interval
    kappa: Interval
    ac1: Interval


def raw_agreement(pairs: Sequence[Pair]) -> float | None:
    """Share of items both reviewers judged the same."""
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


def cohen_kappa(pairs: Sequence[Pair]) -> float | None:
    """Cohen's kappa; None when chance agreement is certain (one category used by both)."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    categories = {a for a, _ in pairs} | {b for _, b in pairs}
    expected = sum(
        (sum(a == c for a, _ in pairs) / n) * (sum(b == c for _, b in pairs) / n)
        for c in categories
    )
    if expected >= 1:
        return None
    return (observed - expected) / (1 - expected)


def gwet_ac1(pairs: Sequence[Pair], categories: Sequence[Hashable] | None = None) -> float | None:
    """Gwet's AC1 for two raters over the given categories (default: those seen, at least 2)."""
    if not pairs:
        return None
    n = len(pairs)
    if categories:
        seen = list(categories)
    else:
        seen = sorted({a for a, _ in pairs} | {b for _, b in pairs}, key=str)
    q = max(len(seen), 2)
    observed = sum(a == b for a, b in pairs) / n
    shares = [
        (sum(a == c for a, _ in pairs) + sum(b == c for _, b in pairs)) / (2 * n) for c in seen
    ]
    expected = sum(p * (1 - p) for p in shares) / (q - 1)
    if expected >= 1:
        return None
    return (observed - expected) / (1 - expected)


def agreement(
    pairs: Sequence[Pair],
    *,
    categories: Sequence[Hashable] | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Agreement:
    """Raw agreement, kappa and AC1 with percentile bootstrap intervals over the items."""
    rng = random.Random(seed)
    estimates = {
        "raw": raw_agreement(pairs),
        "kappa": cohen_kappa(pairs),
        "ac1": gwet_ac1(pairs, categories),
    }
    boots: dict[str, list[float]] = {name: [] for name in estimates}
    if len(pairs) > 1:
        for _ in range(resamples):
            resample = [pairs[rng.randrange(len(pairs))] for _ in pairs]
            for name, value in (
                ("raw", raw_agreement(resample)),
                ("kappa", cohen_kappa(resample)),
                ("ac1", gwet_ac1(resample, categories)),
            ):
                if value is not None:
                    boots[name].append(value)
    tail = (1 - confidence) / 2

    def interval(name: str) -> Interval:
        values = sorted(boots[name])
        if estimates[name] is None or not values:
            return Interval(estimates[name], None, None)
        low = values[int(tail * (len(values) - 1))]
        high = values[int((1 - tail) * (len(values) - 1))]
        return Interval(estimates[name], low, high)

    return Agreement(
        n=len(pairs), raw=interval("raw"), kappa=interval("kappa"), ac1=interval("ac1")
    )
