"""Window arithmetic for scheduled pulls: every minute covered once, gaps found (pure)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, order=True)
class Span:
    """A half-open stretch of time [start, end)."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        """How long the span lasts."""
        return self.end - self.start


def pull_target(*, scheduled: datetime, publication_delay: timedelta) -> datetime:
    """Where a run's pull ends: its scheduled time less the platform's publication delay.

    The scheduled time, not the start time, so start jitter moves no window edge; the
    delay leaves time for late-published (long) conversations to appear first.
    """
    return scheduled - publication_delay


def windows_to_pull(
    *,
    watermark: datetime | None,
    scheduled: datetime,
    publication_delay: timedelta,
    chunk: timedelta,
    max_chunks: int,
) -> list[Span]:
    """The consecutive windows one run pulls: from the watermark to its target, chunked.

    Without a watermark (the agent's first run) it pulls one chunk ending at the target.
    After an outage the backlog is split into chunks of at most `chunk`, and a run takes at
    most `max_chunks` of them; the next run continues from where this one stopped.
    """
    if chunk <= timedelta(0):
        raise ValueError("chunk must be positive")
    if max_chunks < 1:
        raise ValueError("max_chunks must be at least 1")
    target = pull_target(scheduled=scheduled, publication_delay=publication_delay)
    start = watermark if watermark is not None else target - chunk
    spans: list[Span] = []
    while start < target and len(spans) < max_chunks:
        end = min(start + chunk, target)
        spans.append(Span(start, end))
        start = end
    return spans


def split(span: Span, *, chunk: timedelta) -> list[Span]:
    """The span cut into consecutive pieces of at most `chunk`."""
    if chunk <= timedelta(0):
        raise ValueError("chunk must be positive")
    pieces = []
    start = span.start
    while start < span.end:
        end = min(start + chunk, span.end)
        pieces.append(Span(start, end))
        start = end
    return pieces


def merged(spans: Iterable[Span]) -> list[Span]:
    """The union of the spans as disjoint spans in time order (touching ones joined)."""
    result: list[Span] = []
    for span in sorted(spans):
        if span.end <= span.start:
            continue
        if result and span.start <= result[-1].end:
            last = result[-1]
            result[-1] = Span(last.start, max(last.end, span.end))
        else:
            result.append(span)
    return result


def gaps(covered: Iterable[Span], *, within: Span | None = None) -> list[Span]:
    """The stretches not covered: between stored windows, or inside `within` when given."""
    union = merged(covered)
    if within is None:
        if not union:
            return []
        within = Span(union[0].start, union[-1].end)
    holes = []
    cursor = within.start
    for span in union:
        if span.end <= cursor:
            continue
        if span.start >= within.end:
            break
        if span.start > cursor:
            holes.append(Span(cursor, span.start))
        cursor = max(cursor, span.end)
    if cursor < within.end:
        holes.append(Span(cursor, within.end))
    return holes
