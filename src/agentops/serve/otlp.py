"""The OTLP/HTTP receiver in `agentops serve`: POST /v1/traces and /v1/logs.

A thin edge over ingestion.otlp: authenticate (a bearer token per source, compared in
constant time), bound the body (size, decompressed size, items, attributes), decode
protobuf or JSON, stage the items in the store and commit, and only then acknowledge.
A thread closes idle conversations. Answers follow the OTLP/HTTP specification: 200
with a partial success naming the rejected count, 400/401/413/415 for bodies that will
never be accepted, and 503 with Retry-After when the receiver or the store is busy.
"""

import hmac
import logging
import threading
import zlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from agentops.ingestion.otlp import config as otlp_config
from agentops.ingestion.otlp.intake import close_idle, store_items
from agentops.ingestion.otlp.model import Item
from agentops.ingestion.otlp.otlp_json import OtlpDecodeError, count_items, decode_request
from agentops.settings import Settings
from agentops.store.db import StoreBusy, write_session

log = logging.getLogger("agentops.otlp")
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER_S = 1
# Requests decoded and stored at once; more wait no longer than this before a 503.
CONCURRENT_REQUESTS = 4
SLOT_WAIT_S = 2.0
CLOSER_MAX_INTERVAL_S = 5.0
# google.rpc.Code values the specification asks for in the Status body.
INVALID_ARGUMENT, UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNAVAILABLE = 3, 16, 8, 14


