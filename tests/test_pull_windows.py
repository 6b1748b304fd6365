"""Window arithmetic for scheduled pulls: each minute once, through jitter and outages."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from agentops.sampling.windows import Span, gaps, merged, split, windows_to_pull

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
MIN = timedelta(minutes=1)
DELAY = timedelta(minutes=5)
HOUR = timedelta(hours=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("watermark", "scheduled", "max_chunks", "expected"),
    [
        # First run: one chunk ending at the scheduled time less the delay.
        (None, at(65), 24, [(at(0), at(60))]),
        # The next hourly run continues exactly where the last one stopped.
        (at(60), at(125), 24, [(at(60), at(120))]),
        # A run scheduled early (clock skew, a manual run) pulls the shorter remainder.
        (at(60), at(95), 24, [(at(60), at(90))]),
        # Nothing new yet: a second run for the same schedule pulls nothing.
        (at(60), at(65), 24, []),
        (at(60), at(62), 24, []),
        # After a 3-hour outage the backlog comes in chunks of at most an hour.
        (
            at(60),
            at(305),
            24,
            [(at(60), at(120)), (at(120), at(180)), (at(180), at(240)), (at(240), at(300))],
        ),
        # ... and at most max_chunks of them per run; the rest is for the next run.
        (at(60), at(305), 2, [(at(60), at(120)), (at(120), at(180))]),
        # A watermark off the hour (an earlier delay setting) is joined up, not re-aligned.
        (at(57.5), at(125), 24, [(at(57.5), at(117.5)), (at(117.5), at(120))]),
    ],
)
def test_windows_to_pull(
    watermark: datetime | None,
    scheduled: datetime,
    max_chunks: int,
    expected: list[tuple[datetime, datetime]],
) -> None:
    spans = windows_to_pull(
        watermark=watermark,
        scheduled=scheduled,
        publication_delay=DELAY,
        chunk=HOUR,
        max_chunks=max_chunks,
    )
    assert spans == [Span(start, end) for start, end in expected]


def test_start_jitter_moves_no_edge() -> None:
    """Runs started ±8 s off schedule: the windows come from the scheduled time, so they tile."""
    watermark = None
    covered = []
    for run in range(1, 30):
        scheduled = T0 + run * 10 * MIN
        # The actual start (jittered) plays no part: only the scheduled time is passed in.
        spans = windows_to_pull(
            watermark=watermark,
            scheduled=scheduled,
            publication_delay=DELAY,
            chunk=10 * MIN,
            max_chunks=24,
        )
        covered += spans
        watermark = spans[-1].end if spans else watermark
    assert gaps(covered) == []
    assert all(a.end == b.start for a, b in pairwise(covered))


def test_outage_catch_up_covers_every_minute_once() -> None:
    """Late runs after an outage start together; each continues from the last one's end."""
    watermark = at(55)
    covered: list[Span] = []
    # Runs scheduled at 70..250 never ran; they all start at once at 260, in order.
    for scheduled in [at(m) for m in range(70, 260, 10)]:
        spans = windows_to_pull(
            watermark=watermark,
            scheduled=scheduled,
            publication_delay=DELAY,
            chunk=10 * MIN,
            max_chunks=3,
        )
        covered += spans
        watermark = spans[-1].end if spans else watermark
    assert merged(covered) == [Span(at(55), at(245))]
    assert sum((s.length for s in covered), timedelta(0)) == at(245) - at(55)  # no overlap


def test_late_published_conversation_lands_in_a_later_pull() -> None:
    """A conversation that starts at 9:58 and is published at 10:02 is pulled once, at 10:05."""
    started, published = at(58), at(62)
    pulls = []
    watermark = None
    for scheduled in (at(60), at(65), at(70)):
        for span in windows_to_pull(
            watermark=watermark,
            scheduled=scheduled,
            publication_delay=DELAY,
            chunk=10 * MIN,
            max_chunks=24,
        ):
            # The pull happens at (about) the scheduled time; only published ones are seen.
            if span.start <= started < span.end and published <= scheduled:
                pulls.append(span)
            watermark = span.end
    assert pulls == [Span(at(55), at(60))]


@pytest.mark.parametrize(
    ("spans", "within", "expected"),
    [
        ([], None, []),
        ([(0, 60), (60, 120)], None, []),
        ([(0, 60), (70, 120)], None, [(60, 70)]),
        ([(70, 120), (0, 60), (10, 20)], None, [(60, 70)]),  # unordered, nested
        ([(0, 60), (30, 90), (100, 110)], None, [(90, 100)]),  # overlapping
        ([(10, 20)], (0, 30), [(0, 10), (20, 30)]),
        ([], (0, 30), [(0, 30)]),
        ([(0, 60)], (10, 20), []),
        ([(0, 10), (50, 60)], (5, 55), [(10, 50)]),
    ],
)
def test_gaps(
    spans: list[tuple[int, int]],
    within: tuple[int, int] | None,
    expected: list[tuple[int, int]],
) -> None:
    found = gaps(
        [Span(at(a), at(b)) for a, b in spans],
        within=Span(at(within[0]), at(within[1])) if within else None,
    )
    assert found == [Span(at(a), at(b)) for a, b in expected]


def test_split_and_bad_arguments() -> None:
    assert split(Span(at(0), at(25)), chunk=10 * MIN) == [
        Span(at(0), at(10)),
        Span(at(10), at(20)),
        Span(at(20), at(25)),
    ]
    assert split(Span(at(5), at(5)), chunk=MIN) == []
    with pytest.raises(ValueError, match="chunk"):
        split(Span(at(0), at(1)), chunk=timedelta(0))
    with pytest.raises(ValueError, match="max_chunks"):
        windows_to_pull(
            watermark=None, scheduled=at(10), publication_delay=DELAY, chunk=MIN, max_chunks=0
        )
