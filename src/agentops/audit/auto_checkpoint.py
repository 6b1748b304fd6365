"""A signed checkpoint after every seal, so a rewrite of the trail goes unnoticed for seconds.

Without it, events sealed after the last `agentops audit checkpoint` (a daily schedule)
could be rewritten consistently by whoever holds the database and still verify. With the
signing key present (AGENTOPS_AUDIT_SIGNING_KEY) and AGENTOPS_AUDIT_CHECKPOINT_AFTER_SEAL
on (the default), the process that sealed signs the new tree head into
AGENTOPS_AUDIT_CHECKPOINT_DIR right after the seal commits.
"""

import logging
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.settings import get_settings

log = logging.getLogger(__name__)


def checkpoint_if_due(engine: Engine) -> Path | None:
    """Sign the tree head if it grew since the newest checkpoint; never raises."""
    settings = get_settings()
    key_path = settings.audit_signing_key
    if not settings.audit_checkpoint_after_seal or not key_path.is_file():
        return None
    try:
        from agentops.audit.checkpoints import latest_size
        from agentops.audit.service import take_checkpoint, tree_head
        from agentops.audit.signing import load_private_key

        directory = settings.audit_checkpoint_dir
        with Session(engine) as session:
            if tree_head(session).tree_size <= latest_size(directory):
                return None
            signed = take_checkpoint(session, directory=directory, key=load_private_key(key_path))
            session.commit()
        return signed.path
    except Exception:  # the trail is sealed; the next seal or the daily checkpoint signs it
        log.warning("could not write the checkpoint after sealing", exc_info=True)
        return None
