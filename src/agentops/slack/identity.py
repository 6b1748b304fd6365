"""Who clicked: a Slack user id resolved to a registered person, never the payload's text."""

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from agentops.agents.actors import Actor, Channel
from agentops.store.db import write_session
from agentops.store.models import Person

log = logging.getLogger(__name__)


def actor_for_slack_user(session: Session, *, slack_user_id: str) -> Actor:
    """The person whose stored Slack id matches; an unknown id acts as nobody in particular."""
    person = session.exec(select(Person).where(Person.slack_user_id == slack_user_id)).first()
    if person is None:
        # No person id: every rule refuses it, and the refusal is audited under this label.
        return Actor(label=f"slack:{slack_user_id}", channel=Channel.slack)
    return Actor(label=person.email, channel=Channel.slack, person_id=person.id)


def resolve_slack_id(session: Session, client: WebClient, *, person: Person) -> str | None:
    """The person's Slack id, looked up by email (users.lookupByEmail) and stored on first use."""
    if person.slack_user_id:
        return person.slack_user_id
    try:
        answer = client.users_lookupByEmail(email=person.email)
    except SlackApiError as exc:
        if exc.response.get("error") == "users_not_found":
            log.warning("no Slack user has the email of person #%s", person.id)
            return None
        raise
    slack_id = (answer.get("user") or {}).get("id")
    if not isinstance(slack_id, str) or not slack_id:
        return None
    person.slack_user_id = slack_id
    session.add(person)
    return slack_id


def link_people(engine: Engine, client: WebClient, *, person_ids: list[int]) -> dict[int, str]:
    """Resolve and store the Slack ids of these people, each in its own transaction."""
    found: dict[int, str] = {}
    with Session(engine) as session:
        for person_id in person_ids:
            person = session.get(Person, person_id)
            if person is not None and person.slack_user_id:
                found[person_id] = person.slack_user_id
    for person_id in person_ids:
        if person_id in found:
            continue  # linked already: no write, no lookup
        try:
            with write_session(engine) as session:
                person = session.get(Person, person_id)
                if person is None:
                    continue
                slack_id = resolve_slack_id(session, client, person=person)
                if slack_id:
                    found[person_id] = slack_id
        except IntegrityError:
            # Another person already holds this Slack id: keep the first link, say so.
            log.warning("person #%s shares a Slack id with another person; not linked", person_id)
    return found
