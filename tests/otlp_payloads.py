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


# --- one conversation in each attribute shape -----------------------------------

ARGS = '{"reservation_id": "ABC123"}'
# The conversation every shape below encodes: two user turns, each with a tool call.
EXPECTED = [
    ("user", "Cancel booking ABC123", []),
    ("assistant", None, [("cancel_reservation", ARGS)]),
    ("tool", '{"status": "cancelled"}', []),
    ("assistant", "Done, it is cancelled.", []),
    ("user", "Now get me a human", []),
    ("assistant", None, [("transfer_to_human_agents", "{}")]),
    ("tool", "transferred", []),
    ("assistant", "A colleague will take over.", []),
]


def genai_latest(result_key: str = "response") -> list[dict[str, Any]]:
    def text(role: str, content: str) -> dict[str, Any]:
        return {"role": role, "parts": [{"type": "text", "content": content}]}

    def call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        part = {"type": "tool_call", "id": call_id, "name": name, "arguments": args}
        return {"role": "assistant", "parts": [part]}

    def result(call_id: str, value: Any, key: str) -> dict[str, Any]:
        return {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": call_id, key: value}],
        }

    turn1 = [
        text("user", "Cancel booking ABC123"),
        call("c1", "cancel_reservation", {"reservation_id": "ABC123"}),
        result("c1", {"status": "cancelled"}, result_key),
    ]
    turn2 = [
        *turn1,
        text("assistant", "Done, it is cancelled."),
        text("user", "Now get me a human"),
        call("c2", "transfer_to_human_agents", {}),
        result("c2", "transferred", "result"),
    ]
    conv = {"gen_ai.conversation.id": "conv-1"}
    return [
        traces(
            [
                span_with(
                    1,
                    1,
                    {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.version": "v7", **conv},
                    name="invoke_agent",
                    duration_ms=800,
                ),
                span_with(
                    1,
                    2,
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.input.messages": parts_json(turn1[:1]),
                        "gen_ai.output.messages": parts_json(turn1[1:2]),
                    },
                    start_ms=1,
                    parent=1,
                ),
                span_with(
                    1,
                    3,
                    {
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "cancel_reservation",
                    },
                    start_ms=2,
                    parent=1,
                ),
                span_with(
                    1,
                    4,
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.input.messages": parts_json(turn1),
                        "gen_ai.output.messages": parts_json(
                            [text("assistant", "Done, it is cancelled.")]
                        ),
                    },
                    start_ms=3,
                    parent=1,
                ),
            ],
            version="9.9",
        ),
        traces(
            [
                span_with(
                    2,
                    1,
                    {"gen_ai.operation.name": "invoke_agent", **conv},
                    name="invoke_agent",
                    start_ms=60_000,
                    duration_ms=400,
                ),
                span_with(
                    2,
                    2,
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.input.messages": parts_json(turn2[:5]),
                        "gen_ai.output.messages": parts_json(turn2[5:6]),
                    },
                    start_ms=60_001,
                    parent=1,
                ),
                span_with(
                    2,
                    3,
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.input.messages": parts_json(turn2),
                        "gen_ai.output.messages": parts_json(
                            [text("assistant", "A colleague will take over.")]
                        ),
                    },
                    start_ms=60_002,
                    parent=1,
                ),
            ]
        ),
    ]


