"""How well a check agrees with people: weighted TPR/TNR with exact one-sided lower bounds (pure).

Reviews come from a sample with known inclusion probabilities, stratified by flag state,
so each review is weighted by 1/probability (Horvitz-Thompson) to stand for the traffic.
The bound is Clopper-Pearson on the effective counts (Kish's n_eff = (Σw)²/Σw², with
x_eff = rate·n_eff): exact for equal weights, and the usual design-effect correction when
the weights differ.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Rate:
    """A weighted rate with its one-sided lower bound; None when there is nothing to rate."""

    estimate: float | None
    lower: float | None
    reviews: int
    effective: float

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "estimate": self.estimate,
            "lower": self.lower,
            "reviews": self.reviews,
            "effective": round(self.effective, 3),
        }


@dataclass(frozen=True)
class Certification:
    """A check's agreement with reviews on one version, against the owner's minimum."""

    tpr: Rate
    tnr: Rate
    minimum_tpr: float
    minimum_tnr: float

    @property
    def certified(self) -> bool:
        """Both lower bounds reach the minimum: the check may feed a trigger."""
        return (
            self.tpr.lower is not None
            and self.tnr.lower is not None
            and self.tpr.lower >= self.minimum_tpr
            and self.tnr.lower >= self.minimum_tnr
        )


def weighted_rate(hits: Iterable[tuple[bool, float]], *, confidence: float = CONFIDENCE) -> Rate:
    """Share of weight on True, with its Clopper-Pearson lower bound on effective counts."""
    total = squares = hit = 0.0
    count = 0
    for success, weight in hits:
        total += weight
        squares += weight * weight
        hit += weight if success else 0.0
        count += 1
    if count == 0 or total <= 0:
        return Rate(None, None, 0, 0.0)
    estimate = hit / total
    effective = total * total / squares
    lower = clopper_pearson_lower(estimate * effective, effective, confidence)
    return Rate(estimate, lower, count, effective)


def certify(
    pairs: Iterable[tuple[bool, bool, float]], *, minimum_tpr: float, minimum_tnr: float
) -> Certification:
    """From (flagged, violation, weight) per reviewed conversation: TPR, TNR and the verdict."""
    listed = list(pairs)
    tpr = weighted_rate((flagged, weight) for flagged, violation, weight in listed if violation)
    tnr = weighted_rate(
        (not flagged, weight) for flagged, violation, weight in listed if not violation
    )
    return Certification(tpr, tnr, minimum_tpr, minimum_tnr)


def clopper_pearson_lower(successes: float, trials: float, confidence: float = CONFIDENCE) -> float:
    """Exact one-sided lower bound: the p with P(X ≥ successes | trials, p) = 1 - confidence.

    That p is the (1 - confidence) quantile of Beta(successes, trials - successes + 1);
    found by bisection on the regularized incomplete beta function.
    """
    if successes <= 0:
        return 0.0
    alpha = 1.0 - confidence
    a, b = successes, trials - successes + 1.0
    low, high = 0.0, 1.0
    for _ in range(100):
        middle = (low + high) / 2
        if regularized_beta(middle, a, b) < alpha:
            low = middle
        else:
            high = middle
    return low


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) by its continued fraction (Lentz), switching tails where it converges."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    log_front += a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result
