"""The Langfuse connector against a fake Langfuse: pull by cursor (resumable, exactly
once), and review verdicts written back as scores with idempotency keys."""

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, func, select

from agentops.agents import service as agents
from agentops.ingestion.otlp.intake import close_idle
from agentops.langfuse.client import LangfuseClient, LangfuseError
from agentops.langfuse.service import SCORE_NAME, pull_observations, push_review_scores
from agentops.store.models import Conversation, OtlpItem, Review, ReviewItem, Role, Sample
from factories import review_queue, serve
from fake_langfuse import PUBLIC, SECRET, FakeLangfuse

CALL = {
    "id": "c1",
    "type": "function",
    "function": {"name": "cancel_reservation", "arguments": "{}"},
}
USER = {"role": "user", "content": "Cancel ABC123"}
ASKED = {"role": "assistant", "content": None, "tool_calls": [CALL]}
RESULT = {"role": "tool", "tool_call_id": "c1", "content": "cancelled"}


def observation(n: int, kind: str, minute: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"obs-{n}",
        "traceId": "a" * 32,
        "type": kind,
        "name": kind.lower(),
        "startTime": f"2026-11-30T10:{minute:02d}:00.000Z",
        "endTime": f"2026-11-30T10:{minute:02d}:01.000Z",
        "sessionId": "sess-lf",
        "version": "v3",
        **fields,
    }


@pytest.fixture
def fake() -> FakeLangfuse:
    found = FakeLangfuse(page=2)
    found.observations = [
        observation(1, "AGENT", 0),
        observation(2, "GENERATION", 1, input=[USER], output=ASKED),
        observation(3, "TOOL", 2, name="cancel_reservation", input={}, output="cancelled"),
        observation(
            4,
            "GENERATION",
            3,
            input=[USER, ASKED, RESULT],
            output={"role": "assistant", "content": "Done."},
        ),
    ]
    return found


def stored_items(session: Session) -> int:
    return session.exec(select(func.count()).select_from(OtlpItem)).one()


def test_pull_resumes_after_a_failure_and_stores_each_observation_once(
    session: Session, fake: FakeLangfuse
) -> None:
    agent = agents.register_agent(
        session, name="airline", owner_email="o@x.io", backup_email="b@x.io", actor="t"
    )
    session.commit()
    fake.fail_next_pages = 1  # the second page fails once
    with serve(fake.app) as url:
        client = LangfuseClient(base_url=url, public_key=PUBLIC, secret_key=SECRET)
        with pytest.raises(LangfuseError, match="500"):
            pull_observations(session, client=client, agent=agent)
        session.rollback()
        assert stored_items(session) == 2  # the first page, committed with its cursor
        assert pull_observations(session, client=client, agent=agent) == 2
        assert stored_items(session) == 4
        # Nothing new: a later pull starts from the latest start time and stores nothing twice.
        pull_observations(session, client=client, agent=agent)
        assert stored_items(session) == 4
        fake.observations.append(
            observation(
                5,
                "GENERATION",
                9,
                input=[
                    USER,
                    ASKED,
                    RESULT,
                    {"role": "assistant", "content": "Done."},
                    {"role": "user", "content": "Thanks"},
                ],
                output="Bye.",
            )
        )
        pull_observations(session, client=client, agent=agent)
        assert stored_items(session) == 5
        client.close()
    close_idle(session, idle=timedelta(0))
    row = session.exec(select(Conversation)).one()
    assert row.external_id == "sess-lf" and row.escalated is False
    assert [(m["role"], m.get("content")) for m in row.transcript] == [
        ("user", "Cancel ABC123"),
        ("assistant", None),
        ("tool", "cancelled"),
        ("assistant", "Done."),
        ("user", "Thanks"),
        ("assistant", "Bye."),
    ]
    assert json.loads(row.transcript[1]["tool_calls"][0]["function"]["arguments"]) == {}


def test_verdicts_go_back_as_scores_once_each(session: Session, fake: FakeLangfuse) -> None:
    agent = agents.register_agent(
        session, name="airline", owner_email="o@x.io", backup_email="b@x.io", actor="t"
    )
    session.commit()
    with serve(fake.app) as url:
        client = LangfuseClient(base_url=url, public_key=PUBLIC, secret_key=SECRET)
        pull_observations(session, client=client, agent=agent)
        close_idle(session, idle=timedelta(0))
        pulled = session.exec(select(Conversation)).one()
        version = agents.get_version(session, agent=agent, version="v3")
        review_queue(session, count=1, agent=agent, version=version)
        sample = session.exec(select(Sample)).one()
        item = ReviewItem(
            sample_id=sample.id, conversation_id=pulled.id, rubric_id=sample.rubric_id
        )  # type: ignore[arg-type]
        session.add(item)
        session.flush()
        reviewer = agents.ensure_person(session, email="rita@x.io", role=Role.reviewer)
        session.add(Review(review_item_id=item.id, reviewer_id=reviewer.id, violation=True))  # type: ignore[arg-type]
        other = session.exec(select(ReviewItem).where(ReviewItem.id != item.id)).first()
        session.add(Review(review_item_id=other.id, reviewer_id=reviewer.id, violation=False))  # type: ignore[arg-type, union-attr]
        session.commit()

        assert push_review_scores(session, client=client, agent=agent) == 2
        assert push_review_scores(session, client=client, agent=agent) == 0
        client.close()
    scores = sorted(fake.scores.values(), key=lambda s: s["id"])
    assert fake.score_posts == 2 and len(scores) == 2
    by_target = {s.get("sessionId") or s.get("traceId"): s for s in scores}
    assert by_target["sess-lf"]["value"] == 0 and by_target["sess-lf"]["name"] == SCORE_NAME
    assert by_target["chat-0"]["value"] == 1 and "traceId" in by_target["chat-0"]
    assert all(s["id"].startswith("agentops-review-") for s in scores)


@pytest.mark.flows
@pytest.mark.usefixtures("prefect_harness")
def test_the_scheduled_flow_pulls_closes_and_pushes(
    session: Session, fake: FakeLangfuse, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentops.flows.langfuse_sync import langfuse_sync
    from agentops.settings import get_settings

    agents.register_agent(
        session, name="airline", owner_email="o@x.io", backup_email="b@x.io", actor="t"
    )
    session.commit()
    with serve(fake.app) as url:
        monkeypatch.setenv("AGENTOPS_LANGFUSE_URL", url)
        monkeypatch.setenv("AGENTOPS_LANGFUSE_PUBLIC_KEY", PUBLIC)
        monkeypatch.setenv("AGENTOPS_LANGFUSE_SECRET_KEY", SECRET)
        monkeypatch.setenv("AGENTOPS_OTLP_IDLE_CLOSE_S", "0.001")
        get_settings.cache_clear()
        summary = langfuse_sync("airline")
        again = langfuse_sync("airline")
    get_settings.cache_clear()
    assert summary == {"staged": 4, "stored": 1, "scores": 0}
    assert again["stored"] == 0 and stored_items(session) == 4
    session.commit()
    assert session.exec(select(Conversation)).one().external_id == "sess-lf"
