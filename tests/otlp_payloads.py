"""Build OTLP/JSON export requests for tests: ids in hex, integers as strings."""

import json
from typing import Any

BASE_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def value(v: Any) -> dict[str, Any]:
    """An OTLP/JSON AnyValue."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": value(x)} for k, x in v.items()]}}
    return {"stringValue": str(v)}


def attrs(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """OTLP/JSON attributes."""
    return [{"key": k, "value": value(v)} for k, v in mapping.items()]


def span(
    trace: int,
    span_id: int,
    *,
    name: str = "chat",
    start_ms: int = 0,
    duration_ms: int = 10,
    parent: int | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    """A span; attribute names use '__' for '.' (gen_ai__conversation__id)."""
    found = {k.replace("__", "."): v for k, v in attributes.items()}
    return {
        "traceId": f"{trace:032x}",
        "spanId": f"{span_id:016x}",
        **({"parentSpanId": f"{parent:016x}"} if parent else {}),
        "name": name,
        "startTimeUnixNano": str(BASE_NS + start_ms * 1_000_000),
        "endTimeUnixNano": str(BASE_NS + (start_ms + duration_ms) * 1_000_000),
        "attributes": attrs(found),
    }


def span_with(trace: int, span_id: int, attributes: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A span with attributes given as a dict of dotted names."""
    built = span(trace, span_id, **kw)
    built["attributes"] = attrs(attributes)
    return built


def log(trace: int, span_id: int, event: str, body: Any, *, at_ms: int = 0) -> dict[str, Any]:
    """A log record carrying a GenAI event."""
    return {
        "timeUnixNano": str(BASE_NS + at_ms * 1_000_000),
        "traceId": f"{trace:032x}",
        "spanId": f"{span_id:016x}",
        "eventName": event,
        "attributes": attrs({"gen_ai.system": "openai"}),
        **({"body": value(body)} if body is not None else {}),
    }


def resource(service: str = "airline-bot", version: str | None = None) -> dict[str, Any]:
    """A resource naming the service."""
    found = {"service.name": service}
    if version:
        found["service.version"] = version
    return {"attributes": attrs(found)}


def traces(spans: list[dict[str, Any]], **res: Any) -> dict[str, Any]:
    """An ExportTraceServiceRequest."""
    return {
        "resourceSpans": [
            {"resource": resource(**res), "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}
        ]
    }


def logs(records: list[dict[str, Any]], **res: Any) -> dict[str, Any]:
    """An ExportLogsServiceRequest."""
    return {
        "resourceLogs": [
            {
                "resource": resource(**res),
                "scopeLogs": [{"scope": {"name": "t"}, "logRecords": records}],
            }
        ]
    }


def parts_json(messages: list[dict[str, Any]]) -> str:
    """gen_ai.input.messages / gen_ai.output.messages as the conventions write them."""
    return json.dumps(messages)
