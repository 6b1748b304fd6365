"""A version's window signals computed by the database, equal to compute_signals' result.

The rates and the mean come from one aggregate over the window's rows in id order (the
order compute_signals adds them in, so the floating-point sum is the same), and the p95
from one `ORDER BY latency_ms LIMIT 1 OFFSET rank - 1`. Both go through the
(agent_version_id, started_at, id) index and never touch the transcript column.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from agentops.signals.compute import Signals, nearest_rank
from agentops.store.models import Conversation


@dataclass(frozen=True)
class Window:
    """One version's conversations started in [start, end), up to a stored id if given."""

    version_id: int
    start: datetime
    end: datetime
    up_to_id: int | None = None

    def apply(self, query: Any) -> Any:
        """The query restricted to the window, read through the (version, time) index."""
        conditions = [
            Conversation.agent_version_id == self.version_id,
            Conversation.started_at >= self.start,
            Conversation.started_at < self.end,
        ]
        if self.up_to_id is not None:
            conditions.append(unindexed_id() <= self.up_to_id)
        return query.where(*conditions)


def unindexed_id() -> Any:
    """The conversation id as an expression no index serves, for ORDER BY and bounds.

    Given a bound or an order on the id, SQLite without planner statistics walks the
    (version, id) index to skip a sort, which reads the version's whole history; on this
    expression the only useful index is the window's own (version, time) range.
    """
    return col(Conversation.id) + 0


@dataclass(frozen=True)
class WindowSignals:
    """The window's signals and the highest conversation id they counted."""

    signals: Signals
    last_id: int | None


def window_signals(session: Session, *, window: Window) -> WindowSignals:
    """Count, escalation and containment rates, mean sentiment and p95 latency, in SQL."""
    rows = (
        window.apply(
            select(  # type: ignore[call-overload]
                Conversation.id,
                Conversation.escalated,
                Conversation.contained,
                Conversation.sentiment,
                Conversation.latency_ms,
            )
        )
        .order_by(unindexed_id())
        .subquery()
    )
    count, escalated, contained, sentiment, latencies, last_id = session.exec(
        select(  # type: ignore[call-overload]
            func.count(),
            func.sum(case((rows.c.escalated, 1), else_=0)),
            func.sum(case((rows.c.contained, 1), else_=0)),
            func.sum(rows.c.sentiment),
            func.count(rows.c.latency_ms),
            func.max(rows.c.id),
        )
    ).one()
    if count == 0:
        return WindowSignals(Signals(0, None, None, None, None), None)
    signals = Signals(
        conversations=count,
        escalation_rate=escalated / count,
        containment_rate=contained / count,
        mean_sentiment=float(sentiment) / count,
        p95_latency_ms=_percentile_latency(
            session,
            window=Window(window.version_id, window.start, window.end, last_id),
            count=latencies,
            percentile=95,
        ),
    )
    return WindowSignals(signals, last_id)


def _percentile_latency(
    session: Session, *, window: Window, count: int, percentile: float
) -> float | None:
    if count == 0:
        return None
    value = session.exec(
        window.apply(select(Conversation.latency_ms))
        .where(col(Conversation.latency_ms).is_not(None))
        .order_by(col(Conversation.latency_ms))
        .limit(1)
        .offset(nearest_rank(count, percentile) - 1)
    ).one()
    return float(value)
