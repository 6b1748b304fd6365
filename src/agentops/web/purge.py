"""The second admin's half of a purge: a one-time confirmation issued to their own session."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from agentops.audit.retention import CONFIRMATION_MINUTES, issue_confirmation, open_requests
from agentops.errors import AgentOpsError
from agentops.web.auth import ADMIN_ROLES, current_user, require
from agentops.web.routes import _error, _form, _page, _reading, _writing

router = APIRouter()


@router.get("/admin/purge", response_class=HTMLResponse)
def purge_page(request: Request) -> Response:
    """Purge requests waiting for a second admin (admins only)."""
    user = current_user(request)
    require(user, ADMIN_ROLES, "the purge page")
    with _reading(request) as session:
        requests = _rows(session)
    return _page(request, "purge.html", {"requests": requests, "minutes": CONFIRMATION_MINUTES})


@router.post("/admin/purge", response_class=HTMLResponse)
async def purge_confirmation(request: Request) -> Response:
    """Issue this admin a one-time confirmation for a purge someone else requested."""
    user = current_user(request)
    require(user, ADMIN_ROLES, "the purge page")
    form = await _form(request, user)
    try:
        with _writing(request) as session:
            code = issue_confirmation(
                session,
                manifest_sha256=form.get("manifest_sha256", ""),
                person_id=user.person_id,
                channel="web",
            )
            requests = _rows(session)
    except AgentOpsError as refused:
        return _error(request, str(refused), status_code=400)
    context = {"requests": requests, "minutes": CONFIRMATION_MINUTES, "code": code}
    return _page(request, "purge.html", context)


def _rows(session: Session) -> list[dict[str, str]]:
    # Plain values: the page renders after the session (and its objects) are gone.
    return [
        {"range": e.entity_id, "actor": e.actor, "manifest": str(e.payload.get("manifest_sha256"))}
        for e in open_requests(session)
    ]
