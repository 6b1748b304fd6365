import math
from fractions import Fraction

import pytest

from agentops.triggers.statistics import (
    binomial_cdf_table,
    normal_quantile,
    quantile,
    quantile_lower_bound,
    quantile_upper_lower_bound,
    sprt_bernoulli,
    sprt_bounds,
    sprt_monitor,
    wilson_interval,
    wilson_lower_bound,
)


def test_normal_quantile_known_values() -> None:
    assert normal_quantile(0.5) == pytest.approx(0.0, abs=1e-12)
    assert normal_quantile(0.975) == pytest.approx(1.959964, abs=1e-6)
    assert normal_quantile(0.05) == pytest.approx(-1.644854, abs=1e-6)
    with pytest.raises(ValueError):
        normal_quantile(1.0)


def test_wilson_interval_known_values() -> None:
    lower, upper = wilson_interval(5, 100, confidence=0.95)
    assert lower == pytest.approx(0.0215, abs=1e-4)
    assert upper == pytest.approx(0.1118, abs=1e-4)
    # 20/50 at 90%, by hand from z = 1.644854: centre 0.405134, half-width 0.111114.
    lower, upper = wilson_interval(20, 50, confidence=0.90)
    assert lower == pytest.approx(0.29402, abs=1e-5)
    assert upper == pytest.approx(0.51625, abs=1e-5)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    z2 = 1.959964**2
    lower, upper = wilson_interval(0, 10)
    assert lower == 0.0
    assert upper == pytest.approx(z2 / (10 + z2), abs=1e-6)
    lower, upper = wilson_interval(10, 10)
    assert lower == pytest.approx(10 / (10 + z2), abs=1e-6)
    assert upper == 1.0
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)


def test_wilson_lower_bound_is_one_sided() -> None:
    # 18/100 at 95%, by hand: z = Phi^-1(0.95) = 1.644854, z^2 = 2.705543,
    # denominator 1 + z^2/100 = 1.027055, centre (0.18 + z^2/200) / 1.027055 = 0.188430,
    # half-width z * sqrt(0.18 * 0.82 / 100 + z^2 / 40000) / 1.027055
    #            = 1.644854 * sqrt(0.00154364) / 1.027055 = 0.062923,
    # lower bound 0.188430 - 0.062923 = 0.125507.
    assert wilson_lower_bound(18, 100, confidence=0.95) == pytest.approx(0.125507, abs=1e-6)
    # The two-sided 95% interval's lower end uses z = 1.959964 and is lower: 0.117002.
    assert wilson_interval(18, 100, confidence=0.95)[0] == pytest.approx(0.117002, abs=1e-6)


def test_wilson_lower_bound_edges() -> None:
    assert wilson_lower_bound(0, 0, confidence=0.95) == 0.0
    assert wilson_lower_bound(0, 10, confidence=0.95) == 0.0
    # All successes: centre - half-width simplifies to n / (n + z^2).
    z2 = 1.644854**2
    assert wilson_lower_bound(10, 10, confidence=0.95) == pytest.approx(10 / (10 + z2), abs=1e-6)
    with pytest.raises(ValueError):
        wilson_lower_bound(11, 10, confidence=0.95)
    with pytest.raises(ValueError):
        wilson_lower_bound(1, 10, confidence=1.0)


@pytest.mark.parametrize(
    ("successes", "n", "confidence"),
    [(18, 100, 0.95), (21, 60, 0.95), (0, 30, 0.9), (7, 7, 0.99), (1, 3, 0.8), (250, 1000, 0.975)],
)
def test_one_sided_wilson_at_c_is_two_sided_lower_end_at_2c_minus_1(
    successes: int, n: int, confidence: float
) -> None:
    # A two-sided interval at 2c - 1 leaves (1 - (2c - 1)) / 2 = 1 - c in each tail, so both
    # use z = Phi^-1(c): the same bound, exactly, without any simulation.
    one_sided = wilson_lower_bound(successes, n, confidence=confidence)
    two_sided_lower, _ = wilson_interval(successes, n, confidence=2 * confidence - 1)
    assert one_sided == pytest.approx(two_sided_lower, abs=1e-12)
    # So the two-sided interval at c is stricter than a one-sided test at c needs.
    assert wilson_interval(successes, n, confidence=confidence)[0] <= one_sided


def test_sprt_bounds_are_walds() -> None:
    upper, lower = sprt_bounds(alpha=0.05, beta=0.10)
    assert upper == pytest.approx(math.log(0.90 / 0.05))
    assert lower == pytest.approx(math.log(0.10 / 0.95))
    assert upper == pytest.approx(2.890372, abs=1e-6)
    assert lower == pytest.approx(-2.251292, abs=1e-6)


