"""Serve the agentops flows on their schedules from this machine: `python deployments/serve.py`.

Sampling runs hourly, trigger evaluation every 15 minutes and the action sweeper every
minute; rollback and redeploy have no schedule and are started by evaluate-triggers (or by
hand) per action.
"""

import argparse
from typing import Any

from agentops.flows.evaluate_triggers import evaluate_triggers
from agentops.flows.redeploy_agent import redeploy_agent
from agentops.flows.rollback_agent import rollback_agent
from agentops.flows.sample_conversations import sample_conversations
from agentops.flows.sweep_actions import sweep_actions

ROLLBACK_DEPLOYMENT = "rollback-agent/on-demand"


def build_deployments(*, agent: str, triggers_file: str | None) -> list[Any]:
    """The five deployments, with the runbook's schedules, for one agent."""
    return [
        sample_conversations.to_deployment(
            name=f"{agent}-hourly", cron="5 * * * *", parameters={"agent_name": agent}
        ),
        evaluate_triggers.to_deployment(
            name=f"{agent}-quarter-hourly",
            cron="*/15 * * * *",
            parameters={
                "agent_name": agent,
                "triggers_file": triggers_file,
                "rollback_deployment": ROLLBACK_DEPLOYMENT,
            },
        ),
        rollback_agent.to_deployment(name="on-demand"),
        redeploy_agent.to_deployment(name="on-demand"),
        sweep_actions.to_deployment(name="every-minute", cron="* * * * *"),
    ]


def main() -> None:
    """Parse arguments and serve until interrupted."""
    from prefect import serve

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agent", required=True, help="registered agent name")
    parser.add_argument("--triggers", default=None, help="trigger YAML to register on each run")
    args = parser.parse_args()
    serve(*build_deployments(agent=args.agent, triggers_file=args.triggers))


if __name__ == "__main__":
    main()
