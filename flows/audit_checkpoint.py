"""Scheduled flows for the audit trail: seal pending entries, and a signed daily checkpoint.

`seal-audit-trail` is the sequencer's backstop (every minute): writers seal right after
their own commits, and this picks up anything a crashed writer left pending.
`checkpoint-audit-trail` signs the tree head daily into the checkpoint directory and, when
Slack is configured, posts a copy to the audit channel.
"""

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import deployment
from sqlmodel import Session

from agentops.audit.service import seal_all, take_checkpoint
from agentops.audit.signing import load_private_key
from agentops.settings import get_settings
from agentops.store.db import engine_scope
from agentops.worker_paths import require_absolute_paths


@flow(name="seal-audit-trail")
def seal_audit_trail() -> int:
    """Seal every committed pending audit entry; returns how many."""
    require_absolute_paths(in_deployment=deployment.id is not None)
    with engine_scope() as engine:
        sealed = seal_all(engine)
    get_run_logger().info("sealed %d pending audit entries", sealed)
    return sealed


@flow(name="checkpoint-audit-trail")
def checkpoint_audit_trail(directory: str | None = None) -> dict[str, object]:
    """Sign the chain head into a checkpoint file (and Slack, when configured)."""
    require_absolute_paths(in_deployment=deployment.id is not None, audit_files=True)
    settings = get_settings()
    key = load_private_key(settings.audit_signing_key)
    target = Path(directory) if directory else settings.audit_checkpoint_dir
    with engine_scope() as engine, Session(engine) as session:
        signed = take_checkpoint(session, directory=target, key=key)
        session.commit()
    posted = False
    if settings.slack_bot_token is not None and settings.audit_slack_channel:
        from agentops.adapters.slack_audit import post_checkpoint

        post_checkpoint(
            signed,
            token=settings.slack_bot_token.get_secret_value(),
            channel=settings.audit_slack_channel,
        )
        posted = True
    get_run_logger().info("checkpoint of %d events: %s", signed.tree_size, signed.path)
    return {"tree_size": signed.tree_size, "path": str(signed.path), "posted_to_slack": posted}
