"""OTLP intake benchmark: the receiver fed by the real exporter, and `import --format otlp`.

Run with `python benchmarks/otlp_ingest.py [--quick] [--database sqlite|postgresql]`.

1. Receiver: `agentops serve` runs in a process of its own on a fresh, migrated store;
   this process makes spans with the OpenTelemetry SDK (GenAI >= 1.37 attributes, four
   spans a conversation: agent, two inference calls, one tool) and sends them with the
   real protobuf exporter behind a BatchSpanProcessor. It reports spans/s from the first
   span to the end of force_flush, the spans the store holds afterwards (none may be
   dropped), and the p50/p99 latency of the exporter's export calls. Target: at least
   2,000 spans/s, nothing dropped, p99 under 100 ms.
2. Import: the same generated tau-airline conversations written once as agentops JSON
   Lines and once as OTLP JSON Lines (as the Collector's file exporter writes them, 100
   conversations a line), each imported into a fresh store as `agentops import` does.
   Target: the OTLP import at two-thirds of the JSON Lines rate or better.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_data import generated_records, migrated_engine, percentile, scratch_database
from scale_ingest import AGENT, VERSION, _registered, import_file

TOKEN = "bench-token-0123456789"
CONVERSATIONS_PER_LINE = 100
AGENTOPS = Path(sys.executable).parent / "agentops"


# --- 1. the receiver -------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AGENTOPS_DATABASE_URL": url,
        "AGENTOPS_OTLP_TOKENS": f"bench={TOKEN}",
        "AGENTOPS_OTLP_IDLE_CLOSE_S": "3600",  # closing is not what is measured here
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
    }
    process = subprocess.Popen(
        [str(AGENTOPS), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("agentops serve did not start")


def receiver(kind: str, spans: int) -> dict[str, float]:
    """Spans/s, dropped spans and export latency percentiles for one store kind."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from sqlmodel import Session, func, select

    from agentops.store.models import OtlpItem

    latencies: list[float] = []

    class TimedExporter(OTLPSpanExporter):
        def export(self, batch: Any) -> Any:
            start = time.perf_counter()
            try:
                return super().export(batch)
            finally:
                latencies.append(time.perf_counter() - start)

    with scratch_database(kind) as url:
        engine = migrated_engine(url)
        _registered(engine)
        port = _free_port()
        server = _serve(url, port)
        try:
            provider = TracerProvider(
                resource=Resource.create({"service.name": AGENT, "service.version": VERSION})
            )
            exporter = TimedExporter(
                endpoint=f"http://127.0.0.1:{port}/v1/traces",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            )
            processor = BatchSpanProcessor(
                exporter,
                max_queue_size=spans + 1000,
                max_export_batch_size=512,
                schedule_delay_millis=50,
            )
            provider.add_span_processor(processor)
            tracer = provider.get_tracer("bench")
            start = time.perf_counter()
            for number in range(spans // 4):
                _conversation(tracer, number)
            provider.force_flush(timeout_millis=120_000)
            seconds = time.perf_counter() - start
            provider.shutdown()
            with Session(engine) as session:
                stored = session.exec(select(func.count()).select_from(OtlpItem)).one()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            engine.dispose()
    sent = (spans // 4) * 4
    return {
        "spans": sent,
        "spans_per_s": sent / seconds,
        "dropped": sent - stored,
        "exports": len(latencies),
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def _conversation(tracer: Any, number: int) -> None:
    user = {"role": "user", "parts": [{"type": "text", "content": f"Cancel booking {number}"}]}
    call = {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": "c1",
                "name": "cancel_reservation",
                "arguments": {"reservation_id": str(number)},
            },
        ],
    }
    result = {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "c1", "response": {"status": "cancelled"}}],
    }
    done = {"role": "assistant", "parts": [{"type": "text", "content": "Done, it is cancelled."}]}
    with tracer.start_as_current_span("invoke_agent") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.conversation.id", f"bench-{number}")
        with tracer.start_as_current_span("chat") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.input.messages", json.dumps([user]))
            chat.set_attribute("gen_ai.output.messages", json.dumps([call]))
        with tracer.start_as_current_span("execute_tool") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "cancel_reservation")
        with tracer.start_as_current_span("chat") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.input.messages", json.dumps([user, call, result]))
            chat.set_attribute("gen_ai.output.messages", json.dumps([done]))


# --- 2. import: OTLP JSON Lines against agentops JSON Lines ----------------------------


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, str):
        return {"stringValue": v}
    return {"intValue": str(v)}


