"""The tables nearly every command touches: people, agents, versions and the audit trail.

They live apart from models.py so that a command needing nothing else (`agentops agents
list`) defines these six tables at start-up rather than all of them: defining one costs a
few milliseconds and the store has over twenty. models.py re-exports every name here, so
`from agentops.store.models import Person` works as before and is still the usual import.
A table belongs here only if its foreign keys point at tables here too.
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# Pydantic builds a table's validator the first time one is validated rather than at import:
# every command defines tables and few validate one, so this saves about a sixth of their
# start-up. Set here, before any table (models.py imports this module first), so all inherit it.
SQLModel.model_config["defer_build"] = True


def utcnow() -> datetime:
    """Current time, timezone-aware in UTC: the form every table stores and returns."""
    return datetime.now(UTC)


class Role(StrEnum):
    owner = "owner"
    reviewer = "reviewer"
    manager = "manager"
    admin = "admin"


class VersionStatus(StrEnum):
    candidate = "candidate"
    live = "live"
    rolled_back = "rolled_back"
    retired = "retired"


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True)
    name: str
    role: Role
    created_at: datetime = Field(default_factory=utcnow)
    # Resolved from the email with Slack's users.lookupByEmail; a click is attributed
    # to the person whose id matches, never to anything the payload says.
    slack_user_id: str | None = Field(default=None, unique=True, index=True)
    # Part of every web session: sign-out and role changes bump it, ending saved cookies.
    session_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    owner_id: int = Field(foreign_key="person.id")
    backup_id: int = Field(foreign_key="person.id")
    # use_alter: agent and agentversion reference each other, so this key is added last.
    last_known_good_version_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("agentversion.id", use_alter=True, name="fk_agent_last_known_good"),
            nullable=True,
        ),
    )
    created_at: datetime = Field(default_factory=utcnow)
    # The rubric its reviews use (highest version of this name); None: the newest registered.
    rubric_name: str | None = None


class AgentVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agent_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    version: str
    status: VersionStatus = VersionStatus.candidate
    created_at: datetime = Field(default_factory=utcnow)
    went_live_at: datetime | None = None
    # Every version that ever passed its triggers keeps this, so a rollback can skip back
    # past a known-good version that later degraded.
    known_good_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True, index=True)
    occurred_at: datetime = Field(default_factory=utcnow)
    actor: str
    kind: str = Field(index=True)
    entity_type: str
    entity_id: str
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    prev_hash: str
    hash: str = Field(unique=True)
    # Added by migration 0003; None on events recorded before it (and then left out of
    # the hash, so older chains still verify).
    channel: str | None = None
    correlation_id: str | None = Field(default=None, index=True)


class AuditChainHead(SQLModel, table=True):
    """One row, locked only by the sequencer while it seals a batch of pending entries."""

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str
    # The Merkle tree's right edge ([size, hex] of perfect subtrees), so a checkpoint
    # reads the tree head without rereading the trail; None until the sequencer builds it.
    merkle_frontier: list[Any] | None = Field(default=None, sa_column=Column(JSON))


class AuditPending(SQLModel, table=True):
    """An audit entry written in its writer's transaction, waiting for the sequencer."""

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(default_factory=utcnow)
    actor: str
    channel: str | None = None
    correlation_id: str | None = None
    kind: str
    entity_type: str
    entity_id: str
    # Canonical JSON text, sealed byte for byte as written.
    payload: str = Field(sa_column=Column(Text, nullable=False))

    @property
    def seq(self) -> int | None:
        """None: the sequencer gives the seq when it seals the entry after commit."""
        return None
