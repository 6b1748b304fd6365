"""`agentops deployers …`: which deployer serves an agent, read-only."""

import typer

from agentops.cli.common import console, fail, store_session, user_errors
from agentops.cli.safe_text import styled

app = typer.Typer(help="Which deployer serves each agent, and what it reads as live.")


@app.callback()
def _group() -> None:
    """Which deployer serves each agent, and what it reads as live."""


@app.command("check")
@user_errors
def check(agent: str = typer.Argument(..., help="Agent name.")) -> None:
    """Show the agent's deployer, what it reads as live and whether the credentials work."""
    from agentops.agents.service import get_agent, live_version
    from agentops.bootstrap import make_deployer
    from agentops.deployers.check import check_deployer

    with store_session() as session:
        record = get_agent(session, name=agent)
        live = live_version(session, agent=record)
        store_live = live.version if live else None
    deployer = make_deployer()
    try:
        result = check_deployer(agent=agent, deployer=deployer)
    finally:
        if deployer is not None:
            deployer.close()
    console.print(styled((agent, "bold"), f"  deployer: {result.deployer}"))
    console.print(f"store says live: {store_live or '-'}")
    if result.live is None:
        console.print(f"credentials: {result.credentials}")
        raise fail(f"{agent}: the deployer could not say what is live: {result.problem}")
    console.print(f"deployer reads live: {result.live.describe()}")
    console.print("credentials: ok")
    if result.live.version != store_live:
        console.print(
            "the store and the deployer disagree; `agentops sweep` makes the store follow "
            "the deployer once no action is in flight"
        )