def _parts(message: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if message["role"] == "tool":
        parts.append(
            {
                "type": "tool_call_response",
                "id": message.get("tool_call_id"),
                "response": message.get("content"),
            }
        )
        return {"role": "tool", "parts": parts}
    if message.get("content"):
        parts.append({"type": "text", "content": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call["function"]
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function["name"],
                "arguments": function.get("arguments"),
            }
        )
    return {"role": message["role"], "parts": parts}


def write_files(folder: Path, count: int) -> tuple[Path, Path]:
    """The same generated conversations as agentops JSON Lines and as OTLP JSON Lines."""
    from datetime import UTC, datetime, timedelta

    plain, otlp = folder / "plain.jsonl", folder / "otlp.jsonl"
    end = datetime.now(UTC) - timedelta(minutes=10)
    spans: list[dict[str, Any]] = []
    with plain.open("wb") as plain_out, otlp.open("wb") as otlp_out:
        for number, record in enumerate(generated_records(count, end=end)):
            plain_out.write(orjson.dumps(record) + b"\n")
            spans.append(_otlp_span(number, record))
            if len(spans) == CONVERSATIONS_PER_LINE:
                otlp_out.write(orjson.dumps(_request(spans)) + b"\n")
                spans = []
        if spans:
            otlp_out.write(orjson.dumps(_request(spans)) + b"\n")
    return plain, otlp


def _otlp_span(number: int, record: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime

    messages = [_parts(m) for m in record["messages"]]
    start_ns = int(datetime.fromisoformat(record["started_at"]).timestamp() * 1e9)
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.conversation.id": record["id"],
        "gen_ai.agent.version": VERSION,
        "gen_ai.input.messages": json.dumps(messages[:-1]),
        "gen_ai.output.messages": json.dumps(messages[-1:]),
    }
    return {
        "traceId": f"{number + 1:032x}",
        "spanId": f"{number + 1:016x}",
        "name": "chat",
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + record["latency_ms"] * 1_000_000),
        "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
    }


def _request(spans: list[dict[str, Any]]) -> dict[str, Any]:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": AGENT}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}


def import_otlp(kind: str, path: Path, workdir: Path) -> dict[str, float]:
    """Import the OTLP file into a fresh store as `agentops import --format otlp` does."""
    from agentops.ingestion.otlp.files import read_otlp_records

    return import_file(kind, path, workdir, parallel_parse=False, read=read_otlp_records)


def main() -> None:
    """Run both parts and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds not minutes")
    parser.add_argument(
        "--database",
        action="append",
        choices=("sqlite", "postgresql"),
        help="store kind(s) to measure (default: both)",
    )
    args = parser.parse_args()
    kinds = args.database or ["sqlite", "postgresql"]
    spans = 4_000 if args.quick else 40_000
    conversations = 2_000 if args.quick else 20_000
    for kind in kinds:
        found = receiver(kind, spans)
        verdict = (
            "met"
            if found["spans_per_s"] >= 2000 and not found["dropped"] and found["p99_ms"] < 100
            else "NOT met"
        )
        print(
            f"receiver {kind}: {found['spans']} spans at {found['spans_per_s']:,.0f} spans/s, "
            f"{found['dropped']} dropped, {found['exports']} exports, "
            f"p50 {found['p50_ms']:.1f} ms, p99 {found['p99_ms']:.1f} ms "
            f"(target >= 2,000 spans/s, none dropped, p99 < 100 ms: {verdict})"
        )
    with tempfile.TemporaryDirectory(prefix="agentops-otlp-bench-") as folder:
        plain, otlp = write_files(Path(folder), conversations)
        for kind in kinds:
            base = import_file(kind, plain, Path(folder))
            single = import_file(kind, plain, Path(folder), parallel_parse=False)
            mine = import_otlp(kind, otlp, Path(folder))
            base_rate = base["imported"] / base["seconds"]
            single_rate = single["imported"] / single["seconds"]
            rate = mine["imported"] / mine["seconds"]
            print(
                f"import {kind}: JSON Lines {base['imported']:,} at {base_rate:,.0f}/s "
                f"(one process: {single_rate:,.0f}/s), "
                f"OTLP {mine['imported']:,} at {rate:,.0f}/s = {rate / base_rate:.2f} of it, "
                f"{rate / single_rate:.2f} of one process "
                f"(target >= 0.67: {'met' if rate >= base_rate * 2 / 3 else 'NOT met'})"
            )


if __name__ == "__main__":
    main()
