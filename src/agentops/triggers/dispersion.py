"""How far a rate varies from period to period beyond chance: overdispersion, measured.

The CUSUM banks assume every observation is an independent draw at one rate. Real
traffic is not: the escalation rate of a good day and a bad day differ, and slow replies
come in bursts during load. Counted per period (an hour, a day), independent draws give
period counts with binomial variance n p (1 - p); shared variation inflates it to

    n p (1 - p) (1 + (n - 1) rho)        (beta-binomial; rho the intra-period correlation)

so a period of n observations carries as much information as n / (1 + (n - 1) rho)
independent ones. rho comes from the moments of the period counts (the quasi-binomial
dispersion phi = Pearson X^2 / (periods - 1) and the periods' effective size), and the
homogeneity test asks whether X^2 is more than chance (chi-square, periods - 1 degrees of
freedom): a small p-value says the independence assumption is broken for this traffic.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from agentops.triggers.evaluate import Observation

PERIODS = {"hour": 3600, "day": 86_400}
# Fewer periods than this say too little about period-to-period variation to measure it.
MIN_PERIODS = 14
# Homogeneity rejected below this p-value: the counts vary more than independent draws.
SIGNIFICANCE = 0.01


@dataclass(frozen=True)
class Dispersion:
    """Period-to-period variation of one rate, measured on a baseline."""

    period: str
    periods: int
    observations: int
    rate: float
    phi: float  # Pearson X^2 / (periods - 1): 1 for independent draws
    rho: float  # intra-period correlation (beta-binomial), 0 for independent draws
    mean_size: float  # observations per period
    chi_square: float
    p_value: float

    @property
    def too_short(self) -> bool:
        """True when the baseline has too few periods to measure the variation."""
        return self.periods < MIN_PERIODS

    @property
    def homogeneous(self) -> bool:
        """True when the counts vary no more than independent draws would (at 1%)."""
        return self.p_value >= SIGNIFICANCE

    @property
    def rho_to_calibrate(self) -> float:
        """rho where homogeneity is rejected, else 0.

        A baseline's rho is noisy, and a calibration's run length is exponential in it: a
        chance rho on independent traffic would stretch the interval several times over.
        """
        return 0.0 if self.homogeneous else self.rho

    def inflation(self, size: float | None = None) -> float:
        """Variance of a period of `size` observations over the binomial's: 1 + (size-1) rho."""
        n = self.mean_size if size is None else size
        return 1.0 + max(0.0, n - 1.0) * self.rho

    def summary(self) -> str:
        """One line for `triggers check`, `evaluate --explain` and the report."""
        if self.periods < 2:
            return f"per {self.period}: one period only, variation not measurable"
        text = (
            f"per {self.period}: {self.periods} periods of about {self.mean_size:,.0f}; "
            f"dispersion phi {self.phi:.2f}, rho {self.rho:.2g} "
            f"(homogeneity p = {self.p_value:.2g}"
            + (", independent draws fit" if self.homogeneous else ", NOT independent")
            + ")"
        )
        if self.too_short:
            text += f"; warning: fewer than {MIN_PERIODS} periods, too short to measure well"
        return text

    def to_json(self) -> dict[str, object]:
        """A JSON-ready form for evidence and `--json` output."""
        return {
            "period": self.period,
            "periods": self.periods,
            "observations": self.observations,
            "rate": self.rate,
            "phi": self.phi,
            "rho": self.rho,
            "mean_size": self.mean_size,
            "chi_square": self.chi_square,
            "p_value": self.p_value,
            "homogeneous": self.homogeneous,
            "too_short": self.too_short,
            "summary": self.summary(),
        }


def period_counts(observations: Iterable[Observation], *, period: str) -> list[tuple[int, int]]:
    """(observations, events) per period (hour or day, UTC), in time order."""
    seconds = PERIODS[period]
    counts: dict[int, list[int]] = {}
    for observation in observations:
        key = _bucket(observation.at, seconds)
        bucket = counts.setdefault(key, [0, 0])
        bucket[0] += 1
        bucket[1] += int(observation.event)
    return [(n, x) for _, (n, x) in sorted(counts.items())]


def _bucket(at: datetime, seconds: int) -> int:
    return math.floor(at.timestamp() / seconds)


def estimate_dispersion(counts: Sequence[tuple[int, int]], *, period: str) -> Dispersion:
    """Quasi-binomial dispersion and beta-binomial rho from per-period (n, events) counts."""
    counts = [(n, x) for n, x in counts if n > 0]
    total = sum(n for n, _ in counts)
    events = sum(x for _, x in counts)
    periods = len(counts)
    rate = events / total if total else 0.0
    mean_size = total / periods if periods else 0.0
    if periods < 2 or not 0.0 < rate < 1.0:
        return Dispersion(period, periods, total, rate, 1.0, 0.0, mean_size, 0.0, 1.0)
    variance = rate * (1.0 - rate)
    chi_square = sum((x - n * rate) ** 2 / (n * variance) for n, x in counts)
    phi = chi_square / (periods - 1)
    # The periods' effective size (unequal sizes weigh in as in one-way ANOVA).
    size = (total - sum(n * n for n, _ in counts) / total) / (periods - 1)
    rho = max(0.0, (phi - 1.0) / (size - 1.0)) if size > 1.0 else 0.0
    p_value = chi_square_survival(chi_square, periods - 1)
    return Dispersion(period, periods, total, rate, phi, rho, mean_size, chi_square, p_value)


def measure(observations: Sequence[Observation]) -> dict[str, Dispersion]:
    """Hour-to-hour and day-to-day variation of one rate on a baseline's observations."""
    return {
        period: estimate_dispersion(period_counts(observations, period=period), period=period)
        for period in PERIODS
    }


def chi_square_survival(value: float, freedom: int) -> float:
    """P(X >= value) for X ~ chi-square with `freedom` degrees of freedom."""
    from scipy.stats import chi2

    return float(chi2.sf(value, freedom))
