"""Who is acting and through which channel: the ground floor every layer may import.

Resolved once at the edge (a registered person, or the system itself); the audit trail
names it, and rules compare person ids, never the label.
"""

from dataclasses import dataclass
from enum import StrEnum


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


def normalise_email(email: str) -> str:
    """Compare addresses the way the people table stores them."""
    return email.strip().lower()
