"""A settled verdict was withdrawn (disputed): the version's review charts must replay.

Imports only the store, so the review service can call it cheaply and without a cycle.
"""

from sqlalchemy import update
from sqlmodel import Session, col

from agentops.store.models import TriggerChart


def verdict_withdrawn(session: Session, *, version_id: int) -> None:
    """Flag the version's charts: each review trigger replays its reviews next time.

    The verdict may already be counted; replaying from the start makes the charts equal a
    recomputation without it (and, once adjudicated, with the new verdict at its new time).
    Conversation triggers ignore the flag.
    """
    session.execute(
        update(TriggerChart)
        .where(col(TriggerChart.agent_version_id) == version_id)
        .values(replay=True)
    )
