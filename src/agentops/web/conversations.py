"""Web pages for stored conversations: an agent's latest, and one with its tool calls.

For reviewers and owners (and managers and admins): the same view as `agentops
conversations list/show`, from the same service.
"""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from agentops.agents import service as agents
from agentops.conversations import service
from agentops.errors import NotFoundError
from agentops.store.models import AgentVersion
from agentops.web.auth import OVERSIGHT_ROLES, REVIEW_ROLES, current_user, require
from agentops.web.transcript import transcript_turns

router = APIRouter()
READERS = REVIEW_ROLES | OVERSIGHT_ROLES


@router.get("/agents/{name}/conversations", response_class=HTMLResponse)
def conversations_page(request: Request, name: str, version: str | None = None) -> Response:
    """An agent's latest conversations, newest first (optionally of one version)."""
    from agentops.web.routes import _error, _page

    user = current_user(request)
    require(user, READERS, "conversations")
    with Session(request.app.state.engine) as session:
        try:
            agent = agents.get_agent(session, name=name)
            rows = service.list_conversations(session, agent=agent, version=version)
        except NotFoundError as missing:
            return _error(request, str(missing), status_code=404)
    return _page(request, "conversations.html", {"agent": agent, "rows": rows, "version": version})


@router.get("/agents/{name}/conversations/{conversation_id:path}", response_class=HTMLResponse)
def conversation_page(request: Request, name: str, conversation_id: str) -> Response:
    """One conversation: its messages, tool calls and tool results."""
    from agentops.web.routes import _error, _page

    user = current_user(request)
    require(user, READERS, "conversations")
    with Session(request.app.state.engine) as session:
        try:
            agent = agents.get_agent(session, name=name)
            found = service.get_conversation(session, agent=agent, external_id=conversation_id)
        except NotFoundError as missing:
            return _error(request, str(missing), status_code=404)
        version = session.get(AgentVersion, found.agent_version_id)
        shown = service.conversation_json(found, agent=agent.name, version=version.version)  # type: ignore[union-attr]
    context = {"agent": agent, "shown": shown, "turns": transcript_turns(found.transcript)}
    return _page(request, "conversation.html", context)
