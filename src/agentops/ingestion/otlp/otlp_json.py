"""Decode OTLP/JSON export requests (traces or logs) into Items.

OTLP/JSON differs from protobuf's own JSON mapping: trace and span ids are hex, not
base64, and 64-bit integers may come as strings. Both are accepted here.
"""

import base64
import binascii
import math
from typing import Any

from agentops.ingestion.otlp.model import LOG, SPAN, Item


class OtlpDecodeError(ValueError):
    """A body is not an OTLP export request."""


def decode_request(document: object) -> list[Item]:
    """Items of an ExportTraceServiceRequest or ExportLogsServiceRequest in JSON form."""
    if not isinstance(document, dict):
        raise OtlpDecodeError("an OTLP/JSON request must be a JSON object")
    items: list[Item] = []
    for resource_spans in _list(document, "resourceSpans"):
        resource = attributes_of(_dict(resource_spans, "resource"))
        for scope_spans in _list(resource_spans, "scopeSpans"):
            for span in _list(scope_spans, "spans"):
                items.append(_span(span, resource))
    for resource_logs in _list(document, "resourceLogs"):
        resource = attributes_of(_dict(resource_logs, "resource"))
        for scope_logs in _list(resource_logs, "scopeLogs"):
            for record in _list(scope_logs, "logRecords"):
                items.append(_log(record, resource))
    return items


def count_items(document: object) -> int:
    """How many spans and log records a request holds, without decoding them."""
    if not isinstance(document, dict):
        return 0
    total = 0
    for key, scopes, entries in (
        ("resourceSpans", "scopeSpans", "spans"),
        ("resourceLogs", "scopeLogs", "logRecords"),
    ):
        for resource in _list(document, key):
            for scope in _list(resource, scopes):
                total += len(_list(scope, entries))
    return total


def _span(span: dict[str, Any], resource: dict[str, Any]) -> Item:
    if not isinstance(span, dict):
        raise OtlpDecodeError("a span must be an object")
    trace_id = _id(span.get("traceId"), 16, "traceId")
    if not trace_id:
        raise OtlpDecodeError("a span has no traceId")
    return Item(
        kind=SPAN,
        trace_id=trace_id,
        span_id=_id(span.get("spanId"), 8, "spanId"),
        parent_span_id=_id(span.get("parentSpanId"), 8, "parentSpanId"),
        name=str(span.get("name") or ""),
        start_ns=_int(span.get("startTimeUnixNano")),
        end_ns=_int(span.get("endTimeUnixNano")),
        attributes=attributes_of(span),
        resource=resource,
    )


def _log(record: dict[str, Any], resource: dict[str, Any]) -> Item:
    if not isinstance(record, dict):
        raise OtlpDecodeError("a log record must be an object")
    attributes = attributes_of(record)
    time_ns = _int(record.get("timeUnixNano")) or _int(record.get("observedTimeUnixNano"))
    body = record.get("body")
    return Item(
        kind=LOG,
        trace_id=_id(record.get("traceId"), 16, "traceId"),
        span_id=_id(record.get("spanId"), 8, "spanId"),
        name=str(record.get("eventName") or attributes.get("event.name") or ""),
        start_ns=time_ns,
        end_ns=time_ns,
        attributes=attributes,
        resource=resource,
        body=any_value(body) if isinstance(body, dict) else None,
    )


def attributes_of(holder: dict[str, Any]) -> dict[str, Any]:
    """The holder's `attributes` list as a dict of plain values."""
    found: dict[str, Any] = {}
    for pair in _list(holder, "attributes"):
        if isinstance(pair, dict) and isinstance(pair.get("key"), str):
            value = pair.get("value")
            found[pair["key"]] = any_value(value) if isinstance(value, dict) else None
    return found


def any_value(value: dict[str, Any]) -> Any:
    """An OTLP AnyValue in JSON form as a plain value."""
    for key, item in value.items():
        if key == "stringValue":
            return str(item)
        if key == "boolValue":
            return bool(item)
        if key == "intValue":
            return _int(item)
        if key == "doubleValue":
            number = float(item)
            # NaN and infinities are not JSON: kept as their text, never as numbers.
            return number if math.isfinite(number) else str(item)
        if key == "arrayValue":
            return [any_value(v) for v in _list(item, "values") if isinstance(v, dict)]
        if key == "kvlistValue":
            return {
                pair["key"]: any_value(pair.get("value") or {})
                for pair in _list(item, "values")
                if isinstance(pair, dict) and isinstance(pair.get("key"), str)
            }
        if key == "bytesValue":
            return str(item)
    return None


def _id(value: object, size: int, what: str) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise OtlpDecodeError(f"{what} must be a hex string")
    if len(value) == size * 2:
        try:
            bytes.fromhex(value)
        except ValueError:
            pass
        else:
            return value.lower()
    # protobuf's own JSON mapping writes ids in base64; accept it too.
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise OtlpDecodeError(f"{what} {value[:40]!r} is neither hex nor base64") from None
    if len(raw) != size:
        raise OtlpDecodeError(f"{what} must be {size} bytes")
    return raw.hex()


def _int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0


def _list(holder: object, key: str) -> list[Any]:
    value = holder.get(key) if isinstance(holder, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpDecodeError(f"'{key}' must be an array")
    return value


def _dict(holder: object, key: str) -> dict[str, Any]:
    value = holder.get(key) if isinstance(holder, dict) else None
    return value if isinstance(value, dict) else {}
