"""Read stored conversations of an agent: list them, show one in a stable JSON shape."""

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from agentops.agents import service as agents
from agentops.errors import NotFoundError
from agentops.store.models import Agent, AgentVersion, Conversation

DEFAULT_LIMIT = 50


def list_conversations(
    session: Session, *, agent: Agent, version: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[tuple[Conversation, str]]:
    """The agent's latest conversations (newest first) with their version names."""
    query = (
        select(Conversation, AgentVersion.version)
        .join(AgentVersion, col(AgentVersion.id) == Conversation.agent_version_id)
        .where(Conversation.agent_id == agent.id)
    )
    if version is not None:
        found = agents.get_version(session, agent=agent, version=version)
        query = query.where(Conversation.agent_version_id == found.id)
    query = query.order_by(col(Conversation.started_at).desc(), col(Conversation.id).desc())
    return [(row, name) for row, name in session.exec(query.limit(limit)).all()]


def get_conversation(session: Session, *, agent: Agent, external_id: str) -> Conversation:
    """The agent's conversation with this id; NotFound if there is none."""
    found = session.exec(
        select(Conversation).where(
            Conversation.agent_id == agent.id, Conversation.external_id == external_id
        )
    ).first()
    if found is None:
        raise NotFoundError(f"agent {agent.name!r} has no conversation {external_id!r}")
    return found


def conversation_json(conversation: Conversation, *, agent: str, version: str) -> dict[str, Any]:
    """{"id", "agent", "version", "started_at", "messages": [{role, content, tool_calls}]}."""
    return {
        "id": conversation.external_id,
        "agent": agent,
        "version": version,
        "started_at": _iso(conversation.started_at),
        "escalated": conversation.escalated,
        "latency_ms": conversation.latency_ms,
        "messages": [_message(message) for message in conversation.transcript],
    }


def _message(message: dict[str, Any]) -> dict[str, Any]:
    calls = [
        {
            "name": (call.get("function") or {}).get("name"),
            "arguments": (call.get("function") or {}).get("arguments"),
        }
        for call in message.get("tool_calls") or []
        if isinstance(call, dict)
    ]
    return {"role": message.get("role"), "content": message.get("content"), "tool_calls": calls}


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()
