"""Pulled windows per agent: the scheduled pulls' watermark, backfills and coverage gaps."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from agentops.errors import RuleViolation
from agentops.ingestion.service import ImportReport, import_conversations, records_from_platform
from agentops.sampling.windows import Span, gaps, merged
from agentops.store.models import Agent, PulledWindow

SCHEDULE = "schedule"
BACKFILL = "backfill"
WINDOW = "window"

# Fetches the platform's conversations that started in [since, until).
Fetch = Callable[[datetime, datetime], Iterable[dict[str, Any]]]


@dataclass(frozen=True)
class Coverage:
    """What was pulled for an agent: the covered stretches and the holes between them."""

    covered: list[Span]
    gaps: list[Span]

    @property
    def missing(self) -> timedelta:
        """The total length of the gaps."""
        return sum((gap.length for gap in self.gaps), timedelta(0))


def watermark(session: Session, *, agent: Agent) -> datetime | None:
    """Where the agent's scheduled pulls stopped: the next one starts there."""
    # Only scheduled windows move it: a backfill of a later stretch must not make the
    # schedule skip the minutes between.
    return session.exec(
        select(func.max(PulledWindow.window_end)).where(
            PulledWindow.agent_id == agent.id, PulledWindow.source == SCHEDULE
        )
    ).one()


def record_window(
    session: Session,
    *,
    agent: Agent,
    span: Span,
    source: str,
    imported: int = 0,
    duplicates: int = 0,
) -> PulledWindow:
    """Note that the span's conversations are in the store."""
    row = PulledWindow(
        agent_id=agent.id,  # type: ignore[arg-type]
        window_start=span.start,
        window_end=span.end,
        source=source,
        imported=imported,
        duplicates=duplicates,
    )
    session.add(row)
    session.flush()
    return row


def pull_window(
    session: Session,
    *,
    agent: Agent,
    span: Span,
    fetch: Fetch,
    source: str,
    actor: str,
    origin: str,
    max_future_skew: timedelta,
) -> ImportReport:
    """Import the span's conversations (known ones are skipped), record it, and commit."""
    if span.start.tzinfo is None or span.end.tzinfo is None:
        raise RuleViolation("window bounds must carry a timezone (use UTC)")
    if span.end <= span.start:
        raise RuleViolation(
            f"window end ({span.end.isoformat()}) must be after its start "
            f"({span.start.isoformat()})"
        )
    report = import_conversations(
        session,
        agent=agent,
        version=None,
        records=records_from_platform(fetch(span.start, span.end)),
        actor=actor,
        source=f"{origin} {span.start.isoformat()}..{span.end.isoformat()}",
        max_future_skew=max_future_skew,
    )
    # Recorded only once the import went through: a failed pull leaves the watermark put.
    record_window(
        session,
        agent=agent,
        span=span,
        source=source,
        imported=report.imported,
        duplicates=report.duplicates,
    )
    session.commit()
    return report


def coverage(
    session: Session, *, agent: Agent, since: datetime | None = None, until: datetime | None = None
) -> Coverage:
    """The stretches pulled for the agent and the gaps between them (or within since..until)."""
    query = select(PulledWindow.window_start, PulledWindow.window_end).where(
        PulledWindow.agent_id == agent.id
    )
    if since is not None:
        query = query.where(PulledWindow.window_end > since)
    if until is not None:
        query = query.where(PulledWindow.window_start < until)
    spans = [Span(start, end) for start, end in session.exec(query.order_by(col(PulledWindow.id)))]
    covered = merged(spans)
    within = None
    if since is not None or until is not None:
        if not covered and (since is None or until is None):
            return Coverage(covered=[], gaps=[])
        start = since if since is not None else covered[0].start
        end = until if until is not None else covered[-1].end
        within = Span(start, end)
    return Coverage(covered=covered, gaps=gaps(covered, within=within))
