"""Decode OTLP protobuf export requests (traces or logs) into Items."""

from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agentops.ingestion.otlp.model import LOG, SPAN, Item
from agentops.ingestion.otlp.otlp_json import OtlpDecodeError


def decode_traces(body: bytes) -> list[Item]:
    """Items of a protobuf ExportTraceServiceRequest."""
    request = ExportTraceServiceRequest()
    _parse(request, body)
    items = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16:
                    raise OtlpDecodeError("a span's trace_id must be 16 bytes")
                items.append(
                    Item(
                        kind=SPAN,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        resource=resource,
                    )
                )
    return items


def decode_logs(body: bytes) -> list[Item]:
    """Items of a protobuf ExportLogsServiceRequest."""
    request = ExportLogsServiceRequest()
    _parse(request, body)
    items = []
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                attributes = _attributes(record.attributes)
                time_ns = record.time_unix_nano or record.observed_time_unix_nano
                items.append(
                    Item(
                        kind=LOG,
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        name=record.event_name or str(attributes.get("event.name") or ""),
                        start_ns=time_ns,
                        end_ns=time_ns,
                        attributes=attributes,
                        resource=resource,
                        body=_value(record.body) if record.HasField("body") else None,
                    )
                )
    return items


def _parse(request: Any, body: bytes) -> None:
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise OtlpDecodeError(f"not a valid OTLP protobuf request: {exc}") from None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _value(pair.value) for pair in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)
