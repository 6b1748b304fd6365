"""SIGKILL `agentops serve` between batches while the real exporter retries: nothing
acknowledged is lost, nothing is stored twice, and the conversation closes whole.

Slow by necessity (about 45 s on a shared two-core machine): it starts a real server
process twice, and the exporter's own backoff (1, 2, 4, 8 s) spans the restart.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from agentops.agents import service as agents
from agentops.store.models import Conversation, OtlpConversation, OtlpItem
from otlp_server import TOKEN, free_port, wait_for

AGENTOPS = Path(sys.executable).parent / "agentops"


@pytest.fixture
def database(engine: Engine) -> Engine:
    with Session(engine) as session:
        agents.register_agent(
            session, name="airline-bot", owner_email="o@x.io", backup_email="b@x.io", actor="t"
        )
        session.commit()
    return engine


class Server:
    """`agentops serve` in a process of its own."""

    def __init__(self, engine: Engine, port: int) -> None:
        self.port = port
        self.env = {
            **os.environ,
            "AGENTOPS_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "AGENTOPS_OTLP_TOKENS": f"ci={TOKEN}",
            "AGENTOPS_OTLP_IDLE_CLOSE_S": "2",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(AGENTOPS), "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._healthy, timeout=20)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def server(database: Engine) -> Iterator[Server]:
    running = Server(database, free_port())
    running.start()
    yield running
    running.stop()


def turn_spans(user: str, reply: str, history: list[dict[str, object]]) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "airline-bot", "service.version": "v2"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agent")
    history.append({"role": "user", "parts": [{"type": "text", "content": user}]})
    with tracer.start_as_current_span("invoke_agent") as agent_span:
        agent_span.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent_span.set_attribute("gen_ai.conversation.id", "conv-kill")
        with tracer.start_as_current_span("chat") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.input.messages", json.dumps(history))
            answer = {"role": "assistant", "parts": [{"type": "text", "content": reply}]}
            chat.set_attribute("gen_ai.output.messages", json.dumps([answer]))
    history.append(answer)
    return list(memory.get_finished_spans())


def test_kill_between_batches_loses_nothing_acknowledged(server: Server, database: Engine) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{server.port}/v1/traces",
        headers={"Authorization": f"Bearer {TOKEN}"},
        # Its backoff (1, 2, 4, 8, 16, 32 s) must outlast a restart on a busy machine.
        timeout=90,
    )
    history: list[dict[str, object]] = []
    first = turn_spans("Cancel booking ABC123", "Which flight?", history)
    second = turn_spans("UA 12", "Cancelled.", history)
    assert exporter.export(first) is SpanExportResult.SUCCESS

    server.kill()  # before the first turn could be closed: it is still open, in the store
    outcome: list[SpanExportResult] = []
    sender = threading.Thread(target=lambda: outcome.append(exporter.export(second)))
    sender.start()
    time.sleep(1.5)  # the exporter meets a refused connection and backs off
    server.start()
    sender.join(timeout=100)
    assert outcome == [SpanExportResult.SUCCESS]
    # A retry of a batch already acknowledged (its answer lost) stores nothing twice.
    assert exporter.export(first) is SpanExportResult.SUCCESS
    exporter.shutdown()

    def closed_whole() -> list[Conversation]:
        # The restarted server may close the first turn before the second comes in; the
        # second then reopens it, and the next close stores it whole.
        with Session(database) as session:
            rows = list(session.exec(select(Conversation)).all())
            staged = session.exec(select(OtlpConversation)).one()
        done = len(rows) == 1 and len(rows[0].transcript) == 4 and staged.state == "closed"
        return rows if done else []

    (row,) = wait_for(closed_whole, timeout=15)
    assert [m["content"] for m in row.transcript] == [
        "Cancel booking ABC123",
        "Which flight?",
        "UA 12",
        "Cancelled.",
    ]
    with Session(database) as session:
        assert session.exec(select(func.count()).select_from(OtlpItem)).one() == len(first) + len(
            second
        )
