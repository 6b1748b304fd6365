"""Who is asking: a signed session cookie, or the SSO proxy's header from a trusted address."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cached_property

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import Session, select

from agentops.agents.actors import Actor, Channel
from agentops.agents.emails import normalise_email

# Which roles may do what is one policy (agents/roles.py): the server checks it on every
# request (the pages only hide links), and the services check it for every channel.
from agentops.agents.roles import ADMIN_ROLES as ADMIN_ROLES
from agentops.agents.roles import ALL_ROLES as ALL_ROLES
from agentops.agents.roles import DECIDE_ROLES as DECIDE_ROLES
from agentops.agents.roles import OVERSIGHT_ROLES as OVERSIGHT_ROLES
from agentops.agents.roles import REVIEW_ROLES as REVIEW_ROLES
from agentops.agents.roles import role_refusal
from agentops.agents.signin import read_session_token, session_token, signing_key
from agentops.serve.proxy import is_trusted, socket_peer, trusted_networks
from agentops.settings import Settings
from agentops.store.models import Person, Role

COOKIE = "agentops_session"


class SignInRequired(Exception):
    """No valid session: the edge redirects to the sign-in page."""


class Forbidden(Exception):
    """Signed in, but the person's role does not allow this page or action."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class WebUser:
    """The signed-in person, resolved once per request."""

    person_id: int
    email: str
    name: str
    role: Role
    csrf: str
    via: str  # "session" or "proxy"

    @cached_property
    def actor(self) -> Actor:
        """The same identity services get from the CLI and Slack, on the web channel."""
        return Actor(label=self.email, channel=Channel.web, person_id=self.person_id)

    def may(self, roles: frozenset[Role]) -> bool:
        """Whether the person's role is one of these."""
        return self.role in roles


def web_key(request: Request) -> str:
    """The signing key, read from settings or the store once per process."""
    key = getattr(request.app.state, "web_key", None)
    if key is None:
        settings: Settings = request.app.state.settings
        configured = settings.web_secret.get_secret_value() if settings.web_secret else None
        with Session(request.app.state.engine) as session:
            key = signing_key(session, configured=configured)
            session.commit()
        request.app.state.web_key = key
    return key


def trusted_proxy(request: Request, settings: Settings) -> bool:
    """True only when the socket peer itself is a configured SSO proxy address.

    The peer is the TCP connection's far end, never an X-Forwarded-For value: a local process
    that forges the chain still connects from its own address.
    """
    networks = trusted_networks(settings.web_trusted_proxies)
    return is_trusted(socket_peer(request.scope), networks)


def current_user(request: Request) -> WebUser:
    """The person behind the request, or SignInRequired."""
    cached = getattr(request.state, "web_user", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    user = _resolve(request)
    if user is None:
        raise SignInRequired()
    request.state.web_user = user
    return user


def optional_user(request: Request) -> WebUser | None:
    """The person behind the request, if any."""
    try:
        return current_user(request)
    except (SignInRequired, Forbidden):
        return None


def require(user: WebUser, roles: frozenset[Role], what: str) -> None:
    """Refuse (403) unless the person's role is one of `roles`."""
    refusal = role_refusal(user.role, roles, what, seen_as="signed in as")
    if refusal is not None:
        raise Forbidden(refusal)


def check_csrf(request: Request, user: WebUser, submitted: str | None) -> None:
    """Refuse a state change whose form (or X-CSRF-Token header) lacks the session's token."""
    token = submitted or request.headers.get("x-csrf-token") or ""
    if not hmac.compare_digest(token.encode(), user.csrf.encode()):
        raise Forbidden("this form has expired or did not come from agentops: reload the page")


def start_session(
    request: Request, response: Response, *, person_id: int, version: int = 0
) -> None:
    """Set the signed, HttpOnly, SameSite session cookie for the person."""
    settings: Settings = request.app.state.settings
    token = session_token(
        web_key(request), person_id=person_id, csrf=secrets.token_urlsafe(24), version=version
    )
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.web_session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def same_origin(request: Request) -> bool:
    """False for a browser's cross-site POST (login CSRF): Origin or Sec-Fetch-Site says so."""
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by this client: no browser form from another site
    return origin == f"{request.url.scheme}://{request.url.netloc}"


def end_session(response: Response) -> None:
    """Forget the session cookie."""
    response.delete_cookie(COOKIE, path="/")


def _resolve(request: Request) -> WebUser | None:
    settings: Settings = request.app.state.settings
    key = web_key(request)
    header = request.headers.get(settings.web_identity_header)
    if header and trusted_proxy(request, settings):
        return _proxy_user(request, key=key, email=header)
    # From anywhere else the header is ignored: a client could set it to anyone.
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    data = read_session_token(key, cookie, max_age_s=settings.web_session_hours * 3600)
    if data is None:
        return None
    with Session(request.app.state.engine) as session:
        person = session.get(Person, data["pid"])
    if person is None or data.get("sv", 0) != person.session_version:
        return None  # signed out (or the role changed) since this cookie was issued
    return _user(person, csrf=str(data.get("csrf", "")), via="session")


def _proxy_user(request: Request, *, key: str, email: str) -> WebUser:
    email = normalise_email(email)
    with Session(request.app.state.engine) as session:
        person = session.exec(select(Person).where(Person.email == email)).first()
    if person is None:
        raise Forbidden(f"{email} is not registered with agentops: ask an admin to add you")
    # No cookie of ours rides along with the proxy's: a token derived from the key and the
    # person still cannot be read or guessed by another site.
    csrf = hmac.new(key.encode(), f"proxy-csrf:{person.id}".encode(), hashlib.sha256).hexdigest()
    return _user(person, csrf=csrf, via="proxy")


def _user(person: Person, *, csrf: str, via: str) -> WebUser:
    return WebUser(
        person_id=person.id,  # type: ignore[arg-type]
        email=person.email,
        name=person.name,
        role=Role(person.role),
        csrf=csrf,
        via=via,
    )
