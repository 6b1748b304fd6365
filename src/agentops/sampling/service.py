"""Sample a window of one agent version's conversations into the review queue.

The window is read through the (version, time) index: its signals as SQL aggregates, then
only ids (or, for a plan, the few columns that make strata) streamed in id order while
the draw keeps what it takes. Memory follows the sample; transcripts are never read.
"""

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from agentops.agents.service import require_own_version
from agentops.audit.service import add_and_record, record_event
from agentops.errors import RuleViolation
from agentops.sampling.plan import Drawn, SamplePlan, Unit, draw_streamed, stratum_of
from agentops.sampling.sampler import PopulationChanged, draw_positions, required_sample_size
from agentops.settings import get_settings
from agentops.signals.compute import Signals
from agentops.signals.window import Window, WindowSignals, unindexed_id, window_signals
from agentops.store.models import (
    Agent,
    AgentVersion,
    Conversation,
    ConversationCheck,
    ReviewItem,
    Rubric,
    Sample,
    SignalSnapshot,
)

# Rows fetched per round trip while a window streams past the draw.
STREAM_BATCH = 5_000
# A window that keeps changing under the draw (PostgreSQL, a concurrent import) is retried.
DRAW_ATTEMPTS = 3


@dataclass(frozen=True)
class SampleResult:
    """What one sampling run stored: the sample, the newly queued items and the signals."""

    version: str
    sample: Sample
    items: list[ReviewItem]
    snapshot: SignalSnapshot
    already_queued: list[int]

    def summary(self) -> dict[str, int | str]:
        """Version, population and how many conversations were newly queued."""
        return {
            "version": self.version,
            "population": self.sample.population,
            "sampled": len(self.items),
        }


def sample_window(
    session: Session,
    *,
    agent: Agent,
    version: AgentVersion,
    rubric: Rubric,
    window_start: datetime,
    window_end: datetime,
    seed: int,
    margin: float = 0.05,
    confidence: float = 0.95,
    expected_rate: float = 0.5,
    max_size: int | None = None,
    plan: SamplePlan | None = None,
    actor: str,
) -> SampleResult:
    """Record the window's signals and queue a reproducible random sample for review.

    With a `plan` the sample is stratified and drawn by salted hash; without one it is a
    simple random sample sized by Cochran's formula. Either way every item stores its
    inclusion probability and stratum, for the weighted estimate.
    """
    require_own_version(agent, version)
    _check_window(start=window_start, end=window_end, cap=max_size)
    key = _sample_key(
        agent=agent, version=version, rubric=rubric, start=window_start, end=window_end
    )
    counted, design = _draw(
        session,
        version=version,
        start=window_start,
        end=window_end,
        plan=plan,
        size_for=lambda population: _sample_size(
            population,
            margin=margin,
            confidence=confidence,
            expected_rate=expected_rate,
            cap=max_size,
        ),
        seed=seed,
        key=key,
    )
    population = counted.signals.conversations
    if plan is not None:
        method = f"stratified-plan-v{plan.version}({plan.allocation},floor={plan.floor})"
    else:
        method = _method(
            margin=margin, confidence=confidence, expected_rate=expected_rate, cap=max_size
        )
    drawn = [d.id for d in design]
    snapshot = _record_signals(
        session,
        version=version,
        signals=counted.signals,
        start=window_start,
        end=window_end,
        actor=actor,
    )
    sample = Sample(
        agent_version_id=version.id,  # type: ignore[arg-type]
        rubric_id=rubric.id,  # type: ignore[arg-type]
        window_start=window_start,
        window_end=window_end,
        seed=seed,
        population=population,
        size=len(drawn),
        method=method,
        plan=plan.model_dump(mode="json") if plan is not None else None,
    )
    session.add(sample)
    session.flush()
    items, already_queued = _queue_drawn(session, sample=sample, rubric=rubric, drawn=design)
    record_event(
        session,
        actor=actor,
        kind="sample.drawn",
        entity_type="sample",
        entity_id=sample.id,
        payload={
            "agent": agent.name,
            "version": version.version,
            "rubric": {"name": rubric.name, "version": rubric.version},
            "window_start": window_start,
            "window_end": window_end,
            "seed": seed,
            "key": key,
            "method": method,
            "population": population,
            "size": len(drawn),
            "conversation_ids": drawn,
            "queued": [item.conversation_id for item in items],
            "already_queued": already_queued,
        },
    )
    return SampleResult(
        version=version.version,
        sample=sample,
        items=items,
        snapshot=snapshot,
        already_queued=already_queued,
    )


def sample_agent_window(
    session: Session,
    *,
    agent: Agent,
    rubric: Rubric,
    window_start: datetime,
    window_end: datetime,
    seed: int,
    margin: float = 0.05,
    max_size: int | None = None,
    plan: SamplePlan | None = None,
    actor: str,
) -> list[SampleResult]:
    """Sample every version that served the agent's traffic in the window."""
    return [
        sample_window(
            session,
            agent=agent,
            version=version,
            rubric=rubric,
            window_start=window_start,
            window_end=window_end,
            seed=seed,
            margin=margin,
            max_size=max_size,
            plan=plan,
            actor=actor,
        )
        for version in versions_with_traffic(
            session, agent=agent, window_start=window_start, window_end=window_end
        )
    ]


