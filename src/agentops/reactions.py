"""Reactions across domains, composed above them: a breach proposes a rollback.

The triggers domain evaluates and the actions domain proposes; neither imports the
other. The channels and flows call these use cases (the composition root's side of the
house), the way cosmicpython's handlers join its aggregates.
"""

from sqlmodel import Session

from agentops.actions.service import propose_rollback, rollback_obstacle
from agentops.agents.service import live_version
from agentops.errors import NotFoundError
from agentops.store.models import Agent, AgentVersion, TriggerSet
from agentops.triggers.service import EvaluationReport, evaluate_version, latest_trigger_set


def evaluate_live_version(
    session: Session, *, agent: Agent, actor: str, trigger_set: TriggerSet | None = None
) -> tuple[AgentVersion, EvaluationReport]:
    """Evaluate the live version on the agent's triggers; a breach proposes a rollback."""
    trigger_set = trigger_set or latest_trigger_set(session, agent=agent)
    if trigger_set is None:
        raise NotFoundError(
            f"no triggers registered for {agent.name}: use `agentops triggers register FILE`"
        )
    version = live_version(session, agent=agent)
    if version is None:
        raise NotFoundError(f"{agent.name} has no live version to evaluate")
    report = evaluate_version(
        session, agent=agent, version=version, trigger_set=trigger_set, actor=actor
    )
    if report.breached:
        names = ", ".join(evaluation.trigger_name for evaluation in report.breached)
        report.proposed_action = propose_rollback(
            session,
            agent=agent,
            from_version=version,
            evaluation=report.breached[0],
            actor=actor,
            reason=f"trigger breached on {version.version}: {names}",
        )
        if report.proposed_action is None:
            # Rare path: ask again for the reason propose_rollback put on the audit trail.
            report.not_proposed_reason = rollback_obstacle(
                session, agent=agent, from_version=version
            )
    return version, report
