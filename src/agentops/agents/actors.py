"""Who is acting, resolved once at the edge: a registered person or the system itself."""

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session, select

from agentops.agents.emails import normalise_email
from agentops.store.core_tables import Person


class Channel(StrEnum):
    """Where an actor reached agentops from."""

    cli = "cli"
    slack = "slack"
    web = "web"
    flow = "flow"


@dataclass(frozen=True)
class Actor:
    """A verified identity: rules compare person ids, never the label."""

    label: str
    channel: Channel
    person_id: int | None = None

    @property
    def is_person(self) -> bool:
        """True for a registered person; False for the system (flows, sweeper)."""
        return self.person_id is not None


def system_actor(name: str) -> Actor:
    """The system acting on its own, e.g. 'flow:evaluate-triggers' or 'sweeper'."""
    return Actor(label=name, channel=Channel.flow)


def person_actor(session: Session, *, email: str, channel: Channel) -> Actor:
    """The registered person with this email; an unknown address acts as nobody in particular."""
    email = normalise_email(email)
    person = session.exec(select(Person).where(Person.email == email)).first()
    return Actor(label=email, channel=channel, person_id=person.id if person else None)
