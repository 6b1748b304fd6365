"""`agentops conversations …`: see what came in, as a table or as JSON."""

import json

import typer
from rich.table import Table

from agentops.agents import service as agents
from agentops.cli.common import console, store_session, user_errors
from agentops.cli.safe_text import printable
from agentops.cli.transcript_view import render_transcript
from agentops.conversations import service
from agentops.store.models import AgentVersion

app = typer.Typer(help="Stored conversations of an agent: list them, show one.")


@app.command("list")
@user_errors
def list_conversations(
    agent: str = typer.Option(..., "--agent", help="Registered agent."),
    version: str | None = typer.Option(None, "--version", help="Only this agent version."),
    limit: int = typer.Option(service.DEFAULT_LIMIT, "--limit", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="One JSON array on stdout."),
) -> None:
    """List an agent's latest conversations, newest first."""
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        rows = service.list_conversations(session, agent=target, version=version, limit=limit)
        if as_json:
            listing = [
                {
                    key: value
                    for key, value in service.conversation_json(
                        row, agent=agent, version=name
                    ).items()
                    if key != "messages"
                }
                | {"messages": len(row.transcript)}
                for row, name in rows
            ]
            typer.echo(json.dumps(listing, ensure_ascii=False))
            return
        if not rows:
            console.print(f"No conversations for {printable(agent)} yet.")
            return
        table = Table("id", "version", "started at", "messages", "escalated")
        for row, name in rows:
            table.add_row(
                printable(row.external_id),
                printable(name),
                row.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                str(len(row.transcript)),
                "yes" if row.escalated else "no",
            )
        console.print(table)


@app.command("show")
@user_errors
def show_conversation(
    conversation_id: str = typer.Argument(..., help="The conversation's id."),
    agent: str = typer.Option(..., "--agent", help="Registered agent."),
    as_json: bool = typer.Option(False, "--json", help="The conversation as JSON on stdout."),
) -> None:
    """Show one conversation, with its tool calls and tool results."""
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        found = service.get_conversation(session, agent=target, external_id=conversation_id)
        version = session.get(AgentVersion, found.agent_version_id)
        shown = service.conversation_json(found, agent=agent, version=version.version)  # type: ignore[union-attr]
        if as_json:
            typer.echo(json.dumps(shown, ensure_ascii=False))
            return
        console.print(
            f"{printable(found.external_id)} · {printable(agent)} {printable(shown['version'])} · "
            f"{shown['started_at']}"
        )
        console.print(render_transcript(found.transcript, full=True))
