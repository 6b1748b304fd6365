"""The web pages: sign-in, the keyboard-first review page, queue ageing, agents, actions, people.

A thin edge: every change goes through the same services as the CLI and Slack, with the
signed-in person as the actor. Roles are checked here, on the server, for every request.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlmodel import Session, select

from agentops.actions import service as actions
from agentops.actions.decisions import NoWaker, decide_and_wake
from agentops.actions.next_steps import ActionView, next_steps
from agentops.actions.rules import UNDECIDED_STATUSES
from agentops.agents import service as agents
from agentops.agents.roles import REGISTER_AGENT_ROLES
from agentops.agents.signin import (
    SignInRefused,
    end_sessions,
    list_people,
    redeem_login_link,
    register_person,
)
from agentops.checks.service import (
    answer_flags,
    conversation_flags,
    latest_check_set,
    status_report,
)
from agentops.errors import AgentOpsError, NotFoundError, RuleViolation
from agentops.review import service as review
from agentops.review.queries import (
    adherence_estimate,
    ageing_by_agent,
    agreement_report,
    earlier_verdicts,
    reviewer_progress,
    settled_items,
)
from agentops.review.queue import AGEING_BUCKETS, STAGE_ADJUDICATION, STAGE_SECOND
from agentops.review.rules import NotesRequired
from agentops.settings import Settings
from agentops.store.db import StoreBusy, write_session
from agentops.store.models import (
    Action,
    Agent,
    Conversation,
    Decision,
    Evaluation,
    ItemStatus,
    Person,
    Review,
    ReviewItem,
    Role,
    utcnow,
)
from agentops.web.auth import (
    ADMIN_ROLES,
    DECIDE_ROLES,
    OVERSIGHT_ROLES,
    REVIEW_ROLES,
    Forbidden,
    SignInRequired,
    WebUser,
    check_csrf,
    current_user,
    end_session,
    optional_user,
    require,
    same_origin,
    start_session,
    web_key,
)
from agentops.web.conversations import router as conversations_router
from agentops.web.transcript import transcript_turns

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter()

# Fixed texts for notices passed in a redirect: a query string never carries free text.
NOTICES = {
    "lease-lost": "Your lease on that item was lost (it expired or someone else took it "
    "over). Your verdict was not saved.",
    "empty": "The queue is empty: nothing left to review. Thank you!",
    "skipped": "Item skipped.",
    "signed-out": "You are signed out.",
    "reviewed": "Verdict saved.",
}
# SQLite serialises writers; BEGIN IMMEDIATE waits up to the busy timeout, and a user who
# still loses the race gets this sentence rather than "database is locked" (the log gets
# the operator's version, which suggests PostgreSQL).
BUSY = "agentops is busy saving other reviewers' work: please try again in a moment"


def mount_web(app: FastAPI) -> None:
    """Add the web pages, their static files and their error pages to the app."""
    from agentops.web.purge import router as purge_router

    app.include_router(router)
    app.include_router(purge_router)
    app.include_router(conversations_router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_exception_handler(SignInRequired, _sign_in_required)  # type: ignore[arg-type]
    app.add_exception_handler(Forbidden, _forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(StoreBusy, _busy)  # type: ignore[arg-type]


# --- plumbing -------------------------------------------------------------------------


def _page(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    user = optional_user(request)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    values = {
        "user": user,
        "notice": notice,
        "roles": {"review": REVIEW_ROLES, "oversight": OVERSIGHT_ROLES, "admin": ADMIN_ROLES},
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, values, status_code=status_code)


def _error(request: Request, message: str, *, status_code: int) -> HTMLResponse:
    context = {"message": message, "status": status_code}
    return _page(request, "error.html", context, status_code=status_code)


def _sign_in_required(request: Request, _exc: SignInRequired) -> Response:
    target = request.url.path if request.method == "GET" else "/"
    return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)


def _forbidden(request: Request, exc: Forbidden) -> Response:
    return _error(request, exc.message, status_code=403)


def _busy(request: Request, _exc: StoreBusy) -> Response:
    return _error(request, BUSY, status_code=503)


@contextmanager
def _reading(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


@contextmanager
def _writing(request: Request) -> Iterator[Session]:
    try:
        with write_session(request.app.state.engine) as session:
            yield session
    except StoreBusy as busy:
        log.warning("%s", busy)
        raise


async def _form(request: Request, user: WebUser) -> dict[str, str]:
    form = await request.form()
    values = {key: str(value) for key, value in form.items()}
    check_csrf(request, user, values.get("csrf"))
    return values


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# --- sign-in --------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    """Send each person to where their work is."""
    user = current_user(request)
    return _redirect("/review" if user.may(REVIEW_ROLES) else "/queue")


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, token: str = "", next: str = "/") -> Response:
    """A link's landing page: one button (Enter) signs in, so link previews cannot use it."""
    return _page(request, "signin.html", {"token": token, "next": _safe_next(next)})


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Redeem a sign-in link and start a session."""
    if not same_origin(request):
        # A form on another site must not sign the visitor in as someone else.
        return _error(request, "sign in from agentops' own sign-in page", status_code=403)
    form = await request.form()
    token = str(form.get("token", ""))
    key = web_key(request)  # before the write lock: reading the key may itself write
    try:
        with _writing(request) as session:
            person = redeem_login_link(session, token=token, key=key)
            person_id, version = person.id, person.session_version
    except SignInRefused as refused:
        return _page(request, "signin.html", {"error": str(refused)}, status_code=400)
    response = _redirect(_safe_next(str(form.get("next", "/"))))
    start_session(request, response, person_id=person_id, version=version)  # type: ignore[arg-type]
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    """End the session."""
    user = current_user(request)
    await _form(request, user)
    if user.via == "session":
        with _writing(request) as session:
            end_sessions(session, person_id=user.person_id)
    response = _redirect("/signin?notice=signed-out")
    end_session(response)
    return response


def _safe_next(target: str) -> str:
    # Only paths on this site: an absolute or protocol-relative URL would be an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/"


# --- review ---------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
def review_home(request: Request) -> Response:
    """The reviewer's start page: progress, what is left, and the button to start."""
    user = current_user(request)
    require(user, REVIEW_ROLES, "reviewing")
    now = utcnow()
    with _reading(request) as session:
        person = session.get(Person, user.person_id)
        progress = reviewer_progress(session, person=person, now=now)  # type: ignore[arg-type]
        ageing = ageing_by_agent(session, now=now)
        held = session.exec(
            select(ReviewItem).where(
                ReviewItem.status == ItemStatus.claimed,
                ReviewItem.claimed_by_id == user.person_id,
                ReviewItem.lease_expires_at > now,  # type: ignore[operator]
            )
        ).first()
    return _page(
        request,
        "review_home.html",
        {
            "progress": progress,
            "ageing": ageing,
            "buckets": [label for label, _ in AGEING_BUCKETS],
            "held": held,
        },
    )


