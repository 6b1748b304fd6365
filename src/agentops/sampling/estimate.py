"""The adherence rate from a weighted sample: Hájek estimate, honest interval (pure).

Each reviewed conversation carries its inclusion probability π and stratum. The rate is
the Hájek (ratio) estimator Σ y/π ÷ Σ 1/π. Its variance is the stratified linearisation
Σ_h W_h² (1 - f_h) s_h² / n_h, with W_h the stratum's estimated share of the population and
f_h its sampling fraction. The interval is Wilson's, computed with the effective sample
size n_eff = p(1 - p) / Var (capped at n; Kish's n_eff when the variance is zero), which
keeps it inside [0, 1] and sensible near 0 % and 100 %.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist


@dataclass(frozen=True)
class Observation:
    """One reviewed conversation: did it adhere, how likely it was to be sampled, its stratum."""

    adhered: bool
    inclusion_probability: float
    stratum: str = "all"


@dataclass(frozen=True)
class Estimate:
    """A weighted rate with its interval."""

    rate: float | None
    low: float | None
    high: float | None
    n: int
    effective_n: float
    strata: dict[str, "Estimate"] = field(default_factory=dict)


def wilson(p: float, n: float, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion p observed on n (possibly fractional) trials."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def hajek(
    observations: Sequence[Observation], *, confidence: float = 0.95, per_stratum: bool = True
) -> Estimate:
    """Hájek estimate of the adherence rate, its Wilson interval at the effective n."""
    n = len(observations)
    if n == 0:
        return Estimate(rate=None, low=None, high=None, n=0, effective_n=0.0)
    for obs in observations:
        if not 0 < obs.inclusion_probability <= 1:
            raise ValueError(f"inclusion probability must be in (0, 1], got {obs}")
    weights = [1 / obs.inclusion_probability for obs in observations]
    total = sum(weights)
    rate = sum(w for w, obs in zip(weights, observations, strict=True) if obs.adhered) / total
    variance = _stratified_variance(observations, rate_total=total)
    kish = total**2 / sum(w * w for w in weights)
    design_n = rate * (1 - rate) / variance if variance > 0 else kish
    effective = min(float(n), design_n)
    low, high = wilson(rate, effective, confidence=confidence)
    strata: dict[str, Estimate] = {}
    if per_stratum:
        groups: dict[str, list[Observation]] = {}
        for obs in observations:
            groups.setdefault(obs.stratum, []).append(obs)
        if len(groups) > 1:
            strata = {
                h: hajek(members, confidence=confidence, per_stratum=False)
                for h, members in sorted(groups.items())
            }
    return Estimate(rate=rate, low=low, high=high, n=n, effective_n=effective, strata=strata)


def _stratified_variance(observations: Sequence[Observation], *, rate_total: float) -> float:
    groups: dict[str, list[Observation]] = {}
    for obs in observations:
        groups.setdefault(obs.stratum, []).append(obs)
    variance = 0.0
    for members in groups.values():
        n_h = len(members)
        if n_h < 2:
            continue  # one look at a stratum gives no spread; the plan's floor avoids this
        # Within a stratum of a plan every π is n_h / N_h; averaging covers mixed windows.
        weight_h = sum(1 / m.inclusion_probability for m in members)
        fraction = n_h / weight_h
        p_h = sum(m.adhered for m in members) / n_h
        s2 = n_h / (n_h - 1) * p_h * (1 - p_h)
        share = weight_h / rate_total
        variance += share * share * (1 - fraction) * s2 / n_h
    return variance
