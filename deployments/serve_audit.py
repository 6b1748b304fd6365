"""Serve the audit trail's schedules from this machine: `python deployments/serve_audit.py`.

The sequencer's backstop seals pending entries every minute; a signed checkpoint of the
tree head is taken daily at 00:15 UTC (needs the key from `agentops audit keygen`).
"""

from typing import Any

from flows.audit_checkpoint import checkpoint_audit_trail, seal_audit_trail


def build_deployments() -> list[Any]:
    """The two audit deployments with their schedules."""
    return [
        seal_audit_trail.to_deployment(name="every-minute", cron="* * * * *"),
        checkpoint_audit_trail.to_deployment(name="daily", cron="15 0 * * *"),
    ]


def main() -> None:
    """Serve until interrupted."""
    from prefect import serve

    serve(*build_deployments())


if __name__ == "__main__":
    main()
