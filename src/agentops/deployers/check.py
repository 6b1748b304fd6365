"""`deployers check`: which deployer serves an agent, what it reads as live, and access."""

from dataclasses import dataclass

from agentops.actions.deployer import Deployer, DeployerError, LiveState

REFUSED_SIGNS = ("refused the credentials", "HTTP 401", "HTTP 403")


@dataclass(frozen=True)
class DeployerCheck:
    """The outcome of one read-only check of an agent's deployer."""

    agent: str
    deployer: str
    live: LiveState | None
    credentials: str  # "ok", "refused", "missing" or "unknown"
    problem: str | None = None


def describe_deployer(deployer: Deployer | None, agent: str) -> str:
    """One line naming the deployer that serves the agent."""
    if deployer is None:
        return "none configured"
    describe = getattr(deployer, "describe", None)
    if describe is not None:
        return str(describe(agent))
    base_url = getattr(deployer, "base_url", None)
    return f"http at {base_url}" if base_url else type(deployer).__name__


def check_deployer(*, agent: str, deployer: Deployer | None) -> DeployerCheck:
    """Read what is live through the agent's deployer; changes nothing."""
    name = describe_deployer(deployer, agent)
    if deployer is None:
        return DeployerCheck(
            agent=agent,
            deployer=name,
            live=None,
            credentials="unknown",
            problem="no deployer configured: set AGENTOPS_DEPLOYERS_FILE or AGENTOPS_DEPLOYER_URL",
        )
    try:
        state = deployer.live(agent=agent)
    except DeployerError as exc:
        if "environment variable" in str(exc) and "is not set" in str(exc):
            credentials = "missing"
        elif any(sign in str(exc) for sign in REFUSED_SIGNS):
            credentials = "refused"
        else:
            credentials = "unknown"
        return DeployerCheck(
            agent=agent,
            deployer=name,
            live=None,
            credentials=credentials,
            problem=str(exc),
        )
    return DeployerCheck(agent=agent, deployer=name, live=state, credentials="ok")