def versions_with_traffic(
    session: Session, *, agent: Agent, window_start: datetime, window_end: datetime
) -> list[AgentVersion]:
    """The agent's versions that served conversations in [window_start, window_end)."""
    # One index probe per version on (version, time): an agent has few versions, and the
    # window may hold a great many conversations.
    served = (
        select(Conversation.id)
        .where(
            Conversation.agent_version_id == AgentVersion.id,
            Conversation.started_at >= window_start,
            Conversation.started_at < window_end,
        )
        .exists()
    )
    return list(
        session.exec(
            select(AgentVersion)
            .where(AgentVersion.agent_id == agent.id, served)
            .order_by(col(AgentVersion.id))
        )
    )


def _check_window(*, start: datetime, end: datetime, cap: int | None) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise RuleViolation("window bounds must carry a timezone (use UTC)")
    if end <= start:
        raise RuleViolation(
            f"window end ({end.isoformat()}) must be after window start ({start.isoformat()})"
        )
    if cap is not None and cap < 0:
        raise RuleViolation(f"max sample size must not be negative, got {cap}")


def _sample_size(
    population: int, *, margin: float, confidence: float, expected_rate: float, cap: int | None
) -> int:
    try:
        size = required_sample_size(
            population, margin=margin, confidence=confidence, expected_rate=expected_rate
        )
    except ValueError as exc:
        raise RuleViolation(f"cannot size the sample: {exc}") from exc
    return size if cap is None else min(size, cap)


def _draw(
    session: Session,
    *,
    version: AgentVersion,
    start: datetime,
    end: datetime,
    plan: SamplePlan | None,
    size_for: Callable[[int], int],
    seed: int,
    key: str,
) -> tuple[WindowSignals, list[Drawn]]:
    """The window's signals and its sample, both over the same rows."""
    for _ in range(DRAW_ATTEMPTS):
        counted = window_signals(session, window=Window(version.id, start, end))  # type: ignore[arg-type]
        # Later reads stop at the highest id counted: rows stored meanwhile wait for the
        # next window. PostgreSQL may still commit a lower id late; then draw again.
        window = Window(version.id, start, end, counted.last_id)  # type: ignore[arg-type]
        population = counted.signals.conversations
        try:
            if plan is not None:
                return counted, _draw_by_plan(session, plan=plan, window=window)
            design = _draw_simple(
                session,
                window=window,
                population=population,
                size=size_for(population),
                seed=seed,
                key=key,
            )
            return counted, design
        except PopulationChanged:
            continue
    raise RuleViolation(
        "conversations kept arriving in the window while it was sampled: "
        "sample it again once the import has finished"
    )


def _draw_simple(
    session: Session, *, window: Window, population: int, size: int, seed: int, key: str
) -> list[Drawn]:
    """draw_sample's sample of the window, reading ids in order and keeping the drawn."""
    positions = draw_positions(population, size=size, seed=seed, key=key)
    wanted = iter(positions)
    target = next(wanted, None)
    drawn: list[Drawn] = []
    seen = 0
    for position, conversation_id in enumerate(_streamed(session, select(Conversation.id), window)):
        seen += 1
        if position == target:
            drawn.append(Drawn(conversation_id, "all", len(positions) / population))
            target = next(wanted, None)
    if seen != population:
        raise PopulationChanged("the window's conversations changed while it was sampled")
    return drawn


def _draw_by_plan(session: Session, *, plan: SamplePlan, window: Window) -> list[Drawn]:
    """The plan's sample: strata sizes by GROUP BY, then one pass keeping only the drawn."""
    facts: tuple[Any, ...] = (Conversation.channel, Conversation.intent, Conversation.escalated)
    check_set_id = _flag_check_set(session, plan=plan, window=window)
    if check_set_id is not None:
        facts = (*facts, (func.coalesce(ConversationCheck.flagged, 0) > 0).label("flagged"))
    sizes: Counter[str] = Counter()
    # sqlmodel's select() has fixed-arity overloads only; a variable column list matches none.
    counts = _with_flags(window.apply(select(*facts, func.count())), check_set_id)  # type: ignore[call-overload]  # see above
    for row in session.exec(counts.group_by(*facts)):
        sizes[stratum_of(_unit(0, "", row[:-1]), plan.strata)] += row[-1]
    columns = _with_flags(select(Conversation.id, Conversation.external_id, *facts), check_set_id)
    units = (_unit(row[0], row[1], row[2:]) for row in _streamed(session, columns, window))
    return draw_streamed(plan, units, sizes=sizes)


def _unit(unit_id: int, external_id: str, facts: Any) -> Unit:
    """A unit from (channel, intent, escalated[, flagged])."""
    flagged = bool(facts[3]) if len(facts) > 3 else False
    return Unit(unit_id, external_id, facts[0], facts[1], facts[2], flagged)


