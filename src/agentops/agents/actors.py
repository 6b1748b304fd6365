"""Who is acting, resolved once at the edge: a registered person or the system itself.

Actor and Channel live on the ground floor (agentops.identity) so the audit layer can
name them; this module resolves a person from the store.
"""

from sqlmodel import Session, select

from agentops.agents.emails import normalise_email
from agentops.identity import Actor as Actor
from agentops.identity import Channel as Channel
from agentops.identity import system_actor as system_actor
from agentops.store.core_tables import Person


def person_actor(session: Session, *, email: str, channel: Channel) -> Actor:
    """The registered person with this email; an unknown address acts as nobody in particular."""
    email = normalise_email(email)
    person = session.exec(select(Person).where(Person.email == email)).first()
    return Actor(label=email, channel=channel, person_id=person.id if person else None)
