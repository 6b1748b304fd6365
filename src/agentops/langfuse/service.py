"""Pull a Langfuse project's observations into agentops and push review verdicts back.

Pulling stages every observation as an OTLP item (deduplicated by its id) and saves the
cursor in the same transaction, page by page: a pull that stops resumes where it
stopped, and nothing is stored twice. The conversations close like the receiver's.
Verdicts go back as scores whose id is derived from the review, so sending one twice
updates it in Langfuse instead of adding a second.
"""

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from agentops.ingestion.otlp.intake import store_items
from agentops.ingestion.otlp.model import Item
from agentops.langfuse.client import LangfuseClient
from agentops.langfuse.mapping import observation_item
from agentops.store.models import (
    Agent,
    Conversation,
    LangfuseCursor,
    OtlpTrace,
    Review,
    ReviewItem,
    utcnow,
)

MAX_PAGES = 1000
SCORE_NAME = "agentops.review.pass"


def pull_observations(
    session: Session, *, client: LangfuseClient, agent: Agent, max_pages: int = MAX_PAGES
) -> int:
    """Stage new observations for the agent, committing each page with its cursor."""
    state = _state(session, agent)
    staged = 0
    for _ in range(max_pages):
        observations, following = client.observations(
            cursor=state.cursor, from_start_time=state.from_start_time
        )
        items = [
            item
            for item in (observation_item(o, service_name=agent.name) for o in observations)
            if item is not None
        ]
        if items:
            store_items(session, items=items, agent_map={})
            staged += len(items)
            latest = max(_iso(item) for item in items)
            state.from_start_time = max(state.from_start_time or "", latest)
        # The last page has no cursor: the next pull starts from the latest start time
        # seen, and what it sees again is skipped by the items' key.
        state.cursor = following
        state.pulled_at = utcnow()
        session.add(state)
        session.commit()
        if following is None:
            break
    return staged


def push_review_scores(session: Session, *, client: LangfuseClient, agent: Agent) -> int:
    """Send verdicts settled since the last push as scores; returns how many were sent."""
    state = _state(session, agent)
    rows = session.exec(
        select(Review, Conversation)
        .join(ReviewItem, col(ReviewItem.id) == Review.review_item_id)
        .join(Conversation, col(Conversation.id) == ReviewItem.conversation_id)
        .where(Conversation.agent_id == agent.id, col(Review.id) > state.scores_through)
        .order_by(col(Review.id))
    ).all()
    sent = 0
    for review, conversation in rows:
        client.create_score(_score(session, agent=agent, review=review, conversation=conversation))
        state.scores_through = review.id  # type: ignore[assignment]
        session.add(state)
        session.commit()
        sent += 1
    return sent


def _score(
    session: Session, *, agent: Agent, review: Review, conversation: Conversation
) -> dict[str, Any]:
    score: dict[str, Any] = {
        "id": f"agentops-review-{review.id}",
        "name": SCORE_NAME,
        "value": 0 if review.violation else 1,
        "dataType": "BOOLEAN",
        "comment": "agentops review verdict: " + ("violation" if review.violation else "pass"),
    }
    traces = session.exec(
        select(OtlpTrace.trace_id)
        .where(
            OtlpTrace.agent_id == agent.id,
            OtlpTrace.conversation_key == conversation.external_id,
        )
        .order_by(col(OtlpTrace.id))
    ).all()
    if traces and conversation.external_id not in traces:
        score["sessionId"] = conversation.external_id
    else:
        score["traceId"] = traces[0] if traces else conversation.external_id
    return score


def _state(session: Session, agent: Agent) -> LangfuseCursor:
    found = session.exec(select(LangfuseCursor).where(LangfuseCursor.agent_id == agent.id)).first()
    return found or LangfuseCursor(agent_id=agent.id)  # type: ignore[arg-type]


def _iso(item: Item) -> str:
    moment = datetime.fromtimestamp(item.start_ns / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
