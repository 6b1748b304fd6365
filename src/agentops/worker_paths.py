"""Settings that name files must be absolute where flows run: workers start each run elsewhere.

A Prefect process worker runs every flow in a fresh temporary directory, so a relative
SQLite path would open (and create) an empty store there, and a relative signing key or
checkpoint folder would not be found, or would be deleted with the run.
"""

from pathlib import Path

from sqlalchemy.engine import make_url

from agentops.errors import RuleViolation
from agentops.settings import Settings, get_settings
from agentops.store.db import normalise_url


def relative_file_settings(settings: Settings, *, audit_files: bool) -> list[str]:
    """The AGENTOPS_* settings that name a file by a relative path."""
    found = []
    url = make_url(normalise_url(settings.database_url))
    database = url.database or ""
    in_file = url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if in_file and not Path(database).is_absolute():
        found.append(f"AGENTOPS_DATABASE_URL ({settings.database_url})")
    if audit_files:
        for name in ("audit_signing_key", "audit_checkpoint_dir"):
            path: Path = getattr(settings, name)
            if not path.is_absolute():
                found.append(f"AGENTOPS_{name.upper()} ({path})")
    return found


def require_absolute_paths(*, in_deployment: bool, audit_files: bool = False) -> None:
    """In a deployed flow run, refuse relative file settings with one clear error."""
    if not in_deployment:
        return  # run in-process (the CLI, the demo, tests): the working directory holds
    found = relative_file_settings(get_settings(), audit_files=audit_files)
    if found:
        raise RuleViolation(
            f"{', '.join(found)}: a relative path, but workers run each flow in a temporary "
            "directory; set an absolute path on the worker (see docs/operators/operations.md)"
        )
