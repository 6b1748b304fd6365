"""`agentops checks …`: register an agent's policy checks and see what they flag."""

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from agentops.agents import service as agents
from agentops.checks.config import parse_check_text
from agentops.checks.service import (
    latest_check_set,
    register_check_set,
    run_report,
    status_report,
)
from agentops.cli.common import console, store_session, user_errors
from agentops.textfiles import read_text_file

app = typer.Typer(help="Policy checks run on every conversation, certified against reviews.")


@app.command("register")
@user_errors
def register(file: Path = typer.Argument(..., help="Check YAML file.")) -> None:
    """Store a check file as the agent's current checks and run them on its stored history."""
    text = read_text_file(file, what="check file")
    parsed = parse_check_text(text, source=str(file))
    with store_session(write=True) as session:
        agent = agents.get_agent(session, name=parsed.file.agent)
        check_set, checked = register_check_set(
            session, agent=agent, text=text, source=str(file), actor="cli"
        )
        version = check_set.version
    console.print(
        f"Check file v{version} for {parsed.file.agent} stored "
        f"({len(parsed.names)} checks); {checked} stored conversations checked."
    )


@app.command("run")
@user_errors
def run(
    agent: str = typer.Option(..., help="Agent whose stored conversations to report on."),
    version: str | None = typer.Option(None, help="Only this version (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show what the agent's checks flagged: counts per check and each flagged conversation."""
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        versions = (
            [agents.get_version(session, agent=target, version=version)]
            if version is not None
            else agents.list_versions(session, agent=target)
        )
        report = run_report(session, agent=target, versions=versions)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table("check", "checked", "flagged")
    for check in report["checks"]:
        table.add_row(check["name"], str(check["checked"]), str(check["flagged"]))
    console.print(table)
    console.print(f"{len(report['conversations'])} conversations flagged by at least one check.")


@app.command("status")
@user_errors
def status(
    agent: str | None = typer.Option(
        None, help="Agent to show (default: every agent with checks)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Per version and check: checked, flagged, reviewed, TPR/TNR with bounds, certified."""
    with store_session() as session:
        if agent is not None:
            reports = [status_report(session, agent=agents.get_agent(session, name=agent))]
        else:
            reports = [
                status_report(session, agent=one)
                for one in agents.list_agents(session)
                if latest_check_set(session, agent=one) is not None
            ]
    if as_json:
        typer.echo(json.dumps(reports[0] if agent is not None else {"agents": reports}, indent=2))
        return
    if not reports:
        console.print("No agent has a check file yet: `agentops checks register FILE`.")
    for report in reports:
        _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    for version in report["versions"]:
        table = Table(
            "check", "checked", "flagged", "reviewed", "TPR (lower)", "TNR (lower)", "certified",
            title=f"{report['agent']} {version['version']}",
        )  # fmt: skip
        for check in version["checks"]:
            table.add_row(
                check["name"],
                str(check["checked"]),
                str(check["flagged"]),
                str(check["reviewed"]),
                _rate(check["tpr"]),
                _rate(check["tnr"]),
                "yes" if check["certified"] else "no",
            )
        console.print(table)
        estimate = version["estimate"]
        if estimate is not None:
            console.print(
                f"violation rate (PPI++, reviews plus flags): {estimate['estimate']:.1%} "
                f"(95% interval {estimate['lower']:.1%} to {estimate['upper']:.1%}, "
                f"lambda {estimate['lambda']:.2f}, {estimate['reviewed']} reviews, "
                f"{estimate['conversations']} conversations)",
                highlight=False,
            )


def _rate(rate: dict[str, Any]) -> str:
    if rate["estimate"] is None:
        return "-"
    return f"{rate['estimate']:.2f} ({rate['lower']:.2f})"
