"""`agentops agents …`: who owns which agent, and which version is live."""

import os

import typer
from rich.table import Table
from sqlmodel import Session

from agentops.agents import service as agents
from agentops.agents.roles import REGISTER_AGENT_ROLES
from agentops.cli.common import acting_person, console, store_session, user_errors, warn
from agentops.cli.safe_text import styled
from agentops.orchestration import api_configured, ensure_rollout_limit, rollout_limit_name
from agentops.store.core_tables import AgentVersion, Person, VersionStatus

app = typer.Typer(help="Register agents, name their owners and see their versions.")


@app.command("list")
@user_errors
def list_agents() -> None:
    """List registered agents with their owner and live version."""
    with store_session() as session:
        rows = agents.list_agents(session)
        if not rows:
            console.print("No agents yet. Register one with `agentops agents register`.")
            return
        table = Table("agent", "owner", "backup", "live version", "last known good")
        for agent in rows:
            live = agents.live_version(session, agent=agent)
            good = agents.known_good_version(session, agent=agent)
            table.add_row(
                agent.name,
                session.get(Person, agent.owner_id).email,  # type: ignore[union-attr]
                session.get(Person, agent.backup_id).email,  # type: ignore[union-attr]
                live.version if live else "-",
                good.version if good else "-",
            )
        console.print(table)


@app.command("show")
@user_errors
def show_agent(name: str = typer.Argument(..., help="Agent name.")) -> None:
    """Show one agent's owners and every version with its status."""
    with store_session() as session:
        agent = agents.get_agent(session, name=name)
        owner = session.get(Person, agent.owner_id)
        backup = session.get(Person, agent.backup_id)
        console.print(
            styled((agent.name, "bold"), f"  owner {owner.email}  backup {backup.email}")  # type: ignore[union-attr]
        )
        table = Table("version", "status", "went live", "known good")
        for version in agents.list_versions(session, agent=agent):
            table.add_row(
                version.version,
                version.status.value,
                f"{version.went_live_at:%Y-%m-%d %H:%M}" if version.went_live_at else "-",
                _known_good_label(agent.last_known_good_version_id, version),
            )
        console.print(table)
        live = agents.live_version(session, agent=agent)
        store_live = live.version if live else None
        agent_name = agent.name
    _compare_with_deployer(agent_name, store_live)


def _compare_with_deployer(agent: str, store_live: str | None) -> None:
    """Show the deployer's view beside the store's when they differ (or it cannot say)."""
    from agentops.bootstrap import make_deployer
    from agentops.deployers.check import check_deployer

    deployer = make_deployer()
    if deployer is None:
        return
    with deployer:
        check = check_deployer(agent=agent, deployer=deployer)
    state = check.live
    if state is None:
        warn(f"cannot compare with the deployer ({check.deployer}): {check.problem}")
        return
    if state.version == store_live:
        rollout = f", rollout {state.rollout.value}" if state.rollout else ""
        console.print(
            f"deployer agrees: {state.version} is live "
            f"(healthy={state.healthy}{rollout}; {check.deployer})"
        )
        return
    table = Table("", "live version", title="the store and the deployer disagree")
    table.add_row("store", store_live or "-")
    table.add_row("deployer", state.describe())
    console.print(table)
    warn(
        f"{agent}: the deployer serves {state.version or 'nothing'} but the store says "
        f"{store_live or 'nothing'}; `agentops sweep` reconciles an interrupted action"
    )


def _known_good_label(latest_id: int | None, version: AgentVersion) -> str:
    if version.known_good_at is None:
        return ""
    since = f"since {version.known_good_at:%Y-%m-%d %H:%M}"
    return f"yes, latest ({since})" if version.id == latest_id else f"yes ({since})"


@app.command("register")
@user_errors
def register(
    name: str = typer.Argument(..., help="Agent name, e.g. airline-assistant."),
    owner: str = typer.Option(..., "--owner", help="Email of the accountable owner."),
    backup: str = typer.Option(..., "--backup", help="Email of the backup approver."),
    live: str | None = typer.Option(
        None, "--live", help="Version already serving traffic; recorded as last known good."
    ),
    who: str | None = typer.Option(
        None,
        "--as",
        help="Your email, a registered admin (or AGENTOPS_USER_EMAIL); "
        "without either the trail names the CLI operator.",
    ),
) -> None:
    """Register an agent with its owner and backup approver."""
    with store_session() as session:
        # The trail names who ran the command, never the owner it names.
        actor = _registrar(session, who)
        agent = agents.register_agent(
            session, name=name, owner_email=owner, backup_email=backup, actor=actor
        )
        if live:
            version = agents.ensure_version(session, agent=agent, version=live, actor=actor)
            agents.set_live(session, agent=agent, version=version, actor=actor)
            agents.mark_known_good(session, agent=agent, version=version, actor=actor)
    suffix = f", {live} live" if live else ""
    console.print(
        styled("Registered ", (name, "bold"), f" (owner {owner}, backup {backup}{suffix}).")
    )
    if api_configured():
        _create_rollout_limit(name)


def _registrar(session: Session, who: str | None) -> str:
    """Who registers: the person behind --as (an admin, as on the web), else the operator."""
    if who is None and not os.environ.get("AGENTOPS_USER_EMAIL"):
        return "cli"
    actor = acting_person(session, who)
    agents.require_person_role(
        session, actor=actor, roles=REGISTER_AGENT_ROLES, what="registering agents"
    )
    return actor.label


def _create_rollout_limit(name: str) -> None:
    # The agent is registered either way; the gate also creates its limit on first use.
    import httpx  # only when a Prefect server is configured: `agents list` never needs it

    try:
        created = ensure_rollout_limit(name)
    except (httpx.HTTPError, OSError) as exc:
        warn(
            f"Prefect did not answer ({exc.__class__.__name__}); run `agentops prefect setup` "
            "to create the agent's rollout limit"
        )
        return
    if created:
        console.print(f"Prefect concurrency limit {rollout_limit_name(name)} created (1 slot).")


@app.command("add-version")
@user_errors
def add_version(
    name: str = typer.Argument(..., help="Agent name."),
    version: str = typer.Argument(..., help="New version label, e.g. v4."),
) -> None:
    """Register a candidate version (deploy it live through `agentops actions redeploy`)."""
    with store_session() as session:
        agent = agents.get_agent(session, name=name)
        created = agents.ensure_version(session, agent=agent, version=version, actor="cli")
        status = created.status
    note = "" if status == VersionStatus.candidate else f" (already known, {status.value})"
    console.print(f"{name} {version}: {VersionStatus.candidate.value}{note}.")


@app.command("set-rubric")
@user_errors
def set_rubric(
    name: str = typer.Argument(..., help="Agent name."),
    rubric: str = typer.Argument(..., help="Rubric name (its highest stored version is used)."),
) -> None:
    """Name the rubric the agent's samples are reviewed against."""
    from agentops.review.rubric import assign_rubric  # loads YAML: not on `agents list`'s path

    with store_session() as session:
        agent = agents.get_agent(session, name=name)
        chosen = assign_rubric(session, agent=agent, name=rubric, actor="cli")
        shown = f"{name} is reviewed against rubric {chosen.name} v{chosen.version}."
    console.print(shown)
