"""A versioned, stratified sample plan and its reproducible hash-based draw (pure).

Conversations are grouped into strata (by default channel x intent x escalated). The
sample size comes from the target interval half-width; it is shared out proportionally
(with a floor per stratum) or by Neyman allocation. Within a stratum the conversations
with the smallest salted hashes of their ids are taken, so re-running the plan draws the
same sample, and each one's inclusion probability is n_h / N_h. A stratum's conversations
can be streamed past the draw (draw_streamed), which keeps only the sample in memory.
"""

import hashlib
import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentops.sampling.sampler import PopulationChanged, required_sample_size

STRATUM_FIELDS: tuple[Literal["channel", "intent", "escalated", "flagged"], ...] = (
    "channel",
    "intent",
    "escalated",
)


class SamplePlan(BaseModel):
    """How a window's review sample is drawn; stored with every sample it drew."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=1, ge=1)
    # "flagged": whether any of the agent's policy checks flagged the conversation, so
    # both flagged and unflagged conversations are reviewed (check certification).
    strata: tuple[Literal["channel", "intent", "escalated", "flagged"], ...] = STRATUM_FIELDS
    allocation: Literal["proportional", "neyman"] = "proportional"
    floor: int = Field(default=2, ge=0, le=1000)
    # The sample is sized so the adherence interval is about ±half_width wide.
    half_width: float = Field(default=0.05, gt=0, lt=0.5)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    expected_rate: float = Field(default=0.1, ge=0, le=0.5)
    max_size: int | None = Field(default=None, ge=1, le=100_000)
    salt: str = Field(default="agentops", min_length=1, max_length=100)


@dataclass(frozen=True)
class Unit:
    """A conversation as the plan sees it."""

    id: int
    external_id: str
    channel: str
    intent: str | None
    escalated: bool
    flagged: bool = False


@dataclass(frozen=True)
class Drawn:
    """A conversation in the sample, with its stratum and inclusion probability."""

    id: int
    stratum: str
    inclusion_probability: float


def stratum_of(unit: Unit, fields: Sequence[str]) -> str:
    """The stratum label, e.g. 'chat|rebooking|escalated'."""
    parts = []
    for name in fields:
        if name == "escalated":
            parts.append("escalated" if unit.escalated else "contained")
        elif name == "flagged":
            parts.append("flagged" if unit.flagged else "unflagged")
        else:
            parts.append(str(getattr(unit, name) or "-"))
    return "|".join(parts) or "all"


def salted_rank(salt: str, external_id: str) -> str:
    """A uniform, reproducible ordering key for a conversation."""
    return hashlib.sha256(f"{salt}:{external_id}".encode()).hexdigest()


def allocate(
    sizes: Mapping[str, int],
    total: int,
    *,
    allocation: str = "proportional",
    floor: int = 0,
    spreads: Mapping[str, float] | None = None,
) -> dict[str, int]:
    """Share `total` among strata (largest remainders), at least `floor` each, at most N_h."""
    population = sum(sizes.values())
    if population == 0 or total <= 0:
        return dict.fromkeys(sizes, 0)
    total = min(total, population)
    if allocation == "neyman":
        # N_h * S_h; a stratum with no known spread gets the largest possible (p = 0.5).
        weights = {h: n * (spreads or {}).get(h, 0.5) for h, n in sizes.items()}
    else:
        weights = {h: float(n) for h, n in sizes.items()}
    if sum(weights.values()) == 0:
        weights = {h: float(n) for h, n in sizes.items()}
    scale = total / sum(weights.values())
    raw = {h: w * scale for h, w in weights.items()}
    shares = {h: math.floor(r) for h, r in raw.items()}
    by_remainder = sorted(raw, key=lambda h: (raw[h] - shares[h], h), reverse=True)
    for h in by_remainder[: total - sum(shares.values())]:
        shares[h] += 1
    return {h: min(sizes[h], max(shares[h], min(floor, sizes[h]))) for h in sizes}


def plan_size(plan: SamplePlan, population: int) -> int:
    """The total sample size the plan asks for in a window of `population` conversations."""
    if population == 0:
        return 0
    size = required_sample_size(
        population,
        margin=plan.half_width,
        confidence=plan.confidence,
        expected_rate=plan.expected_rate,
    )
    return min(size, plan.max_size) if plan.max_size else size


def draw(
    plan: SamplePlan, units: Sequence[Unit], *, spreads: Mapping[str, float] | None = None
) -> list[Drawn]:
    """The plan's sample of these units: the same units give the same sample, every time."""
    sizes = Counter(stratum_of(unit, plan.strata) for unit in units)
    return draw_streamed(plan, units, sizes=sizes, spreads=spreads)


def draw_streamed(
    plan: SamplePlan,
    units: Iterable[Unit],
    *,
    sizes: Mapping[str, int],
    spreads: Mapping[str, float] | None = None,
) -> list[Drawn]:
    """The same sample as draw, from units streamed in id order with their strata sizes known.

    Each stratum keeps only its n_h smallest salted ranks, so memory follows the sample,
    not the window. Raises PopulationChanged when the units do not add up to `sizes`.
    """
    shares = allocate(
        sizes,
        plan_size(plan, sum(sizes.values())),
        allocation=plan.allocation,
        floor=plan.floor,
        spreads=spreads,
    )
    # Max-heaps of (rank, id) by negation: the top is the largest kept, the one to replace.
    kept: dict[str, list[tuple[int, int]]] = {h: [] for h in sizes}
    seen: Counter[str] = Counter()
    for unit in units:
        stratum = stratum_of(unit, plan.strata)
        seen[stratum] += 1
        share = shares.get(stratum, 0)
        if share == 0:
            continue
        entry = (-int(salted_rank(plan.salt, unit.external_id), 16), -unit.id)
        heap = kept[stratum]
        if len(heap) < share:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            heapq.heapreplace(heap, entry)
    if seen != Counter(sizes):
        raise PopulationChanged("the window's conversations changed while it was sampled")
    drawn = [
        Drawn(-negated_id, stratum, shares[stratum] / sizes[stratum])
        for stratum, heap in kept.items()
        for _, negated_id in heap
    ]
    return sorted(drawn, key=lambda d: d.id)