class Refused(Exception):
    """A request answered with an error status; `message` goes to the sender and the log."""

    def __init__(self, status: int, message: str, *, code: int = INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Signal:
    """What differs between /v1/traces and /v1/logs."""

    path: str
    rejected_field: str  # in the partial success
    rejected_json: str


TRACES = Signal("/v1/traces", "rejected_spans", "rejectedSpans")
LOGS = Signal("/v1/logs", "rejected_log_records", "rejectedLogRecords")


class OtlpReceiver:
    """Receives, stores and acknowledges OTLP exports; closes idle conversations."""

    def __init__(self, *, engine: Engine, settings: Settings, tokens: dict[str, str]) -> None:
        self.engine = engine
        self.settings = settings
        self.tokens = [(source, token.encode()) for source, token in tokens.items()]
        self.keys = otlp_config.conversation_keys(settings.otlp_conversation_key)
        self.escalation = otlp_config.escalation_tools(settings.otlp_escalation_tools)
        self.idle = timedelta(seconds=settings.otlp_idle_close_s)
        self._slots = threading.BoundedSemaphore(CONCURRENT_REQUESTS)
        self.slot_wait_s = SLOT_WAIT_S
        self._stop = threading.Event()
        self._closer: threading.Thread | None = None

    # --- the endpoints -----------------------------------------------------------------

    async def traces(self, request: Request) -> Response:
        """POST /v1/traces."""
        return await self._handle(request, TRACES)

    async def logs(self, request: Request) -> Response:
        """POST /v1/logs."""
        return await self._handle(request, LOGS)

    async def _handle(self, request: Request, signal: Signal) -> Response:
        source = "?"
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            source = self._authenticate(request.headers.get("authorization", ""))
            if media not in (PROTOBUF, JSON):
                raise Refused(
                    415, f"content type {media or '(none)'!r} is not {PROTOBUF} or {JSON}"
                )
            body = await self._body(request)
            acquired = await run_in_threadpool(self._slots.acquire, True, self.slot_wait_s)
            if not acquired:
                raise Refused(503, "receiver busy", code=UNAVAILABLE)
            try:
                rejected, message = await run_in_threadpool(self._ingest, signal, media, body)
            finally:
                self._slots.release()
        except Refused as refused:
            log.warning(
                "otlp %s from %s refused (%d): %s",
                signal.path,
                source,
                refused.status,
                refused.message,
            )
            return self._status(refused, media)
        if rejected:
            log.warning("otlp %s from %s: %d rejected: %s", signal.path, source, rejected, message)
        return self._success(signal, media, rejected, message)

    def _authenticate(self, header: str) -> str:
        scheme, _, presented = header.partition(" ")
        given = presented.strip().encode() if scheme.lower() == "bearer" else b""
        matched = None
        # Every token is compared, in constant time, whichever matches.
        for source, token in self.tokens:
            if hmac.compare_digest(given, token) and given:
                matched = source
        if matched is None:
            raise Refused(401, "missing or wrong bearer token", code=UNAUTHENTICATED)
        return matched

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.otlp_max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise Refused(413, f"body of {declared} bytes is over {limit}", code=RESOURCE_EXHAUSTED)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refused(413, f"body is over {limit} bytes", code=RESOURCE_EXHAUSTED)
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return bytes(body)
        if encoding != "gzip":
            raise Refused(415, f"content encoding {encoding!r} is not gzip")
        return self._gunzip(bytes(body))

    def _gunzip(self, body: bytes) -> bytes:
        limit = self.settings.otlp_max_decompressed_bytes
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise Refused(400, f"not valid gzip: {exc}") from None
        if len(data) > limit or inflater.unconsumed_tail:
            raise Refused(413, f"decompressed body is over {limit} bytes", code=RESOURCE_EXHAUSTED)
        if not inflater.eof:
            raise Refused(400, "truncated gzip body")
        return data

    # --- decoding and storing (in a worker thread) -------------------------------------

    def _ingest(self, signal: Signal, media: str, body: bytes) -> tuple[int, str]:
        items = self._decode(signal, media, body)
        limit = self.settings.otlp_max_attributes
        kept = [item for item in items if _attribute_count(item) <= limit]
        too_wide = len(items) - len(kept)
        try:
            with write_session(self.engine) as session:
                result = store_items(
                    session, items=kept, agent_map=self.settings.otlp_agents, keys=self.keys
                )
        except (StoreBusy, OperationalError) as exc:
            raise Refused(503, f"store busy: {type(exc).__name__}", code=UNAVAILABLE) from None
        if too_wide:
            result.reject(too_wide, f"an item has more than {limit} attributes")
        return result.rejected, "; ".join(result.reasons)

    def _decode(self, signal: Signal, media: str, body: bytes) -> list[Item]:
        limit = self.settings.otlp_max_items
        try:
            if media == JSON:
                try:
                    document = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise OtlpDecodeError(f"not valid JSON: {exc}") from None
                if count_items(document) > limit:
                    raise Refused(413, f"more than {limit} items", code=RESOURCE_EXHAUSTED)
                items = decode_request(document)
            else:
                from agentops.ingestion.otlp import otlp_proto

                decode = otlp_proto.decode_traces if signal is TRACES else otlp_proto.decode_logs
                items = decode(body)
        except OtlpDecodeError as exc:
            raise Refused(400, str(exc)) from None
        if len(items) > limit:
            raise Refused(413, f"more than {limit} items", code=RESOURCE_EXHAUSTED)
        return items

    # --- answers -----------------------------------------------------------------------

    def _success(self, signal: Signal, media: str, rejected: int, message: str) -> Response:
        if media == JSON:
            found: dict[str, Any] = {}
            if rejected:
                found["partialSuccess"] = {signal.rejected_json: rejected, "errorMessage": message}
            return Response(orjson.dumps(found), media_type=JSON)
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        if signal is TRACES:
            answer: Any = trace_service_pb2.ExportTraceServiceResponse()
        else:
            answer = logs_service_pb2.ExportLogsServiceResponse()
        if rejected:
            setattr(answer.partial_success, signal.rejected_field, rejected)
            answer.partial_success.error_message = message
        return Response(answer.SerializeToString(), media_type=PROTOBUF)

    def _status(self, refused: Refused, media: str) -> Response:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if refused.status in (429, 503) else {}
        if media == PROTOBUF:
            body = _status_proto(refused.code, refused.message)
            return Response(body, status_code=refused.status, media_type=PROTOBUF, headers=headers)
        body = orjson.dumps({"code": refused.code, "message": refused.message})
        return Response(body, status_code=refused.status, media_type=JSON, headers=headers)

    # --- closing idle conversations ----------------------------------------------------

    def start(self) -> None:
        """Start the thread that closes idle conversations."""
        self._stop.clear()
        self._closer = threading.Thread(target=self._close_loop, name="agentops-otlp", daemon=True)
        self._closer.start()

    def stop(self) -> None:
        """Stop the closing thread."""
        self._stop.set()
        if self._closer is not None:
            self._closer.join(timeout=10)

    def close_now(self) -> Any:
        """One closing pass."""
        with write_session(self.engine) as session:
            return close_idle(
                session,
                idle=self.idle,
                escalation_tools=self.escalation,
                max_future_skew=timedelta(seconds=self.settings.max_future_skew_s),
            )

    def _close_loop(self) -> None:
        interval = min(CLOSER_MAX_INTERVAL_S, max(0.05, self.idle.total_seconds() / 4))
        while not self._stop.wait(interval):
            try:
                self.close_now()
            except Exception:  # keep closing later; the store may be busy or briefly down
                log.exception("otlp: closing idle conversations failed")


def _attribute_count(item: Item) -> int:
    return len(item.attributes)


def _status_proto(code: int, message: str) -> bytes:
    """A google.rpc.Status (code = 1, message = 2) in protobuf wire format."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def mount_otlp(app: FastAPI, *, settings: Settings, engine: Engine) -> None:
    """Add POST /v1/traces and /v1/logs when AGENTOPS_OTLP_TOKENS names at least one source."""
    secret = settings.otlp_tokens.get_secret_value() if settings.otlp_tokens else None
    tokens = otlp_config.parse_tokens(secret)
    if not tokens:
        app.state.otlp = None
        return
    # Loaded now, not on the first request, which would otherwise wait for protobuf.
    from agentops.ingestion.otlp import otlp_proto  # noqa: F401

    receiver = OtlpReceiver(engine=engine, settings=settings, tokens=tokens)
    app.state.otlp = receiver
    app.add_api_route("/v1/traces", receiver.traces, methods=["POST"], include_in_schema=False)
    app.add_api_route("/v1/logs", receiver.logs, methods=["POST"], include_in_schema=False)
    app.router.add_event_handler("startup", receiver.start)
    app.router.add_event_handler("shutdown", receiver.stop)