@router.post("/review/next")
async def review_next(request: Request) -> Response:
    """Claim the next item (oldest due first) and open it."""
    user = current_user(request)
    require(user, REVIEW_ROLES, "reviewing")
    await _form(request, user)
    return _claim_and_open(request, user, notice=None)


def _claim_and_open(request: Request, user: WebUser, *, notice: str | None) -> Response:
    settings: Settings = request.app.state.settings
    try:
        with _writing(request) as session:
            item = review.claim_next(
                session, reviewer=user.actor, lease_minutes=settings.review_lease_minutes
            )
            item_id = item.id if item is not None else None
    except StoreBusy:
        return _error(request, BUSY, status_code=503)
    if item_id is None:
        return _redirect("/review?notice=empty")
    suffix = f"?notice={notice}" if notice else ""
    return _redirect(f"/review/items/{item_id}{suffix}")


@router.get("/review/items/{item_id}", response_class=HTMLResponse)
def review_item(request: Request, item_id: int) -> Response:
    """The review page of an item the person holds."""
    user = current_user(request)
    require(user, REVIEW_ROLES, "reviewing")
    with _reading(request) as session:
        item = session.get(ReviewItem, item_id)
        if item is None:
            return _error(request, f"no review item {item_id}", status_code=404)
        if not _holds(item, user):
            return _redirect("/review?notice=lease-lost")
        return _item_page(request, session, user, item_id=item_id)


def _holds(item: ReviewItem, user: WebUser) -> bool:
    """Whether the person holds a live lease on the item: only then may they read it."""
    lease_expires = item.lease_expires_at
    return (
        item.status == ItemStatus.claimed
        and item.claimed_by_id == user.person_id
        and lease_expires is not None
        and lease_expires > utcnow()
    )


