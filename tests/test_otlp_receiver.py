"""The OTLP/HTTP receiver in `agentops serve`, fed by the real OpenTelemetry SDK and exporter."""

import gzip
import json
import logging
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from agentops.agents import service as agents
from agentops.conversations.service import conversation_json
from agentops.store.models import Conversation, OtlpConversation, OtlpItem
from otlp_payloads import attrs, genai_latest, span, traces
from otlp_server import TOKEN, serving, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def airline(engine: Engine) -> Engine:
    with Session(engine) as session:
        agents.register_agent(
            session, name="airline-bot", owner_email="o@x.io", backup_email="b@x.io", actor="t"
        )
        session.commit()
    return engine


def stored(engine: Engine) -> list[Conversation]:
    with Session(engine) as session:
        return list(session.exec(select(Conversation)).all())


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def text(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


def sdk_provider(base: str, *, version: str = "v5") -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "airline-bot", "service.version": version})
    )
    exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=AUTH)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def one_turn(provider: TracerProvider, conversation: str, history: list[Any], reply: str) -> None:
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span("invoke_agent airline") as agent_span:
        agent_span.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent_span.set_attribute("gen_ai.conversation.id", conversation)
        with tracer.start_as_current_span("chat gpt") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.input.messages", json.dumps(history))
            chat.set_attribute("gen_ai.output.messages", json.dumps([text("assistant", reply)]))


def test_sdk_exports_are_stored_closed_when_idle_and_reopened_when_resumed(
    airline: Engine,
) -> None:
    with serving(airline) as (base, _):
        provider = sdk_provider(base)
        first = [text("user", "Cancel booking ABC123")]
        one_turn(provider, "conv-42", first, "Which flight?")
        (row,) = wait_for(lambda: stored(airline))
        assert [m["content"] for m in row.transcript] == ["Cancel booking ABC123", "Which flight?"]
        shown = conversation_json(row, agent="airline-bot", version="v5")
        assert shown["id"] == "conv-42"

        # The user comes back after the idle window: the same conversation grows.
        second = [*first, text("assistant", "Which flight?"), text("user", "UA 12")]
        one_turn(provider, "conv-42", second, "Cancelled.")
        provider.shutdown()

        def grown() -> list[Conversation]:
            rows = stored(airline)
            return rows if rows and len(rows[0].transcript) == 4 else []

        (again,) = wait_for(grown)
        assert again.id == row.id
        assert [m["content"] for m in again.transcript][-1] == "Cancelled."
    with Session(airline) as session:
        staged = session.exec(select(OtlpConversation)).one()
        assert staged.state == "closed" and staged.conversation_id == row.id


def test_json_sender_with_gzip_and_two_traces_one_conversation(airline: Engine) -> None:
    with serving(airline) as (base, _):
        for document in genai_latest():
            body = gzip.compress(json.dumps(document).encode())
            headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"}
            response = httpx.post(f"{base}/v1/traces", content=body, headers=headers)
            assert response.status_code == 200 and response.json() == {}
        # The first trace may close before the second arrives; it is then reopened.
        (row,) = wait_for(lambda: [r for r in stored(airline) if len(r.transcript) == 8])
    assert len(stored(airline)) == 1
    assert row.external_id == "conv-1" and row.escalated
    assert row.latency_ms == 600


def test_unknown_service_is_a_partial_success(airline: Engine) -> None:
    document = traces([span(9, 1, gen_ai__operation__name="chat")], service="nobody")
    with serving(airline) as (base, _):
        response = httpx.post(
            f"{base}/v1/traces", json=document, headers={**AUTH, "Content-Type": "application/json"}
        )
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == 1
    assert "not a registered agent" in response.json()["partialSuccess"]["errorMessage"]
    assert count(airline, OtlpItem) == 0


def _bomb() -> bytes:
    return gzip.compress(b"\0" * (40 * 2**20))


def _wide() -> bytes:
    attributes = {f"a{i}": i for i in range(10_000)}
    one = span(3, 1, gen_ai__operation__name="chat")
    one["attributes"] = attrs(attributes)
    return json.dumps(traces([one])).encode()


