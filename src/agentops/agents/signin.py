"""Who may use the web pages: people with roles, one-time sign-in links, the signing key.

Plain Python (no web framework): the CLI issues links and the web edge redeems them.
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from agentops.agents.emails import normalise_email
from agentops.agents.names import check_email
from agentops.audit.service import add_and_record, record_event
from agentops.errors import AgentOpsError, NotFoundError
from agentops.store.models import LoginLink, Person, Role, WebSecret, utcnow

LINK_SALT = "agentops.login-link"
SESSION_SALT = "agentops.session"


class SignInRefused(AgentOpsError):
    """A sign-in link or session cannot be used (forged, expired, already used, unknown)."""


def signing_key(session: Session, *, configured: str | None = None) -> str:
    """The key that signs sessions and links: the configured one, else the store's own."""
    if configured:
        return configured
    stored = session.get(WebSecret, 1)
    if stored is not None:
        return stored.secret
    # Insert-if-absent in one statement: if another process creates the key at the same
    # moment, theirs stays and is read back (no savepoint, so no commit hooks fire here).
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(WebSecret)
        .values(id=1, secret=secrets.token_urlsafe(32), created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
    )
    stored = session.get(WebSecret, 1, populate_existing=True)
    assert stored is not None
    return stored.secret


def register_person(
    session: Session, *, email: str, role: Role, actor: str, name: str | None = None
) -> Person:
    """Add a person with a role, or change the role of one already known (audited)."""
    email = check_email(normalise_email(email))
    person = session.exec(select(Person).where(Person.email == email)).first()
    if person is None:
        person = Person(email=email, name=name or email.split("@")[0], role=role)
        add_and_record(
            session,
            row=person,
            actor=actor,
            kind="person.added",
            entity_type="person",
            payload={"email": email, "role": role.value},
        )
    elif person.role != role:
        previous = person.role
        person.role = role
        person.session_version += 1  # saved sessions of the old role stop working
        add_and_record(
            session,
            row=person,
            actor=actor,
            kind="person.role_changed",
            entity_type="person",
            payload={"email": email, "from": previous.value, "to": role.value},
        )
    return person


def list_people(session: Session) -> list[Person]:
    """Everyone registered, by email."""
    return list(session.exec(select(Person).order_by(Person.email)))


def issue_login_link(
    session: Session,
    *,
    email: str,
    key: str,
    base_url: str,
    minutes: int,
    actor: str,
    now: datetime | None = None,
) -> str:
    """A one-time, signed sign-in URL for a registered person, valid for `minutes`."""
    now = now or utcnow()
    email = normalise_email(email)
    person = session.exec(select(Person).where(Person.email == email)).first()
    if person is None:
        raise NotFoundError(
            f"no person with email {email!r}: register them first (agentops people add)"
        )
    token = secrets.token_urlsafe(24)
    link = LoginLink(
        token_sha256=_digest(token),
        person_id=person.id,  # type: ignore[arg-type]
        expires_at=now + timedelta(minutes=minutes),
        created_at=now,
    )
    add_and_record(
        session,
        row=link,
        actor=actor,
        kind="signin.link_issued",
        entity_type="person",
        payload={"email": email, "expires_at": link.expires_at.isoformat()},
    )
    signed = URLSafeTimedSerializer(key, salt=LINK_SALT).dumps(token)
    return f"{base_url.rstrip('/')}/signin?token={signed}"


def redeem_login_link(
    session: Session, *, token: str, key: str, now: datetime | None = None
) -> Person:
    """Use a sign-in link once: the person it was issued to, or SignInRefused."""
    now = now or utcnow()
    try:
        raw = URLSafeTimedSerializer(key, salt=LINK_SALT).loads(token)
    except BadSignature:
        raise SignInRefused("this sign-in link is not valid: ask for a new one") from None
    link = session.exec(
        select(LoginLink).where(LoginLink.token_sha256 == _digest(str(raw))).with_for_update()
    ).first()
    if link is None:
        raise SignInRefused("this sign-in link is not valid: ask for a new one")
    if link.used_at is not None:
        raise SignInRefused("this sign-in link was already used: ask for a new one")
    if link.expires_at <= now:
        raise SignInRefused("this sign-in link has expired: ask for a new one")
    person = session.get(Person, link.person_id)
    assert person is not None
    link.used_at = now
    session.add(link)
    session.flush()
    record_event(
        session,
        actor=person.email,
        kind="signin.link_used",
        entity_type="person",
        entity_id=person.id,
        payload={"channel": "web"},
    )
    return person


def session_token(key: str, *, person_id: int, csrf: str, version: int = 0) -> str:
    """The signed value of a web session cookie, tied to the person's session version."""
    return URLSafeTimedSerializer(key, salt=SESSION_SALT).dumps(
        {"pid": person_id, "csrf": csrf, "sv": version}
    )


def end_sessions(session: Session, *, person_id: int) -> None:
    """Sign the person out everywhere: every cookie issued so far stops working."""
    person = session.get(Person, person_id)
    if person is not None:
        person.session_version += 1
        session.add(person)
        session.flush()


def read_session_token(key: str, token: str, *, max_age_s: int) -> dict[str, Any] | None:
    """The session's contents, or None when forged or older than `max_age_s`."""
    try:
        data = URLSafeTimedSerializer(key, salt=SESSION_SALT).loads(token, max_age=max_age_s)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    return data


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
