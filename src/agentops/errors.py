"""Errors that describe a user's mistake; the edges show them without a traceback."""


class AgentOpsError(Exception):
    """A problem the user can fix: bad input, unknown names, a rule refused."""


class NotFoundError(AgentOpsError):
    """A named thing (agent, version, person, action) does not exist."""


class RuleViolation(AgentOpsError):
    """A domain rule refused the request (e.g. self-approval, no backup approver)."""
