"""`agentops report`: the manager report as one self-contained HTML file."""

from datetime import timedelta
from pathlib import Path

import typer

from agentops.audit.periods import parse_moment
from agentops.cli.common import console, fail, store_session, user_errors
from agentops.reporting.html import render_report
from agentops.reporting.queries import build_report
from agentops.store.models import utcnow
from agentops.textfiles import check_output_file


@user_errors
def report(
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="HTML file to write."),
    since: str = typer.Option("30d", help="From this moment: 30d, 12h, 2w or a date (UTC)."),
    until: str | None = typer.Option(None, help="Before this moment (default: now)."),
    agent: str | None = typer.Option(None, help="Only this agent."),
    review_sla_hours: float = typer.Option(
        4.0, "--review-sla-hours", min=0.01, help="Review turnaround target."
    ),
) -> None:
    """Write the manager report: incidents, time to detect, decide and roll back."""
    now = utcnow()
    start = parse_moment(since, now=now, option="--since")
    end = parse_moment(until, now=now, option="--until") if until else now
    if end <= start:
        raise fail(f"--until ({end:%Y-%m-%d %H:%M}) must be after --since ({start:%Y-%m-%d %H:%M})")
    if output.is_dir() and not output.is_symlink():
        raise fail(f"{output} is a directory: give a file name such as report.html")
    check_output_file(output, what="report")
    check_output_file(output.with_name(output.name + ".partial"), what="report")
    with store_session() as session:
        built = build_report(
            session,
            since=start,
            until=end,
            now=now,
            agent=agent,
            review_sla=timedelta(hours=review_sla_hours),
        )
    partial = output.with_name(output.name + ".partial")
    try:
        partial.write_text(render_report(built), encoding="utf-8")
        partial.replace(output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise fail(f"cannot write {output}: {exc.strerror}") from None
    trail = "intact" if built.trail_intact else "TAMPERED"
    console.print(
        f"Report written to {output}: {len(built.agents)} agent(s), "
        f"{len(built.incidents)} incident(s), {len(built.stories)} action(s); trail {trail}."
    )
