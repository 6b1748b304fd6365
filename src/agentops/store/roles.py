"""The PostgreSQL application role's privileges: what the database itself refuses the app."""

import re

from agentops.errors import AgentOpsError

_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Run by the owner after every `agentops db upgrade`. With migration 0009 the sequencer
# seals through SECURITY DEFINER functions, so the app adds pending entries and reads the
# trail, and nothing else on the three audit tables.
APP_ROLE_GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}",
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON auditevent FROM {role}",
    "REVOKE UPDATE, DELETE, TRUNCATE ON auditpending FROM {role}",
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON auditchainhead FROM {role}",
    "REVOKE UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}",
)


def app_role_grants(role: str) -> list[str]:
    """The GRANT/REVOKE statements that make `role` the application role."""
    if not _ROLE_NAME.fullmatch(role):
        raise AgentOpsError(
            "a role name is lower-case letters, digits and underscores (at most 63)"
        )
    return [statement.format(role=role) for statement in APP_ROLE_GRANTS]
