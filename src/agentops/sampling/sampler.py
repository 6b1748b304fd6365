"""How many conversations to review, and which ones: reproducible random sampling (pure)."""

import math
import random
from collections.abc import Sequence
from statistics import NormalDist


class PopulationChanged(ValueError):
    """The population streamed past a draw is not the one it was sized for."""


def required_sample_size(
    population: int,
    *,
    margin: float = 0.05,
    confidence: float = 0.95,
    expected_rate: float = 0.5,
) -> int:
    """Cochran's sample size with finite population correction, never above the population."""
    if population < 0:
        raise ValueError(f"population must not be negative, got {population}")
    if not 0 < margin < 1:
        raise ValueError(f"margin must be between 0 and 1, got {margin}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if not 0 <= expected_rate <= 1:
        raise ValueError(f"expected_rate must be between 0 and 1, got {expected_rate}")
    if population == 0:
        return 0
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    infinite_size = z**2 * expected_rate * (1 - expected_rate) / margin**2
    corrected = infinite_size / (1 + (infinite_size - 1) / population)
    # A certain rate (p = 0 or 1) needs no sample by the formula, but one look is the minimum.
    return min(population, max(1, math.ceil(corrected)))


def draw_sample(ids: Sequence[int], *, size: int, seed: int, key: str) -> list[int]:
    """A simple random sample without replacement, identical for the same ids, size, seed, key."""
    # Sorting first makes the draw independent of the order the ids were fetched in.
    population = sorted(set(ids))
    return [population[p] for p in draw_positions(len(population), size=size, seed=seed, key=key)]


def draw_positions(population: int, *, size: int, seed: int, key: str) -> list[int]:
    """The sorted positions draw_sample takes from a sorted population of this size.

    random.sample picks positions from the length alone, so the store can hand over just
    the ids at these positions instead of the whole window.
    """
    if size < 0:
        raise ValueError(f"sample size must not be negative, got {size}")
    rng = random.Random(f"{seed}:{key}")
    return sorted(rng.sample(range(population), min(size, population)))