def test_sprt_all_violations_breach_after_three() -> None:
    # Each violation adds ln(0.20 / 0.05) = ln 4: 2 ln 4 = 2.77 < A = 2.89 <= 3 ln 4.
    result = sprt_bernoulli([True] * 10, p0=0.05, p1=0.20, alpha=0.05, beta=0.10)
    assert result.decision == "accept_h1"
    assert result.n_used == 3
    assert result.violations == 3
    assert result.llr == pytest.approx(3 * math.log(4))
    assert result.upper == pytest.approx(math.log(18))


def test_sprt_clean_reviews_accept_h0_after_fourteen() -> None:
    # Each clean review adds ln(0.80 / 0.95) = -0.17185: 14 of them pass B = -2.2513.
    result = sprt_bernoulli([False] * 30, p0=0.05, p1=0.20, alpha=0.05, beta=0.10)
    assert result.decision == "accept_h0"
    assert result.n_used == 14
    assert result.violations == 0
    assert result.llr == pytest.approx(14 * math.log(0.80 / 0.95))


def test_sprt_stops_at_first_crossing_and_continues_without_data() -> None:
    stopped = sprt_bernoulli(
        [True, True, True] + [False] * 50, p0=0.05, p1=0.20, alpha=0.05, beta=0.10
    )
    assert (stopped.decision, stopped.n_used) == ("accept_h1", 3)

    empty = sprt_bernoulli([], p0=0.05, p1=0.20, alpha=0.05, beta=0.10)
    assert (empty.decision, empty.n_used, empty.llr, empty.violations) == ("continue", 0, 0.0, 0)

    undecided = sprt_bernoulli([True, False, False], p0=0.05, p1=0.20, alpha=0.05, beta=0.10)
    assert undecided.decision == "continue"
    assert undecided.n_used == 3
    assert undecided.llr == pytest.approx(math.log(4) + 2 * math.log(0.80 / 0.95))


def test_sprt_rejects_bad_hypotheses() -> None:
    with pytest.raises(ValueError):
        sprt_bernoulli([True], p0=0.2, p1=0.1, alpha=0.05, beta=0.1)
    with pytest.raises(ValueError):
        sprt_bernoulli([True], p0=0.0, p1=0.1, alpha=0.05, beta=0.1)
    with pytest.raises(ValueError):
        sprt_bernoulli([True], p0=0.05, p1=0.2, alpha=0.6, beta=0.5)


def test_quantile_interpolates_like_numpy() -> None:
    assert quantile([1, 2, 3, 4], 0.5) == 2.5
    assert quantile(list(range(1, 101)), 0.95) == pytest.approx(95.05)
    assert quantile([7.0], 0.95) == 7.0
    assert quantile([3, 1, 2], 0.0) == 1
    assert quantile([3, 1, 2], 1.0) == 3
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_binomial_cdf_matches_exact_sum() -> None:
    table = binomial_cdf_table(20, 0.3)
    for k in (0, 5, 6, 19):
        exact = sum(math.comb(20, i) * 0.3**i * 0.7 ** (20 - i) for i in range(k + 1))
        assert table[k] == pytest.approx(exact, rel=1e-9)
    assert table[-1] == pytest.approx(1.0)
    # Large n stays finite in log space where math.comb * p**k would overflow a float.
    assert binomial_cdf_table(5000, 0.95)[-1] == pytest.approx(1.0)


def test_median_interval_matches_textbook_ranks() -> None:
    # The classic distribution-free 95% interval for a median of n = 100 is (X(40), X(61)).
    assert quantile_upper_lower_bound(list(range(1, 101)), 0.5, confidence=0.95) == (40.0, 61.0)


def test_one_sided_median_bound_matches_textbook_rank() -> None:
    # n = 100, q = 0.5: P(Bin(100, 0.5) <= 41) = 0.0443 <= 0.05 < P(<= 42) = 0.0666,
    # so the one-sided 95% lower bound is X(42); the two-sided interval's lower end is X(40).
    assert quantile_lower_bound(list(range(1, 101)), 0.5, confidence=0.95) == 42.0


def _exact_lower_rank(n: int, q: Fraction, confidence: Fraction) -> int | None:
    cdf = [
        sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(k + 1)) for k in range(n + 1)
    ]
    ranks = [r for r in range(1, n + 1) if cdf[r - 1] <= 1 - confidence]
    return max(ranks) if ranks else None


