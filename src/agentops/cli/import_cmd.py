"""`agentops import FILE`: load conversations from a JSONL or JSON export."""

from datetime import timedelta
from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from agentops.agents import service as agents
from agentops.cli.common import console, err_console, fail, store_session, user_errors
from agentops.ingestion.files import read_records
from agentops.ingestion.service import Rejection, import_conversations
from agentops.settings import get_settings

MAX_REJECTIONS_SHOWN = 20


@user_errors
def import_file(
    file: Path = typer.Argument(..., help="JSONL (one conversation a line) or a JSON array."),
    agent: str = typer.Option(..., "--agent", help="Registered agent the conversations belong to."),
    version: str = typer.Option(..., "--version", help="Agent version that served them."),
) -> None:
    """Import conversations; bad records are reported and the good ones kept."""
    records = read_records(file)
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        target_version = agents.ensure_version(session, agent=target, version=version, actor="cli")
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), console=err_console, transient=True
        ) as progress:
            task = progress.add_task(f"reading {file.name}", total=None)
            report = import_conversations(
                session,
                agent=target,
                version=target_version,
                records=records,
                actor="cli",
                source=str(file),
                progress=lambda n: progress.update(task, description=f"{n} records read"),
                max_future_skew=timedelta(seconds=get_settings().max_future_skew_s),
            )
        _report_rejections(report.rejected)
        if report.seen == 0:
            raise fail(f"{file.name} holds no conversations")
        if report.imported == 0 and report.duplicates == 0:
            # Rolled back with the session: an import that accepted nothing records nothing.
            raise fail(f"nothing was imported from {file.name}: every record was rejected")
    console.print(
        f"{file.name}: {report.imported} imported, {report.escalated} escalated, "
        f"{report.duplicates} already stored, {len(report.rejected)} rejected."
    )


def _report_rejections(rejected: list[Rejection]) -> None:
    for rejection in rejected[:MAX_REJECTIONS_SHOWN]:
        err_console.print(f"  rejected {rejection.label}: {rejection.reason}")
    if len(rejected) > MAX_REJECTIONS_SHOWN:
        err_console.print(f"  … and {len(rejected) - MAX_REJECTIONS_SHOWN} more")
