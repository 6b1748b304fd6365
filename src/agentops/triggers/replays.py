"""Verdicts that change behind a chart's cursor: the version's review charts must replay.

Evaluations read verdicts in settlement order from a cursor. A verdict withdrawn by a
dispute may already be counted, and one settled by a second review or an adjudication
with a time the cursor has passed (clocks, or a commit racing an evaluation) would never
be read; either way the next evaluation of each review trigger replays the version's
reviews from the start, so its charts equal a recomputation. Both are rare. Imports only
the store, so the review service calls it cheaply and without a cycle.
"""

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from agentops.store.models import Conversation, TriggerChart


def verdict_withdrawn(session: Session, *, version_id: int) -> None:
    """A settled verdict of this version was disputed: replay its review charts."""
    session.execute(
        update(TriggerChart)
        .where(col(TriggerChart.agent_version_id) == version_id)
        .values(replay=True)
    )


def verdict_settled_late(session: Session, *, conversation_id: int, settled_at: datetime) -> None:
    """An earlier review's item settled only now: replay charts whose cursor passed it.

    Row locks make this wait for an evaluation holding the charts, so it sees the cursor
    that evaluation wrote.
    """
    version = select(Conversation.agent_version_id).where(Conversation.id == conversation_id)
    session.execute(
        update(TriggerChart)
        .where(
            col(TriggerChart.agent_version_id) == version.scalar_subquery(),
            col(TriggerChart.cursor_at) >= settled_at,
        )
        .values(replay=True)
    )
