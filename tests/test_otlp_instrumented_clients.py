"""The real openai client, instrumented by the OpenTelemetry and the OpenInference
instrumentations, talks to a fake OpenAI server; agentops serve receives the telemetry
and stores the same conversation from each."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.agents import service as agents
from agentops.conversations.service import conversation_json
from agentops.store.models import Conversation
from fake_openai import fake_openai, run_agent
from otlp_server import TOKEN, serving, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXPECTED = [
    ("user", "Cancel booking ABC123", []),
    ("assistant", None, [("cancel_reservation", {"reservation_id": "ABC123"})]),
    ("tool", '{"status": "cancelled"}', []),
    ("assistant", "Done, it is cancelled.", []),
    ("user", "Now get me a human", []),
    ("assistant", None, [("transfer_to_human_agents", {})]),
    ("tool", "transferred", []),
    ("assistant", "A colleague will take over.", []),
]


@pytest.fixture
def airline(engine: Engine) -> Engine:
    with Session(engine) as session:
        agents.register_agent(
            session, name="airline-bot", owner_email="o@x.io", backup_email="b@x.io", actor="t"
        )
        session.commit()
    return engine


def providers(base: str) -> tuple[TracerProvider, LoggerProvider]:
    resource = Resource.create({"service.name": "airline-bot", "service.version": "v8"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=AUTH))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs", headers=AUTH))
    )
    return tracer_provider, logger_provider


def shown(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.exec(select(Conversation)).all()
        return [conversation_json(row, agent="airline-bot", version="v8") for row in rows]


def whole(engine: Engine) -> list[dict[str, Any]]:
    found = shown(engine)
    return found if len(found) == 1 and len(found[0]["messages"]) == len(EXPECTED) else []


def view(conversation: dict[str, Any]) -> list[tuple[str, Any, list[tuple[str, Any]]]]:
    return [
        (
            m["role"],
            m["content"],
            [(c["name"], json.loads(c["arguments"])) for c in m["tool_calls"]],
        )
        for m in conversation["messages"]
    ]


def test_opentelemetry_openai_v2_instrumentation(
    airline: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    # Content capture on: the instrumentation writes gen_ai.input/output.messages on spans.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    with serving(airline, otlp_idle_close_s=1.0) as (base, _), fake_openai() as model_url:
        tracer_provider, logger_provider = providers(base)
        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument(
            tracer_provider=tracer_provider, logger_provider=logger_provider, skip_dep_check=True
        )
        try:
            client = openai.OpenAI(base_url=model_url, api_key="sk-fake-key-for-tests")
            tracer = tracer_provider.get_tracer("airline-agent")

            @contextmanager
            def turn() -> Iterator[None]:
                # The app names its conversation on the agent span of each user turn.
                with tracer.start_as_current_span("invoke_agent airline-bot") as span:
                    span.set_attribute("gen_ai.operation.name", "invoke_agent")
                    span.set_attribute("gen_ai.conversation.id", "conv-openai")
                    yield

            run_agent(client, turn)
        finally:
            instrumentor.uninstrument()
            tracer_provider.shutdown()
            logger_provider.shutdown()
        # Turns may close one by one on a busy machine: wait for the whole conversation.
        (conversation,) = wait_for(lambda: whole(airline))
    assert conversation["id"] == "conv-openai" and conversation["version"] == "v8"
    assert view(conversation) == EXPECTED


def test_openinference_openai_instrumentation(airline: Engine) -> None:
    from openinference.instrumentation import using_session
    from openinference.instrumentation.openai import OpenAIInstrumentor

    with serving(airline, otlp_idle_close_s=1.0) as (base, _), fake_openai() as model_url:
        tracer_provider, logger_provider = providers(base)
        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider, skip_dep_check=True)
        try:
            client = openai.OpenAI(base_url=model_url, api_key="sk-fake-key-for-tests")
            tracer = tracer_provider.get_tracer("airline-agent")

            @contextmanager
            def turn() -> Iterator[None]:
                with using_session("conv-openai"), tracer.start_as_current_span("agent") as span:
                    span.set_attribute("openinference.span.kind", "AGENT")
                    yield

            run_agent(client, turn)
        finally:
            instrumentor.uninstrument()
            tracer_provider.shutdown()
            logger_provider.shutdown()
        # Turns may close one by one on a busy machine: wait for the whole conversation.
        (conversation,) = wait_for(lambda: whole(airline))
    assert conversation["id"] == "conv-openai" and conversation["version"] == "v8"
    assert view(conversation) == EXPECTED
