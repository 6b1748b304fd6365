"""`agentops import FILE`: load conversations from a JSONL or JSON export."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from agentops.agents import service as agents
from agentops.cli.common import console, err_console, fail, store_session, user_errors
from agentops.cli.safe_text import printable
from agentops.ingestion.files import JsonRecords, read_records
from agentops.ingestion.otlp import config as otlp_config
from agentops.ingestion.otlp.files import OtlpRecords, read_otlp_records
from agentops.ingestion.service import Rejection, import_conversations
from agentops.ingestion.transcripts import DEFAULT_ESCALATION_TOOLS
from agentops.settings import get_settings

MAX_REJECTIONS_SHOWN = 20
INTERRUPTED_EXIT = 130


@user_errors
def import_file(
    file: Path = typer.Argument(..., help="JSONL (one conversation a line) or a JSON array."),
    agent: str = typer.Option(..., "--agent", help="Registered agent the conversations belong to."),
    version: str | None = typer.Option(
        None,
        "--version",
        help="Agent version that served them (required, except with --format otlp, "
        "where each conversation's gen_ai.agent.version or service.version is used).",
    ),
    file_format: str = typer.Option(
        "auto",
        "--format",
        help="auto (by file name: .jsonl/.ndjson/.json) or otlp (OTLP JSON Lines, as the "
        "OpenTelemetry Collector's file exporter writes them).",
    ),
) -> None:
    """Import conversations; bad records are reported and the good ones kept.

    Records are stored in chunks, each committed as it goes: an import that is stopped
    can be run again, and it stores only what is missing.
    """
    settings = get_settings()
    records: JsonRecords | OtlpRecords
    escalation = None
    if file_format == "otlp":
        records = read_otlp_records(
            file, keys=otlp_config.conversation_keys(settings.otlp_conversation_key)
        )
        escalation = otlp_config.escalation_tools(settings.otlp_escalation_tools)
    elif file_format == "auto":
        if version is None:
            raise fail("--version is required (except with --format otlp)")
        records = read_records(file)
    else:
        raise fail(f"unknown --format {file_format!r}; use auto or otlp")
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        target_version = (
            agents.ensure_version(session, agent=target, version=version, actor="cli")
            if version is not None
            else None
        )
        with _progress_bar(file, records) as progress:
            try:
                report = import_conversations(
                    session,
                    agent=target,
                    version=target_version,
                    records=records,
                    actor="cli",
                    source=str(file),
                    progress=progress,
                    max_future_skew=timedelta(seconds=settings.max_future_skew_s),
                    parallel_parse=True,
                    escalation_tools=(
                        DEFAULT_ESCALATION_TOOLS if escalation is None else escalation
                    ),
                )
            except KeyboardInterrupt:
                err_console.print(
                    "interrupted: chunks already committed stay stored; "
                    "run the same import again to finish it"
                )
                raise typer.Exit(INTERRUPTED_EXIT) from None
        _report_rejections(report.rejected, report.rejected_count)
        if report.seen == 0:
            raise fail(f"{file.name} holds no conversations")
        if report.accepted == 0:
            # Rolled back with the session: an import that accepted nothing records nothing.
            raise fail(f"nothing was imported from {file.name}: every record was rejected")
    console.print(
        f"{file.name}: {report.imported} imported, {report.escalated} escalated, "
        f"{report.duplicates} already stored, {report.rejected_count} rejected."
    )


@contextmanager
def _progress_bar(
    file: Path, records: JsonRecords | OtlpRecords
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar with records/s on stderr, when stderr is a terminal (else nothing)."""
    if not err_console.is_terminal:
        yield None
        return
    # Transient: it never mixes with the summary. No markup: file names are data.
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[records]}", markup=False),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(
            printable(f"importing {file.name}"), total=records.size or None, records=""
        )
        started = time.monotonic()

        def update(handled: int) -> None:
            # Called from the importer's writer thread; rich's Progress takes a lock.
            rate = handled / max(time.monotonic() - started, 1e-9)
            progress.update(
                task, completed=records.bytes_read, records=f"{handled:,} records, {rate:,.0f}/s"
            )

        yield update


def _report_rejections(rejected: list[Rejection], count: int) -> None:
    for rejection in rejected[:MAX_REJECTIONS_SHOWN]:
        err_console.print(f"  rejected {rejection.label}: {rejection.reason}")
    if count > MAX_REJECTIONS_SHOWN:
        err_console.print(f"  … and {count - MAX_REJECTIONS_SHOWN} more")
