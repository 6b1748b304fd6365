"""Window-level health signals computed from per-conversation facts (pure)."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SignalInput:
    """The per-conversation facts the window signals are built from."""

    escalated: bool
    contained: bool
    sentiment: float
    latency_ms: int | None


@dataclass(frozen=True)
class Signals:
    """Aggregate signals for one window; rates are None when there is nothing to measure."""

    conversations: int
    escalation_rate: float | None
    containment_rate: float | None
    mean_sentiment: float | None
    p95_latency_ms: float | None


def nearest_rank_percentile(values: Sequence[float], percentile: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `percentile`% at or below it."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[nearest_rank(len(ordered), percentile) - 1])


def nearest_rank(count: int, percentile: float) -> int:
    """The 1-based rank of the nearest-rank percentile among `count` sorted values."""
    return math.ceil(percentile / 100 * count)


def compute_signals(items: Sequence[SignalInput]) -> Signals:
    """Escalation and containment rates, mean sentiment and nearest-rank p95 latency."""
    count = len(items)
    if count == 0:
        return Signals(0, None, None, None, None)
    latencies = [item.latency_ms for item in items if item.latency_ms is not None]
    return Signals(
        conversations=count,
        escalation_rate=sum(item.escalated for item in items) / count,
        containment_rate=sum(item.contained for item in items) / count,
        mean_sentiment=plain_sum(item.sentiment for item in items) / count,
        p95_latency_ms=nearest_rank_percentile(latencies, 95),
    )


def plain_sum(values: Iterable[float]) -> float:
    """Left-to-right floating-point addition, as SQL's SUM does it over ordered rows.

    Python 3.12's sum() compensates rounding; the window signals the store computes in SQL
    must equal this, so the order and the arithmetic are spelled out.
    """
    total = 0.0
    for value in values:
        total += value
    return total
