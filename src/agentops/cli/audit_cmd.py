"""`agentops audit …`: read, export and verify the decision trail."""

from pathlib import Path

import typer
from rich.table import Table

from agentops.audit.chain import canonical_json
from agentops.audit.service import event_count, export_events, iter_events, verify_chain
from agentops.cli.common import console, fail, store_session, user_errors
from agentops.cli.safe_text import styled

app = typer.Typer(help="Read, export and verify the tamper-evident decision trail.")


@app.command("log")
@user_errors
def log(
    kind: str | None = typer.Option(None, help="Only kinds starting with this, e.g. approval."),
    entity: str | None = typer.Option(None, help="Only this entity, e.g. action:3."),
    limit: int = typer.Option(50, min=1, max=1_000_000, help="Show the newest N events."),
) -> None:
    """Show the newest audit events."""
    with store_session() as session:
        events = list(iter_events(session, kind_prefix=kind, entity=entity, newest=limit))
        if not events:
            console.print("No audit events match.")
            return
        table = Table("seq", "when (UTC)", "actor", "event", "entity", "details")
        for event in events:
            table.add_row(
                str(event.seq),
                f"{event.occurred_at:%Y-%m-%d %H:%M:%S}",
                event.actor,
                event.kind,
                f"{event.entity_type}:{event.entity_id}",
                _short(canonical_json(event.payload)),
            )
        console.print(table)


def _short(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("export")
@user_errors
def export(
    output: Path = typer.Option(..., "--output", "-o", help="File to write."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
) -> None:
    """Export the whole trail, with hashes, for an auditor."""
    if fmt not in {"jsonl", "csv"}:
        raise fail(f"unknown format {fmt!r}: use jsonl or csv")
    with store_session() as session:
        events = list(iter_events(session))
        text = export_events(events, fmt=fmt)
    if output.is_dir():
        raise fail(f"{output} is a directory: give a file name")
    # Write to a temporary name first so a failed export never leaves half a file.
    partial = output.with_name(output.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise fail(f"cannot write {output}: {exc.strerror}") from None
    console.print(f"Exported {len(events)} events to {output} ({fmt}).")


@app.command("verify")
@user_errors
def verify() -> None:
    """Recompute the hash chain; exit 1 if anything was altered or removed."""
    with store_session() as session:
        problems = verify_chain(session)
        count = event_count(session)
    if not problems:
        console.print(styled(("intact", "green"), f": {count} events, hash chain verified."))
        return
    for problem in problems:
        console.print(styled((f"event {problem.seq}", "red"), f": {problem.reason}"))
    console.print(
        styled(("tampered", "bold red"), f": {len(problems)} problem(s) in {count} events.")
    )
    raise typer.Exit(1)