@pytest.mark.parametrize("n", [20, 50, 60, 150])
def test_one_sided_p95_bound_matches_exact_rational_rank(n: int) -> None:
    values = [float(10 * i) for i in reversed(range(1, n + 1))]
    rank = _exact_lower_rank(n, Fraction(95, 100), Fraction(95, 100))
    assert rank is not None
    ordered = sorted(values)
    assert quantile_lower_bound(values, 0.95, confidence=0.95) == ordered[rank - 1]
    # The same rank as the lower end of the two-sided 90% interval.
    two_sided_lower, _ = quantile_upper_lower_bound(values, 0.95, confidence=0.90)
    assert two_sided_lower == ordered[rank - 1]
    assert quantile_lower_bound(values, 0.95, confidence=0.95) <= quantile(values, 0.95)


def test_one_sided_quantile_bound_with_too_little_data() -> None:
    assert quantile_lower_bound([], 0.95, confidence=0.95) == -math.inf
    # X(1) bounds the median from below with confidence 1 - 0.5**n: 0.9375 for n = 4, too
    # little for 95%; 0.96875 for n = 5.
    assert quantile_lower_bound([4, 3, 2, 1], 0.5, confidence=0.95) == -math.inf
    assert quantile_lower_bound([5, 4, 3, 2, 1], 0.5, confidence=0.95) == 1.0
    with pytest.raises(ValueError):
        quantile_lower_bound([1.0], 1.0, confidence=0.95)
    with pytest.raises(ValueError):
        quantile_lower_bound([1.0], 0.5, confidence=0.0)


def _exact_ranks(n: int, q: Fraction, confidence: Fraction) -> tuple[int | None, int | None]:
    tail = (1 - confidence) / 2
    cdf = [
        sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(k + 1)) for k in range(n + 1)
    ]
    lowers = [r for r in range(1, n + 1) if cdf[r - 1] <= tail]
    uppers = [r for r in range(1, n + 1) if cdf[r - 1] >= 1 - tail]
    return (max(lowers) if lowers else None, min(uppers) if uppers else None)


@pytest.mark.parametrize("n", [20, 50, 80, 150])
def test_p95_bounds_match_exact_rational_ranks(n: int) -> None:
    values = [float(10 * i) for i in range(1, n + 1)]
    lower_rank, upper_rank = _exact_ranks(n, Fraction(95, 100), Fraction(95, 100))
    lower, upper = quantile_upper_lower_bound(values, 0.95, confidence=0.95)
    assert lower == (values[lower_rank - 1] if lower_rank else -math.inf)
    assert upper == (values[upper_rank - 1] if upper_rank else math.inf)
    assert lower <= quantile(values, 0.95) <= upper


def test_quantile_bounds_with_too_little_data() -> None:
    assert quantile_upper_lower_bound([], 0.95, confidence=0.95) == (-math.inf, math.inf)
    # 50 values cannot bound p95 from above at 95%: that needs 1 - 0.95**n >= 0.975, n >= 72.
    lower, upper = quantile_upper_lower_bound(list(range(50)), 0.95, confidence=0.95)
    assert math.isfinite(lower)
    assert upper == math.inf
    lower, upper = quantile_upper_lower_bound([5.0], 0.95, confidence=0.95)
    assert (lower, upper) == (-math.inf, math.inf)


def test_sprt_monitor_restarts_after_an_all_clear() -> None:
    outcomes = [False] * 14 + [True] * 3
    single = sprt_bernoulli(outcomes, p0=0.05, p1=0.20, alpha=0.05, beta=0.10)
    assert (single.decision, single.n_used) == ("accept_h0", 14)
    monitor = sprt_monitor(outcomes, p0=0.05, p1=0.20, alpha=0.05, beta=0.10)
    assert monitor.decision == "accept_h1"
    assert (monitor.deciding_start, monitor.clears) == (14, 1)
    assert monitor.deciding is not None and monitor.deciding.n_used == 3


def test_sprt_monitor_keeps_the_latest_all_clear() -> None:
    monitor = sprt_monitor([False] * 20, p0=0.05, p1=0.20, alpha=0.05, beta=0.10)
    assert monitor.decision == "accept_h0" and monitor.clears == 1
    assert monitor.deciding is not None and monitor.deciding.n_used == 14
    assert (monitor.current_start, monitor.current.n_used) == (14, 6)
    empty = sprt_monitor([], p0=0.05, p1=0.20, alpha=0.05, beta=0.10)
    assert (empty.decision, empty.deciding, empty.current.n_used) == ("continue", None, 0)
