import pytest

from agentops.signals.compute import (
    SignalInput,
    Signals,
    compute_signals,
    nearest_rank_percentile,
)


def test_empty_window_has_no_rates() -> None:
    assert compute_signals([]) == Signals(0, None, None, None, None)


def test_rates_and_mean_sentiment() -> None:
    items = [
        SignalInput(escalated=True, contained=False, sentiment=-0.5, latency_ms=100),
        SignalInput(escalated=False, contained=True, sentiment=0.5, latency_ms=200),
        SignalInput(escalated=False, contained=True, sentiment=1.0, latency_ms=300),
        SignalInput(escalated=False, contained=False, sentiment=0.0, latency_ms=None),
    ]
    signals = compute_signals(items)
    assert signals.conversations == 4
    assert signals.escalation_rate == pytest.approx(0.25)
    assert signals.containment_rate == pytest.approx(0.5)
    assert signals.mean_sentiment == pytest.approx(0.25)
    # Only three latencies: nearest rank ceil(0.95 * 3) = 3rd smallest.
    assert signals.p95_latency_ms == 300.0


def test_p95_is_none_without_latencies() -> None:
    items = [SignalInput(escalated=False, contained=True, sentiment=0.1, latency_ms=None)] * 3
    signals = compute_signals(items)
    assert signals.p95_latency_ms is None
    assert signals.escalation_rate == 0.0


def test_nearest_rank_p95_on_hundred_values() -> None:
    values = list(range(100, 0, -1))  # 1..100 in reverse: order must not matter
    assert nearest_rank_percentile(values, 95) == 95.0
    assert nearest_rank_percentile(values, 100) == 100.0
    assert nearest_rank_percentile([7], 95) == 7.0
    with pytest.raises(ValueError):
        nearest_rank_percentile(values, 0)