def legacy_events(*, captured: bool = True) -> list[dict[str, Any]]:
    def c(body: dict[str, Any]) -> dict[str, Any]:
        return body if captured else {k: v for k, v in body.items() if k != "content"}

    def call(call_id: str, name: str, args: str) -> dict[str, Any]:
        function = {"name": name, **({"arguments": args} if captured else {})}
        return {"id": call_id, "type": "function", "function": function}

    user1 = ("gen_ai.user.message", c({"content": "Cancel booking ABC123"}))
    asst1 = ("gen_ai.assistant.message", {"tool_calls": [call("c1", "cancel_reservation", ARGS)]})
    tool1 = ("gen_ai.tool.message", c({"id": "c1", "content": '{"status": "cancelled"}'}))
    done1 = ("gen_ai.assistant.message", c({"content": "Done, it is cancelled."}))
    user2 = ("gen_ai.user.message", c({"content": "Now get me a human"}))
    asst2 = (
        "gen_ai.assistant.message",
        {"tool_calls": [call("c2", "transfer_to_human_agents", "{}")]},
    )
    tool2 = ("gen_ai.tool.message", c({"id": "c2", "content": "transferred"}))

    def choice(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": message})

    calls = [
        [user1, choice({"role": "assistant", "tool_calls": asst1[1]["tool_calls"]})],
        [
            user1,
            asst1,
            tool1,
            choice(c({"role": "assistant", "content": "Done, it is cancelled."})),
        ],
        [
            user1,
            asst1,
            tool1,
            done1,
            user2,
            choice({"role": "assistant", "tool_calls": asst2[1]["tool_calls"]}),
        ],
        [
            user1,
            asst1,
            tool1,
            done1,
            user2,
            asst2,
            tool2,
            choice(c({"role": "assistant", "content": "A colleague will take over."})),
        ],
    ]
    records = [
        log(7, n + 1, event, body, at_ms=n * 10)
        for n, events in enumerate(calls)
        for event, body in events
    ]
    spans = [span(7, n + 1, start_ms=n * 10, gen_ai__operation__name="chat") for n in range(4)]
    return [logs(records, version="v3"), traces(spans, version="v3")]


def openinference() -> list[dict[str, Any]]:
    def msgs(prefix: str, messages: list[tuple[str, Any, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for i, (role, content, extra) in enumerate(messages):
            found[f"{prefix}.{i}.message.role"] = role
            if content is not None:
                found[f"{prefix}.{i}.message.content"] = content
            if role == "tool":
                found[f"{prefix}.{i}.message.tool_call_id"] = extra
            elif extra:
                name, args = extra
                found[f"{prefix}.{i}.message.tool_calls.0.tool_call.id"] = "id-" + name
                found[f"{prefix}.{i}.message.tool_calls.0.tool_call.function.name"] = name
                found[f"{prefix}.{i}.message.tool_calls.0.tool_call.function.arguments"] = args
        return found

    history = [
        ("user", "Cancel booking ABC123", None),
        ("assistant", None, ("cancel_reservation", ARGS)),
        ("tool", '{"status": "cancelled"}', "id-cancel_reservation"),
        ("assistant", "Done, it is cancelled.", None),
        ("user", "Now get me a human", None),
        ("assistant", None, ("transfer_to_human_agents", "{}")),
        ("tool", "transferred", "id-transfer_to_human_agents"),
        ("assistant", "A colleague will take over.", None),
    ]
    session = {"session.id": "sess-9"}
    spans = []
    for n, (cut, out) in enumerate([(1, 1), (3, 3), (5, 5), (7, 7)]):
        trace = 20 + n // 2
        attributes = {
            "openinference.span.kind": "LLM",
            **session,
            **msgs("llm.input_messages", history[:cut]),
            **msgs("llm.output_messages", [history[out]]),
        }
        spans.append(span_with(trace, n + 2, attributes, start_ms=n * 1000))
    spans.append(
        span_with(
            20, 1, {"openinference.span.kind": "AGENT", **session}, start_ms=0, duration_ms=300
        )
    )
    return [traces(spans, version="oi-1")]


def openllmetry() -> list[dict[str, Any]]:
    history = [
        {"role": "user", "content": "Cancel booking ABC123"},
        {
            "role": "assistant",
            "tool_calls.0.name": "cancel_reservation",
            "tool_calls.0.arguments": ARGS,
            "tool_calls.0.id": "t1",
        },
        {"role": "tool", "content": '{"status": "cancelled"}', "tool_call_id": "t1"},
        {"role": "assistant", "content": "Done, it is cancelled."},
        {"role": "user", "content": "Now get me a human"},
        {
            "role": "assistant",
            "tool_calls.0.name": "transfer_to_human_agents",
            "tool_calls.0.arguments": "{}",
        },
        {"role": "tool", "content": "transferred"},
        {"role": "assistant", "content": "A colleague will take over."},
    ]
    spans = []
    for n, cut in enumerate([1, 3, 5, 7]):
        attributes: dict[str, Any] = {"llm.request.type": "chat"}
        for i, message in enumerate(history[:cut]):
            attributes.update({f"gen_ai.prompt.{i}.{k}": v for k, v in message.items()})
        attributes.update({f"gen_ai.completion.0.{k}": v for k, v in history[cut].items()})
        spans.append(span_with(30, n + 1, attributes, start_ms=n * 100))
    return [traces(spans, version="ol-2")]