def _flag_check_set(session: Session, *, plan: SamplePlan, window: Window) -> int | None:
    """The check set whose flags stratify the sample, when the plan asks for it."""
    if "flagged" not in plan.strata:
        return None
    from agentops.checks.service import latest_check_set

    version = session.get(AgentVersion, window.version_id)
    agent = session.get(Agent, version.agent_id)  # type: ignore[union-attr]
    check_set = latest_check_set(session, agent=agent)  # type: ignore[arg-type]
    if check_set is None:
        raise RuleViolation(
            "the plan stratifies by flagged, but the agent has no check file: "
            "register one with `agentops checks register FILE`"
        )
    return check_set.id


def _with_flags(query: Any, check_set_id: int | None) -> Any:
    """The query joined to the conversations' check results (unchecked: not flagged)."""
    if check_set_id is None:
        return query
    return query.outerjoin(
        ConversationCheck,
        (col(ConversationCheck.conversation_id) == Conversation.id)
        & (col(ConversationCheck.check_set_id) == check_set_id),
    )


def _streamed(session: Session, query: Any, window: Window) -> Iterator[Any]:
    """The query's rows over the window in id order, fetched in batches."""
    ordered = window.apply(query).order_by(unindexed_id())
    yield from session.exec(ordered.execution_options(yield_per=STREAM_BATCH))


def _record_signals(
    session: Session,
    *,
    version: AgentVersion,
    signals: Signals,
    start: datetime,
    end: datetime,
    actor: str,
) -> SignalSnapshot:
    snapshot = SignalSnapshot(
        agent_version_id=version.id,  # type: ignore[arg-type]
        window_start=start,
        window_end=end,
        conversations=signals.conversations,
        escalation_rate=signals.escalation_rate,
        containment_rate=signals.containment_rate,
        mean_sentiment=signals.mean_sentiment,
        p95_latency_ms=signals.p95_latency_ms,
    )
    add_and_record(
        session,
        row=snapshot,
        actor=actor,
        kind="signals.recorded",
        entity_type="signal_snapshot",
        payload={
            "version": version.version,
            "window_start": start,
            "window_end": end,
            "conversations": signals.conversations,
            "escalation_rate": signals.escalation_rate,
            "containment_rate": signals.containment_rate,
            "mean_sentiment": signals.mean_sentiment,
            "p95_latency_ms": signals.p95_latency_ms,
        },
    )
    return snapshot


def double_review_drawn(*, sample_id: int, conversation_id: int, share: float) -> bool:
    """Whether this item is in the random share that gets a second, blind review."""
    digest = hashlib.sha256(f"double:{sample_id}:{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _queue_drawn(
    session: Session, *, sample: Sample, rubric: Rubric, drawn: list[Drawn]
) -> tuple[list[ReviewItem], list[int]]:
    """Queue the drawn conversations not yet queued for this rubric; return those skipped too."""
    ids = [d.id for d in drawn]
    already_queued = _already_queued(session, rubric=rubric, conversation_ids=ids)
    # Due at the next trigger evaluation after one full cadence: a verdict later than that
    # misses the evaluation it was sampled for.
    settings = get_settings()
    due = sample.created_at + timedelta(seconds=settings.evaluation_interval_s)
    items = [
        ReviewItem(
            sample_id=sample.id,  # type: ignore[arg-type]
            conversation_id=d.id,
            rubric_id=rubric.id,  # type: ignore[arg-type]
            due_at=due,
            inclusion_probability=d.inclusion_probability,
            stratum=d.stratum,
            # A salted hash, like the draw: the same items get a second review on a re-run.
            needs_second=double_review_drawn(
                sample_id=sample.id,  # type: ignore[arg-type]
                conversation_id=d.id,
                share=settings.review_double_share,
            ),
        )
        for d in drawn
        if d.id not in already_queued
    ]
    session.add_all(items)
    session.flush()
    return items, sorted(already_queued)


def _already_queued(session: Session, *, rubric: Rubric, conversation_ids: list[int]) -> set[int]:
    if not conversation_ids:
        return set()
    return set(
        session.exec(
            select(ReviewItem.conversation_id).where(
                ReviewItem.rubric_id == rubric.id,
                ReviewItem.conversation_id.in_(conversation_ids),  # type: ignore[attr-defined]
            )
        )
    )


def _sample_key(
    *, agent: Agent, version: AgentVersion, rubric: Rubric, start: datetime, end: datetime
) -> str:
    # Names and UTC instants, so the same window draws the same sample however it was written.
    window = f"{start.astimezone(UTC).isoformat()}/{end.astimezone(UTC).isoformat()}"
    return f"{agent.name}/{version.version}/{rubric.name}@v{rubric.version}/{window}"


def _method(*, margin: float, confidence: float, expected_rate: float, cap: int | None) -> str:
    params = f"margin={margin},confidence={confidence},expected_rate={expected_rate}"
    if cap is not None:
        params += f",max_size={cap}"
    return f"srswor-cochran({params})"
