"""Which roles may do what: one policy for every channel (CLI, web, Slack), pure and tested."""

from agentops.errors import NotFoundError, RuleViolation
from agentops.store.core_tables import Role

REVIEW_ROLES = frozenset({Role.reviewer, Role.owner, Role.admin})
OVERSIGHT_ROLES = frozenset({Role.owner, Role.manager, Role.admin})
ADMIN_ROLES = frozenset({Role.admin})
DECIDE_ROLES = frozenset({Role.owner, Role.admin})
REGISTER_AGENT_ROLES = ADMIN_ROLES
ALL_ROLES = frozenset(Role)


class NotAllowed(RuleViolation):
    """The person is registered, but their role does not allow this."""


def role_refusal(
    role: Role, roles: frozenset[Role], what: str, *, seen_as: str = "registered as"
) -> str | None:
    """Why a person with `role` may not do `what` (None when they may)."""
    if role in roles:
        return None
    allowed = ", ".join(sorted(r.value for r in roles))
    return f"{what} is for {allowed}; you are {seen_as} a {Role(role).value}"


def require_role(role: Role, roles: frozenset[Role], what: str) -> None:
    """Refuse (NotAllowed) unless `role` is one of `roles`."""
    if (refusal := role_refusal(role, roles, what)) is not None:
        raise NotAllowed(refusal)


class NotRegistered(NotFoundError):
    """Nobody with this email is registered: agentops never creates a person on the fly."""

    def __init__(self, email: str) -> None:
        super().__init__(f"{email} is not registered with agentops: ask an admin to add you")
        self.email = email
