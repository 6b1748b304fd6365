"""`agentops coverage AGENT` and `agentops sample --backfill FROM TO`: pulled windows."""

from datetime import UTC, datetime, timedelta

import typer
from rich.table import Table

from agentops.agents import service as agents
from agentops.cli.common import console, fail, store_session, user_errors
from agentops.http_client import display_url
from agentops.ingestion.platform_client import PlatformClient
from agentops.sampling import coverage
from agentops.sampling.windows import Span, split
from agentops.settings import get_settings

BACKFILL_CHUNK = timedelta(hours=1)
MAX_BACKFILL = timedelta(days=366)


def _utc(moment: datetime) -> datetime:
    # A bare timestamp means UTC here, as everywhere on the command line.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def backfill_period(agent: str, *, start: datetime, end: datetime) -> None:
    """Re-pull the agent's conversations in [start, end) from the platform, an hour at a time."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise fail(f"--backfill: TO ({_when(end)}) must be after FROM ({_when(start)})")
    if end - start > MAX_BACKFILL:
        raise fail("--backfill: at most 366 days at a time")
    settings = get_settings()
    if not settings.platform_url:
        raise fail("--backfill needs the platform: set AGENTOPS_PLATFORM_URL")
    token = settings.platform_token
    client = PlatformClient(
        settings.platform_url, token=token.get_secret_value() if token else None
    )
    table = Table("from (UTC)", "to (UTC)", "imported", "already stored")
    with client, store_session() as session:
        target = agents.get_agent(session, name=agent)
        for span in split(Span(start, end), chunk=BACKFILL_CHUNK):
            report = coverage.pull_window(
                session,
                agent=target,
                span=span,
                fetch=lambda since, until: client.iter_conversations(
                    agent=agent, since=since, until=until
                ),
                source=coverage.BACKFILL,
                actor="cli",
                origin=display_url(settings.platform_url),
                max_future_skew=timedelta(seconds=settings.max_future_skew_s),
            )
            table.add_row(
                _when(span.start), _when(span.end), str(report.imported), str(report.duplicates)
            )
    console.print(table)


@user_errors
def coverage_command(
    agent: str = typer.Argument(..., help="Agent whose pulled windows to show."),
    since: datetime | None = typer.Option(None, help="From (ISO 8601, UTC); default the first."),
    until: datetime | None = typer.Option(None, help="To (ISO 8601, UTC); default the last."),
) -> None:
    """Show which stretches of an agent's conversations were pulled, and the gaps between."""
    start = _utc(since) if since else None
    end = _utc(until) if until else None
    if start is not None and end is not None and end <= start:
        raise fail("--until must be after --since")
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        found = coverage.coverage(session, agent=target, since=start, until=end)
        mark = coverage.watermark(session, agent=target)
    if not found.covered and not found.gaps:
        console.print(f"{agent}: no windows pulled yet.")
        return
    table = Table("from (UTC)", "to (UTC)", "state")
    rows = [(span, "pulled") for span in found.covered] + [(gap, "GAP") for gap in found.gaps]
    for span, state in sorted(rows, key=lambda row: row[0].start):
        table.add_row(_when(span.start), _when(span.end), state)
    console.print(table)
    where = f"scheduled pulls continue from {_when(mark)} UTC" if mark else "no scheduled pull yet"
    if found.gaps:
        console.print(
            f"{len(found.gaps)} gap(s), {found.missing} in all; {where}. Re-pull one with "
            f"`agentops sample {agent} --backfill FROM TO`."
        )
    else:
        console.print(f"No gaps; {where}.")
