"""Staging received items and closing idle conversations, on the real store."""

from datetime import timedelta

from sqlmodel import Session, select

from agentops.agents import service as agents
from agentops.ingestion.otlp.intake import close_idle, store_items
from agentops.ingestion.otlp.otlp_json import decode_request
from agentops.store.models import Conversation, OtlpConversation, utcnow
from otlp_payloads import parts_json, span_with, traces

USER = parts_json([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
REPLY = parts_json([{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}])


def test_a_child_waits_for_its_root_span_which_names_the_conversation(session: Session) -> None:
    agents.register_agent(
        session, name="airline-bot", owner_email="o@x.io", backup_email="b@x.io", actor="t"
    )
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": USER,
        "gen_ai.output.messages": REPLY,
    }
    child = traces([span_with(1, 2, chat, parent=1)], version="v1")
    root = traces(
        [
            span_with(
                1, 1, {"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "c-9"}
            )
        ],
        version="v1",
    )
    now = utcnow()
    store_items(session, items=decode_request(child), agent_map={}, now=now)
    session.commit()
    idle = timedelta(seconds=1)
    # Idle, but its trace's root has not come: not closed as a conversation of its own.
    report = close_idle(session, idle=idle, now=now + 2 * idle)
    assert report.stored == 0 and session.exec(select(Conversation)).all() == []

    store_items(session, items=decode_request(root), agent_map={}, now=now + 3 * idle)
    # A retry of the same batch stores nothing and reopens nothing.
    store_items(session, items=decode_request(root), agent_map={}, now=now + 4 * idle)
    session.commit()
    assert close_idle(session, idle=idle, now=now + 5 * idle).stored == 1
    (row,) = session.exec(select(Conversation)).all()
    assert row.external_id == "c-9" and [m["content"] for m in row.transcript] == ["hi", "hello"]
    (staged,) = session.exec(select(OtlpConversation)).all()
    assert staged.key == "c-9" and staged.state == "closed"

    store_items(session, items=decode_request(root), agent_map={}, now=now + 9 * idle)
    session.commit()
    assert session.exec(select(OtlpConversation)).one().state == "closed"


def test_a_trace_without_root_is_closed_after_the_patience_runs_out(session: Session) -> None:
    agents.register_agent(
        session, name="airline-bot", owner_email="o@x.io", backup_email="b@x.io", actor="t"
    )
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": USER,
        "gen_ai.output.messages": REPLY,
    }
    now = utcnow()
    store_items(
        session,
        items=decode_request(traces([span_with(2, 2, chat, parent=1)], version="v1")),
        agent_map={},
        now=now,
    )
    session.commit()
    idle = timedelta(seconds=1)
    assert close_idle(session, idle=idle, now=now + 11 * idle).stored == 1
    assert session.exec(select(Conversation)).one().external_id == f"{2:032x}"


def test_credentials_are_masked_before_storing(session: Session) -> None:
    from agentops.redaction import redact, redact_credentials
    from agentops.store.models import OtlpItem

    samples = [
        "plain words, nothing to hide",
        "Authorization: Bearer abcdef123456",
        "my key is sk-abcdefghijklmnop1234",
        "password=hunter22 and api_key: xyz987",
        "AKIAABCDEFGHIJKLMNOP",
    ]
    assert [redact_credentials(s) for s in samples] == [redact(s) for s in samples]
    agents.register_agent(
        session, name="airline-bot", owner_email="o@x.io", backup_email="b@x.io", actor="t"
    )
    leaked = parts_json(
        [{"role": "user", "parts": [{"type": "text", "content": "use sk-abcdefghijklmnop1234"}]}]
    )
    chat = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": leaked}
    store_items(
        session, items=decode_request(traces([span_with(3, 1, chat)], version="v1")), agent_map={}
    )
    session.commit()
    payload = session.exec(select(OtlpItem)).one().payload
    assert "sk-abcdefghijklmnop1234" not in str(payload) and "***" in str(payload)