@pytest.mark.parametrize(
    ("headers", "body", "status", "logged"),
    [
        (
            {"Authorization": "Bearer wrong-token-000", "Content-Type": "application/json"},
            b"{}",
            401,
            "bearer token",
        ),
        ({"Authorization": "", "Content-Type": "application/json"}, b"{}", 401, "bearer token"),
        ({"Content-Type": "text/plain"}, b"{}", 415, "content type"),
        ({"Content-Type": "application/x-protobuf"}, b"\xff\xff\xff\xff", 400, "protobuf"),
        ({"Content-Type": "application/json"}, b"[1,", 400, "JSON"),
        ({"Content-Type": "application/json"}, b" " * (5 * 2**20), 413, "over"),
        (
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            _bomb(),
            413,
            "decompressed",
        ),
        ({"Content-Type": "application/json"}, _wide(), 200, "10000"),
    ],
    ids=[
        "wrong-token",
        "no-token",
        "content-type",
        "bad-protobuf",
        "bad-json",
        "oversized",
        "gzip-bomb",
        "10k-attributes",
    ],
)
def test_hostile_bodies(
    airline: Engine,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
    body: bytes,
    status: int,
    logged: str,
) -> None:
    sent = {"Authorization": AUTH["Authorization"], **headers}
    with serving(airline) as (base, _), caplog.at_level(logging.WARNING, "agentops.otlp"):
        response = httpx.post(f"{base}/v1/traces", content=body, headers=sent)
    assert response.status_code == status
    lines = [r for r in caplog.records if r.name == "agentops.otlp"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    if status == 200:
        assert response.json()["partialSuccess"]["rejectedSpans"] == 1
        assert "more than" in lines[0].getMessage()
    else:
        assert logged in lines[0].getMessage() or logged in response.text
    assert count(airline, OtlpItem) == 0 and count(airline, Conversation) == 0
    assert count(airline, OtlpConversation) == 0


def test_sdk_log_events_of_genai_1_36_over_v1_logs(airline: Engine) -> None:
    """Events (one log record per message) and their chat spans, both from the real SDK."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    # One export per record, on a busy machine: an idle window that outlasts sending.
    with serving(airline, otlp_idle_close_s=2.0) as (base, _):
        resource = Resource.create({"service.name": "airline-bot", "service.version": "v4"})
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs", headers=AUTH))
        )
        provider = sdk_provider(base, version="v4")
        tracer, logger = provider.get_tracer("agent"), logger_provider.get_logger("agent")
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "transfer_to_human_agents", "arguments": "{}"},
        }
        calls = [
            [
                ("gen_ai.user.message", {"content": "Get me a human"}),
                (
                    "gen_ai.choice",
                    {"index": 0, "message": {"role": "assistant", "tool_calls": [call]}},
                ),
            ],
            [
                ("gen_ai.user.message", {"content": "Get me a human"}),
                ("gen_ai.assistant.message", {"tool_calls": [call]}),
                ("gen_ai.tool.message", {"id": "c1", "content": "transferred"}),
                (
                    "gen_ai.choice",
                    {"index": 0, "message": {"role": "assistant", "content": "Hold on."}},
                ),
            ],
        ]
        with tracer.start_as_current_span("invoke_agent") as agent_span:
            agent_span.set_attribute("gen_ai.operation.name", "invoke_agent")
            for events in calls:
                with tracer.start_as_current_span("chat gpt") as chat:
                    chat.set_attribute("gen_ai.operation.name", "chat")
                    for name, body in events:
                        logger.emit(
                            event_name=name, body=body, attributes={"gen_ai.system": "openai"}
                        )
        logger_provider.shutdown()
        provider.shutdown()
        (row,) = wait_for(lambda: [r for r in stored(airline) if len(r.transcript) >= 4])
    assert [(m["role"], m.get("content")) for m in row.transcript] == [
        ("user", "Get me a human"),
        ("assistant", None),
        ("tool", "transferred"),
        ("assistant", "Hold on."),
    ]
    assert row.escalated and len(row.external_id) == 32  # no conversation id: the trace id


def test_a_saturated_receiver_answers_503_with_retry_after(airline: Engine) -> None:
    document = traces([span(9, 1, gen_ai__operation__name="chat")], service="airline-bot")
    with serving(airline) as (base, app):
        receiver = app.state.otlp
        receiver.slot_wait_s = 0.2
        taken = 0
        while receiver._slots.acquire(blocking=False):
            taken += 1
        try:
            response = httpx.post(
                f"{base}/v1/traces",
                json=document,
                headers={**AUTH, "Content-Type": "application/json"},
            )
        finally:
            for _ in range(taken):
                receiver._slots.release()
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert count(airline, OtlpItem) == 0
        again = httpx.post(
            f"{base}/v1/traces", json=document, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert again.status_code == 200 and count(airline, OtlpItem) == 1