def _item_page(
    request: Request,
    session: Session,
    user: WebUser,
    *,
    item_id: int,
    error: str | None = None,
    submitted: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    details = review.item_details(session, item_id=item_id)
    agent = session.get(Agent, details.conversation.agent_id)
    person = session.get(Person, user.person_id)
    progress = reviewer_progress(session, person=person, now=utcnow())  # type: ignore[arg-type]
    heartbeat_s = max(5, min(60, settings.review_lease_minutes * 60 // 3))
    # A second review is blind; an adjudicator sees every earlier verdict and any dispute.
    earlier = (
        earlier_verdicts(session, item_id=item_id)
        if details.item.stage == STAGE_ADJUDICATION
        else []
    )
    return _page(
        request,
        "review_item.html",
        {
            "details": details,
            "agent": agent,
            "turns": transcript_turns(details.conversation.transcript),
            "progress": progress,
            "heartbeat_s": heartbeat_s,
            "error": error,
            "submitted": submitted or {},
            "earlier": earlier,
            "blind": details.item.stage == STAGE_SECOND,
        },
        status_code=status_code,
    )


@router.post("/review/items/{item_id}/submit")
async def review_submit(request: Request, item_id: int) -> Response:
    """Save the verdict, then open the next item."""
    user = current_user(request)
    require(user, REVIEW_ROLES, "reviewing")
    form = await _form(request, user)
    token = _int(form.get("lease_token"))
    with _reading(request) as session:
        item = session.get(ReviewItem, item_id)
        if item is None:
            return _error(request, f"no review item {item_id}", status_code=404)
        # Checked before anything about the item is read or shown: a non-holder's error
        # page must not carry the transcript, the lease token or earlier verdicts.
        if not _holds(item, user):
            return _error(
                request,
                f"your lease on review item {item_id} was lost or was never yours: "
                "your verdict was not saved; claim the next item",
                status_code=409,
            )
        details = review.item_details(session, item_id=item_id)
        severities = {c.key: c.severity for c in details.criteria}
    verdicts = {key: form.get(f"verdict-{key}", "pass") for key in severities}
    findings = {key: verdicts[key] != "fail" for key in severities}
    not_applicable = [key for key, verdict in verdicts.items() if verdict == "na"]
    notes = {
        key: form[f"note-{key}"].strip()
        for key in severities
        if form.get(f"note-{key}", "").strip()
    }
    try:
        with _writing(request) as session:
            review.submit_review(
                session,
                item_id=item_id,
                reviewer=user.actor,
                findings=findings,
                notes=notes,
                not_applicable=not_applicable,
                comment=form.get("comment", "").strip() or None,
                lease_token=token,
            )
    except NotesRequired as refused:  # the service's rule; the form comes back filled in
        with _reading(request) as session:
            return _item_page(
                request,
                session,
                user,
                item_id=item_id,
                error=str(refused),
                submitted=form,
                status_code=422,
            )
    except review.LeaseLost as lost:
        return _error(request, str(lost), status_code=409)
    except StoreBusy:
        return _error(request, BUSY, status_code=503)
    except RuleViolation as refused:
        return _error(request, str(refused), status_code=409)
    with _reading(request) as session:
        conversation = session.get(Conversation, details.item.conversation_id)
        if conversation is not None and conversation_flags(session, conversation=conversation):
            # Blind, then shown: the flags appear only now that the verdict is saved.
            return _redirect(f"/review/items/{item_id}/flags")
    return _claim_and_open(request, user, notice="reviewed")


def _own_flags(
    session: Session, user: WebUser, item_id: int
) -> tuple[ReviewItem, Conversation, Review] | None:
    """The item, conversation and this person's verdict, if they reviewed the item."""
    item = session.get(ReviewItem, item_id)
    verdict = session.exec(
        select(Review).where(Review.review_item_id == item_id, Review.reviewer_id == user.person_id)
    ).first()
    if item is None or verdict is None:
        return None
    conversation = session.get(Conversation, item.conversation_id)
    return (item, conversation, verdict) if conversation is not None else None


@router.get("/review/items/{item_id}/flags", response_class=HTMLResponse)
def review_flags(request: Request, item_id: int) -> Response:
    """The checks' flags on an item, shown to its reviewer after the verdict."""
    user = current_user(request)
    require(user, REVIEW_ROLES, "reviewing")
    with _reading(request) as session:
        found = _own_flags(session, user, item_id)
        if found is None:
            return _error(request, "flags are shown only after your own verdict", status_code=403)
        item, conversation, verdict = found
        return _page(
            request,
            "review_flags.html",
            {
                "item": item,
                "conversation": conversation,
                "verdict": verdict.violation,
                "flags": conversation_flags(session, conversation=conversation),
            },
        )


@router.post("/review/items/{item_id}/flags")
async def review_flags_answer(request: Request, item_id: int) -> Response:
    """Confirm or dispute the flags in one keystroke, then open the next item."""
    user = current_user(request)
    require(user, REVIEW_ROLES, "reviewing")
    form = await _form(request, user)
    answer = form.get("answer", "skip")
    if answer in ("confirm", "dispute"):
        try:
            with _writing(request) as session:
                found = _own_flags(session, user, item_id)
                if found is None:
                    refused = "flags are answered after your own verdict"
                    return _error(request, refused, status_code=403)
                answer_flags(
                    session,
                    item_id=item_id,
                    conversation=found[1],
                    agreed=answer == "confirm",
                    actor=user.email,
                )
        except StoreBusy:
            return _error(request, BUSY, status_code=503)
    return _claim_and_open(request, user, notice="reviewed")


@router.post("/review/items/{item_id}/skip")
async def review_skip(request: Request, item_id: int) -> Response:
    """Pass the item back with a reason and open the next one."""
    user = current_user(request)
    require(user, REVIEW_ROLES, "reviewing")
    form = await _form(request, user)
    try:
        with _writing(request) as session:
            review.skip_item(
                session,
                item_id=item_id,
                reviewer=user.actor,
                lease_token=_int(form.get("lease_token")),
                reason=form.get("reason", ""),
            )
    except review.LeaseLost as lost:
        return _error(request, str(lost), status_code=409)
    except StoreBusy:
        return _error(request, BUSY, status_code=503)
    except RuleViolation as refused:
        return _error(request, str(refused), status_code=400)
    return _claim_and_open(request, user, notice="skipped")


@router.post("/review/items/{item_id}/heartbeat")
async def review_heartbeat(request: Request, item_id: int) -> Response:
    """Renew the lease while the page is open (called by the page's script)."""
    user = current_user(request)
    require(user, REVIEW_ROLES, "reviewing")
    form = await _form(request, user)
    settings: Settings = request.app.state.settings
    try:
        with _writing(request) as session:
            item = review.renew_lease(
                session,
                item_id=item_id,
                reviewer=user.actor,
                lease_token=_int(form.get("lease_token")),
                lease_minutes=settings.review_lease_minutes,
            )
            expires = item.lease_expires_at
    except review.LeaseLost as lost:
        return JSONResponse({"ok": False, "message": str(lost)}, status_code=409)
    except NotFoundError as missing:
        return JSONResponse({"ok": False, "message": str(missing)}, status_code=404)
    except StoreBusy:
        return JSONResponse({"ok": False, "message": BUSY}, status_code=503)
    return JSONResponse({"ok": True, "lease_expires_at": expires.isoformat() if expires else None})


@router.post("/review/items/{item_id}/release")
async def review_release(request: Request, item_id: int) -> Response:
    """Hand the item back when the reviewer leaves the page (sent by navigator.sendBeacon)."""
    user = current_user(request)
    require(user, REVIEW_ROLES, "reviewing")
    form = await _form(request, user)
    try:
        with _writing(request) as session:
            review.release_claim(
                session,
                item_id=item_id,
                reviewer=user.actor,
                lease_token=_int(form.get("lease_token")),
            )
    except StoreBusy:
        return Response(status_code=503)  # the lease runs out by itself
    except AgentOpsError:
        return Response(status_code=409)  # already gone: nothing to hand back
    return Response(status_code=204)


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return -1  # matches no lease: the fencing check refuses it


# --- queue, agents, actions -----------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request) -> Response:
    """Ageing buckets and overdue counts per agent."""
    current_user(request)
    with _reading(request) as session:
        ageing = ageing_by_agent(session, now=utcnow())
    buckets = [label for label, _ in AGEING_BUCKETS]
    return _page(request, "queue.html", {"ageing": ageing, "buckets": buckets})


@router.get("/agents", response_class=HTMLResponse)
def agents_page(request: Request) -> Response:
    """Every agent with its live version and review backlog."""
    user = current_user(request)
    require(user, OVERSIGHT_ROLES, "the agents page")
    with _reading(request) as session:
        rows = [
            (agent, agents.live_version(session, agent=agent))
            for agent in agents.list_agents(session)
        ]
        ageing = {a.agent: a for a in ageing_by_agent(session, now=utcnow())}
    return _page(request, "agents.html", {"rows": rows, "ageing": ageing})


@router.post("/agents")
async def agents_register(request: Request) -> Response:
    """Register an agent with its owner and backup (admins only)."""
    user = current_user(request)
    require(user, REGISTER_AGENT_ROLES, "registering agents")
    form = await _form(request, user)
    try:
        with _writing(request) as session:
            agent = agents.register_agent(
                session,
                name=form.get("name", ""),
                owner_email=form.get("owner", ""),
                backup_email=form.get("backup", ""),
                actor=user.email,
            )
            name = agent.name
    except AgentOpsError as refused:
        return _error(request, str(refused), status_code=400)
    return _redirect(f"/agents/{quote(name)}")


@router.get("/agents/{name}", response_class=HTMLResponse)
def agent_page(request: Request, name: str) -> Response:
    """One agent: versions, review backlog, latest evaluations and actions."""
    user = current_user(request)
    require(user, OVERSIGHT_ROLES, "the agents page")
    with _reading(request) as session:
        try:
            agent = agents.get_agent(session, name=name)
        except NotFoundError as missing:
            return _error(request, str(missing), status_code=404)
        owner = session.get(Person, agent.owner_id)
        backup = session.get(Person, agent.backup_id)
        versions = agents.list_versions(session, agent=agent)
        by_id = {v.id: v.version for v in versions}
        evaluations = list(
            session.exec(
                select(Evaluation)
                .where(Evaluation.agent_version_id.in_(list(by_id)))  # type: ignore[attr-defined]
                .order_by(Evaluation.id.desc())  # type: ignore[union-attr]
                .limit(10)
            )
        )
        ageing = ageing_by_agent(session, now=utcnow(), agent=agent)
        agent_actions = actions.list_actions(session, agent=agent)[-10:]
        estimates = [(v.version, adherence_estimate(session, version=v)) for v in versions]
        settled = settled_items(session, agent=agent, limit=10)
        checks = (
            status_report(session, agent=agent)
            if latest_check_set(session, agent=agent) is not None
            else None
        )
    return _page(
        request,
        "agent.html",
        {
            "agent": agent,
            "owner": owner,
            "backup": backup,
            "versions": versions,
            "version_label": by_id,
            "evaluations": evaluations,
            "ageing": ageing[0] if ageing else None,
            "buckets": [label for label, _ in AGEING_BUCKETS],
            "actions": list(reversed(agent_actions)),
            "estimates": [(label, e) for label, e in estimates if e.n],
            "settled": settled,
            "may_dispute": user.person_id in {agent.owner_id, agent.backup_id},
            "checks": checks,
        },
    )


@router.get("/actions", response_class=HTMLResponse)
def actions_page(request: Request) -> Response:
    """Rollbacks and redeploys, newest first; undecided ones on top."""
    user = current_user(request)
    require(user, OVERSIGHT_ROLES, "the actions page")
    with _reading(request) as session:
        every = list(reversed(actions.list_actions(session)))
        names = {a.id: a.name for a in agents.list_agents(session)}
    waiting = [a for a in every if a.status in UNDECIDED_STATUSES]
    others = [a for a in every if a.status not in UNDECIDED_STATUSES][:50]
    return _page(request, "actions.html", {"waiting": waiting, "others": others, "names": names})


@router.get("/actions/{action_id}", response_class=HTMLResponse)
def action_page(request: Request, action_id: int) -> Response:
    """One action with its next steps; its owner or backup may decide it here."""
    user = current_user(request)
    require(user, OVERSIGHT_ROLES, "the actions page")
    with _reading(request) as session:
        return _action_page(request, session, user, action_id=action_id)


def _action_page(
    request: Request,
    session: Session,
    user: WebUser,
    *,
    action_id: int,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        action = actions.get_action(session, action_id=action_id)
    except NotFoundError as missing:
        return _error(request, str(missing), status_code=404)
    agent = session.get(Agent, action.agent_id)
    assert agent is not None
    owner = session.get(Person, agent.owner_id)
    backup = session.get(Person, agent.backup_id)
    assert owner is not None and backup is not None
    view = ActionView(
        action_id=action_id,
        status=action.status,
        agent=agent.name,
        owner_email=owner.email,
        backup_email=backup.email,
        owner_proposed=action.proposed_by_id == owner.id,
        owner_deadline=action.owner_deadline,
        final_deadline=action.final_deadline,
    )
    versions = {v.id: v.version for v in agents.list_versions(session, agent=agent)}
    approval = actions.get_approval(session, action_id=action_id)
    # The buttons show for the two people who may ever decide; the service has the last word.
    may_decide = user.person_id in {owner.id, backup.id} and action.status in UNDECIDED_STATUSES
    return _page(
        request,
        "action.html",
        {
            "action": action,
            "agent": agent,
            "owner": owner,
            "backup": backup,
            "versions": versions,
            "approval": approval,
            "steps": next_steps(view),
            "may_decide": may_decide,
            "error": error,
        },
        status_code=status_code,
    )


@router.post("/actions/{action_id}/decide")
async def action_decide(request: Request, action_id: int) -> Response:
    """Approve or reject through the same service as the CLI and Slack."""
    user = current_user(request)
    # Managers see everything but change nothing; whether this person may decide this
    # action (owner, or backup after escalation) is the service's rule, not the page's.
    require(user, DECIDE_ROLES, "deciding actions")
    form = await _form(request, user)
    choice = form.get("decision", "")
    if choice not in {d.value for d in Decision}:
        return _error(request, "choose approve or reject", status_code=400)
    reason = form.get("reason", "").strip() or None
    # The same decide-then-wake as Slack, through the app's one waker (built in the
    # composition root): it resumes the gate run or executes the approval here at once.
    waker = getattr(request.app.state, "waker", None) or NoWaker()
    try:
        decide_and_wake(
            request.app.state.engine,
            action_id=action_id,
            actor=user.actor,
            decision=Decision(choice),
            reason=reason,
            waker=waker,
        )
    except actions.ApprovalRefused as refused:  # already committed with the refusal
        message = str(refused)
    except NotFoundError as missing:
        return _error(request, str(missing), status_code=404)
    except RuleViolation as refused:
        message = str(refused)
    else:
        message = ""
    if message:
        with _reading(request) as session:
            return _action_page(
                request, session, user, action_id=action_id, error=message, status_code=409
            )
    return _redirect(f"/actions/{action_id}")


@router.post("/review/items/{item_id}/dispute")
async def review_dispute(request: Request, item_id: int) -> Response:
    """The agent's owner or backup sends a settled verdict to adjudication."""
    user = current_user(request)
    require(user, DECIDE_ROLES, "disputing verdicts")
    form = await _form(request, user)
    try:
        with _writing(request) as session:
            item = review.dispute_verdict(
                session, item_id=item_id, actor=user.actor, reason=form.get("reason", "")
            )
            conversation = session.get(Conversation, item.conversation_id)
            agent = session.get(Agent, conversation.agent_id)  # type: ignore[union-attr]
            name = agent.name if agent else ""
    except NotFoundError as missing:
        return _error(request, str(missing), status_code=404)
    except RuleViolation as refused:
        return _error(request, str(refused), status_code=409)
    return _redirect(f"/agents/{quote(name)}")


@router.get("/agreement", response_class=HTMLResponse)
def agreement_page(request: Request) -> Response:
    """Agreement of blind second reviews with first ones, per criterion and reviewer pair."""
    user = current_user(request)
    require(user, OVERSIGHT_ROLES, "the agreement page")
    with _reading(request) as session:
        criteria, pairs = agreement_report(session)
    return _page(request, "agreement.html", {"criteria": criteria, "pairs": pairs})


# --- admin ----------------------------------------------------------------------------


@router.get("/admin/people", response_class=HTMLResponse)
def people_page(request: Request) -> Response:
    """Everyone who may sign in, with their roles (admins only)."""
    user = current_user(request)
    require(user, ADMIN_ROLES, "the people page")
    with _reading(request) as session:
        people = list_people(session)
    return _page(request, "people.html", {"people": people, "all_roles": list(Role)})


@router.post("/admin/people")
async def people_add(request: Request) -> Response:
    """Register a person or change their role (admins only)."""
    user = current_user(request)
    require(user, ADMIN_ROLES, "the people page")
    form = await _form(request, user)
    try:
        role = Role(form.get("role", ""))
        with _writing(request) as session:
            register_person(session, email=form.get("email", ""), role=role, actor=user.email)
    except ValueError:
        return _error(request, "choose one of the roles", status_code=400)
    except AgentOpsError as refused:
        return _error(request, str(refused), status_code=400)
    return _redirect("/admin/people")


def action_label(action: Action, names: dict[int, str]) -> str:
    """How an action is named in lists."""
    return f"#{action.id} {action.kind.value} of {names.get(action.agent_id, '?')}"


templates.env.globals["action_label"] = action_label
