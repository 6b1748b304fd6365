"""`agentops triggers …`: validate and register the written rollback triggers."""

from pathlib import Path

import typer
from rich.table import Table

from agentops.agents import service as agents
from agentops.cli.common import console, store_session, user_errors
from agentops.textfiles import read_text_file
from agentops.triggers.config import load_trigger_file, parse_trigger_text
from agentops.triggers.service import register_trigger_set

app = typer.Typer(help="Rollback triggers, written down before launch.")


@app.command("check")
@user_errors
def check(file: Path = typer.Argument(..., help="Trigger YAML file.")) -> None:
    """Validate a trigger file; errors point to the line."""
    parsed = load_trigger_file(file)
    table = Table("trigger", "kind", "rule", "why")
    for trigger in parsed.triggers:
        settings = trigger.model_dump(exclude={"name", "kind", "description"})
        rule = ", ".join(
            f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in settings.items()
        )
        table.add_row(trigger.name, trigger.kind, rule, trigger.description or "")
    console.print(f"{file}: valid, version {parsed.version}, agent {parsed.agent}")
    console.print(table)


@app.command("register")
@user_errors
def register(file: Path = typer.Argument(..., help="Trigger YAML file.")) -> None:
    """Store a trigger file as the agent's current, versioned trigger set."""
    text = read_text_file(file, what="trigger file")
    parsed = parse_trigger_text(text, source=str(file))
    with store_session() as session:
        agent = agents.get_agent(session, name=parsed.agent)
        trigger_set = register_trigger_set(
            session,
            agent=agent,
            text=text,
            source=str(file),
            actor="cli",
        )
        version, sha = trigger_set.version, trigger_set.content_sha256
    console.print(f"Trigger set v{version} for {parsed.agent} stored (sha256 {sha[:12]}).")
