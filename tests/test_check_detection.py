"""Reviews plus certified checks in one chart: the promise kept exactly, detection sooner."""

import numpy as np
import pytest

from agentops.checks.detection import (
    Stream,
    design_combined,
    expected_flag_rate,
    flag_rates,
    hours_to_detect_single,
)

PROMISE = 200.0


def test_the_degraded_flag_rate_follows_from_the_lower_bounds() -> None:
    assert flag_rates(
        healthy_flag_rate=0.07, healthy=0.03, degraded=0.10, tpr_lower=0.7, tnr_lower=0.9
    ) == pytest.approx((0.07, 0.07 + 0.07 * 0.6))
    # A check no better than chance (TPR <= 1 - TNR) cannot feed a trigger.
    assert (
        flag_rates(
            healthy_flag_rate=0.07, healthy=0.03, degraded=0.10, tpr_lower=0.05, tnr_lower=0.9
        )
        is None
    )
    assert expected_flag_rate(0.1, tpr=0.8, tnr=0.95) == pytest.approx(0.08 + 0.9 * 0.05)


def test_one_stream_agrees_with_the_trigger_charts() -> None:
    reviews = Stream(0.1, 0.3, 20)
    chart = design_combined((reviews,), false_alarm_hours=PROMISE)
    assert chart.false_alarm_hours >= PROMISE
    single = hours_to_detect_single(reviews, false_alarm_hours=PROMISE, rate=0.3)
    assert chart.hours_to_detect((0.3,)) == pytest.approx(single, rel=0.05)


def test_both_streams_keep_the_promise_and_detect_sooner() -> None:
    # Larger rates than the benchmark's 3% -> 10%, for a coarse (fast) lattice.
    f0, f1 = expected_flag_rate(0.1, tpr=0.8, tnr=0.95), expected_flag_rate(0.3, tpr=0.8, tnr=0.95)
    reviews, check = Stream(0.1, 0.3, 20), Stream(f0, f1, 60)
    both = design_combined((reviews, check), false_alarm_hours=PROMISE)
    # Exact: the smallest threshold whose healthy interval reaches the promise.
    assert PROMISE <= both.false_alarm_hours < 1.1 * PROMISE
    alone = design_combined((reviews,), false_alarm_hours=PROMISE).hours_to_detect((0.3,))
    together = both.hours_to_detect((0.3, f1))
    assert together < 0.7 * alone
    # Healthy reviews but a drifting check alone still moves the chart, more slowly.
    assert together < both.hours_to_detect((0.1, f1)) < both.false_alarm_hours


def test_the_exact_interval_matches_a_short_simulation() -> None:
    chart = design_combined((Stream(0.2, 0.4, 2), Stream(0.3, 0.5, 3)), false_alarm_hours=10)
    rng = np.random.default_rng(5)
    runs, lengths = 4000, []
    shares = chart.shares
    state = np.zeros(runs, dtype=np.int64)
    done = np.zeros(runs, dtype=bool)
    count = np.zeros(runs)
    while not done.all():
        stream = (rng.random(runs) >= shares[0]).astype(int)
        up = np.array([s[0] for s in chart.steps])[stream]
        down = np.array([s[1] for s in chart.steps])[stream]
        rate = np.array([0.2, 0.3])[stream]
        event = rng.random(runs) < rate
        state = np.where(done, state, np.where(event, state + up, np.maximum(state - down, 0)))
        count += ~done
        done |= state >= chart.threshold
    lengths = count / chart.per_hour
    assert lengths.mean() == pytest.approx(chart.false_alarm_hours, rel=0.06)


def test_triggers_check_prints_time_to_detect_with_checks(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from agentops.cli.app import app

    folder = Path(str(tmp_path))
    (folder / "triggers.yaml").write_text(
        "version: 1\nagent: a\n"
        "expected_volume: {reviews_per_day: 480, conversations_per_day: 1440}\n"
        "triggers:\n  - name: policy\n    kind: policy_adherence\n    healthy_rate: 0.1\n"
        "    degraded_rates: [0.30, 0.50]\n    false_alarm_every: 2000 reviews\n"
    )
    (folder / "checks.yaml").write_text(
        "version: 1\nagent: a\nminimum: {tpr: 0.9, tnr: 0.9}\nchecks:\n"
        "  - {name: one, kind: max_calls_per_turn, max: 1}\n"
    )
    result = CliRunner().invoke(
        app,
        ["triggers", "check", str(folder / "triggers.yaml"), "--checks",
         str(folder / "checks.yaml"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    hours = json.loads(result.output)["triggers"][0]["time_to_detect_hours"]
    assert hours["false_alarm_hours"] == pytest.approx(2000 / 20)
    assert hours["both"] < hours["reviews_only"] and hours["both"] < hours["checks_only"]
