"""Scheduled flow: pull an agent's new Langfuse observations, close idle conversations,
and write settled review verdicts back to Langfuse as scores."""

from datetime import timedelta

from prefect import flow, get_run_logger
from sqlmodel import Session

from agentops.agents import service as agents
from agentops.errors import AgentOpsError
from agentops.ingestion.otlp import config as otlp_config
from agentops.ingestion.otlp.intake import close_idle
from agentops.langfuse.client import LangfuseClient
from agentops.langfuse.service import pull_observations, push_review_scores
from agentops.settings import get_settings
from agentops.store.db import engine_scope


@flow(name="langfuse-sync")
def langfuse_sync(agent_name: str) -> dict[str, int]:
    """Pull by cursor (resumable), close idle conversations, push scores (idempotent)."""
    settings = get_settings()
    if not (
        settings.langfuse_url and settings.langfuse_public_key and settings.langfuse_secret_key
    ):
        raise AgentOpsError(
            "Langfuse needs AGENTOPS_LANGFUSE_URL, AGENTOPS_LANGFUSE_PUBLIC_KEY and "
            "AGENTOPS_LANGFUSE_SECRET_KEY"
        )
    client = LangfuseClient(
        base_url=settings.langfuse_url,
        public_key=settings.langfuse_public_key,
        secret_key=settings.langfuse_secret_key.get_secret_value(),
    )
    try:
        with engine_scope() as engine, Session(engine) as session:
            agent = agents.get_agent(session, name=agent_name)
            staged = pull_observations(session, client=client, agent=agent)
            closed = close_idle(
                session,
                idle=timedelta(seconds=settings.otlp_idle_close_s),
                escalation_tools=otlp_config.escalation_tools(settings.otlp_escalation_tools),
            )
            scores = push_review_scores(session, client=client, agent=agent)
    finally:
        client.close()
    summary = {"staged": staged, "stored": closed.stored + closed.replaced, "scores": scores}
    get_run_logger().info("langfuse sync for %s: %s", agent_name, summary)
    return summary
