"""People, agents and agent versions: who owns what, and which version is live."""

from sqlmodel import Session, select

from agentops.agents.actors import Actor
from agentops.agents.emails import normalise_email
from agentops.agents.names import check_email, check_name
from agentops.agents.roles import NotRegistered, require_role
from agentops.audit.service import add_and_record, record_event
from agentops.errors import NotFoundError, RuleViolation
from agentops.store.core_tables import Agent, AgentVersion, Person, Role, VersionStatus, utcnow


def ensure_person(session: Session, *, email: str, role: Role, name: str | None = None) -> Person:
    """Return the person with this email, creating them with the role if new."""
    email = check_email(normalise_email(email))
    person = session.exec(select(Person).where(Person.email == email)).first()
    if person is None:
        person = Person(email=email, name=name or email.split("@")[0], role=role)
        add_and_record(
            session,
            row=person,
            actor="agentops",
            kind="person.added",
            entity_type="person",
            payload={"email": email, "role": role.value},
        )
    return person


def get_person(session: Session, *, email: str) -> Person:
    """Look up a person by email."""
    person = session.exec(select(Person).where(Person.email == normalise_email(email))).first()
    if person is None:
        raise NotFoundError(f"no person with email {email!r}")
    return person


def require_person_role(
    session: Session, *, actor: Actor, roles: frozenset[Role], what: str
) -> Person:
    """The registered person behind the actor, provided their role allows `what`."""
    person = session.get(Person, actor.person_id) if actor.person_id is not None else None
    if person is None:
        raise NotRegistered(actor.label)
    require_role(person.role, roles, what)
    return person


def register_agent(
    session: Session, *, name: str, owner_email: str, backup_email: str, actor: str
) -> Agent:
    """Register an agent with its accountable owner and a distinct backup approver."""
    name = check_name(name.strip(), what="agent name")
    if normalise_email(owner_email) == normalise_email(backup_email):
        raise RuleViolation("the backup approver must be a different person from the owner")
    if session.exec(select(Agent).where(Agent.name == name)).first() is not None:
        raise RuleViolation(f"agent {name!r} is already registered")
    owner = ensure_person(session, email=owner_email, role=Role.owner)
    backup = ensure_person(session, email=backup_email, role=Role.owner)
    agent = Agent(name=name, owner_id=owner.id, backup_id=backup.id)  # type: ignore[arg-type]
    add_and_record(
        session,
        row=agent,
        actor=actor,
        kind="agent.registered",
        entity_type="agent",
        payload={"name": name, "owner": owner.email, "backup": backup.email},
    )
    return agent


def get_agent(session: Session, *, name: str) -> Agent:
    """Look up an agent by name."""
    agent = session.exec(select(Agent).where(Agent.name == name)).first()
    if agent is None:
        raise NotFoundError(f"no agent named {name!r} (see `agentops agents list`)")
    return agent


def list_agents(session: Session) -> list[Agent]:
    """All agents, by name."""
    return list(session.exec(select(Agent).order_by(Agent.name)))


def list_versions(session: Session, *, agent: Agent) -> list[AgentVersion]:
    """An agent's versions, oldest first."""
    return list(
        session.exec(
            select(AgentVersion).where(AgentVersion.agent_id == agent.id).order_by(AgentVersion.id)  # type: ignore[arg-type]
        )
    )


def get_version(session: Session, *, agent: Agent, version: str) -> AgentVersion:
    """Look up one version of an agent."""
    found = _find_version(session, agent=agent, version=version)
    if found is None:
        raise NotFoundError(f"agent {agent.name!r} has no version {version!r}")
    return found


def ensure_version(session: Session, *, agent: Agent, version: str, actor: str) -> AgentVersion:
    """Return the version, registering it as a candidate if it is new."""
    version = check_name(version.strip(), what="version label")
    found = _find_version(session, agent=agent, version=version)
    if found is not None:
        return found
    created = AgentVersion(agent_id=agent.id, version=version)  # type: ignore[arg-type]
    add_and_record(
        session,
        row=created,
        actor=actor,
        kind="version.added",
        entity_type="agent_version",
        payload={"agent": agent.name, "version": version},
    )
    return created


def require_own_version(agent: Agent, version: AgentVersion) -> None:
    """Refuse a version of some other agent, named by mistake."""
    if version.agent_id != agent.id:
        raise RuleViolation(f"version {version.version!r} does not belong to agent {agent.name!r}")


def _find_version(session: Session, *, agent: Agent, version: str) -> AgentVersion | None:
    return session.exec(
        select(AgentVersion).where(
            AgentVersion.agent_id == agent.id, AgentVersion.version == version
        )
    ).first()


def live_version(session: Session, *, agent: Agent) -> AgentVersion | None:
    """The version currently serving traffic, if any."""
    return session.exec(
        select(AgentVersion).where(
            AgentVersion.agent_id == agent.id, AgentVersion.status == VersionStatus.live
        )
    ).first()


def set_live(
    session: Session,
    *,
    agent: Agent,
    version: AgentVersion,
    actor: str,
    previous_status: VersionStatus = VersionStatus.retired,
) -> AgentVersion:
    """Make a version live; the one it replaces takes previous_status."""
    if agent.owner_id is None or agent.backup_id is None:
        raise RuleViolation(f"agent {agent.name!r} needs an owner and a backup before going live")
    current = live_version(session, agent=agent)
    if current is not None and current.id == version.id:
        return version
    if current is not None:
        current.status = previous_status
        session.add(current)
    version.status = VersionStatus.live
    version.went_live_at = utcnow()
    add_and_record(
        session,
        row=version,
        actor=actor,
        kind="version.live",
        entity_type="agent_version",
        payload={
            "agent": agent.name,
            "version": version.version,
            "replaced": current.version if current else None,
            "replaced_status": previous_status.value if current else None,
        },
    )
    return version


def mark_known_good(session: Session, *, agent: Agent, version: AgentVersion, actor: str) -> bool:
    """Record a version as the agent's last-known-good rollback target; True if it changed."""
    if agent.last_known_good_version_id == version.id:
        return False
    agent.last_known_good_version_id = version.id
    version.known_good_at = utcnow()
    session.add(agent)
    session.add(version)
    session.flush()
    record_event(
        session,
        actor=actor,
        kind="version.known_good",
        entity_type="agent_version",
        entity_id=version.id,
        payload={"agent": agent.name, "version": version.version},
    )
    return True


def known_good_version(session: Session, *, agent: Agent) -> AgentVersion | None:
    """The agent's last-known-good version, the default rollback target."""
    if agent.last_known_good_version_id is None:
        return None
    return session.get(AgentVersion, agent.last_known_good_version_id)


def agent_name(session: Session, *, agent_id: int) -> str:
    """An agent's name from its id."""
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise NotFoundError(f"no agent with id {agent_id}")
    return agent.name


def rollback_target(
    session: Session, *, agent: Agent, leaving: AgentVersion
) -> AgentVersion | None:
    """The most recently known-good version other than the one being rolled back."""
    return session.exec(
        select(AgentVersion)
        .where(
            AgentVersion.agent_id == agent.id,
            AgentVersion.id != leaving.id,
            AgentVersion.known_good_at.is_not(None),  # type: ignore[union-attr]
        )
        .order_by(AgentVersion.known_good_at.desc())  # type: ignore[union-attr]
    ).first()


def lock_agent(session: Session, *, agent: Agent) -> Agent:
    """Lock the agent's row (PostgreSQL) so concurrent proposals are checked one at a time."""
    return session.exec(select(Agent).where(Agent.id == agent.id).with_for_update()).one()
