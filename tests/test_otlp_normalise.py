"""The OTLP normaliser: one conversation from each attribute shape, content on and off."""

import json
from typing import Any

import pytest

from agentops.ingestion.otlp.normalise import CONTENT_NOT_CAPTURED, group_items, normalise_all
from agentops.ingestion.otlp.otlp_json import OtlpDecodeError, decode_request
from agentops.ingestion.transcripts import parse_record
from otlp_payloads import log, logs, parts_json, span, span_with, traces

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


def view(messages: list[dict[str, Any]]) -> list[tuple[str, Any, list[tuple[str, Any]]]]:
    """(role, content, [(tool, arguments)]) per message."""
    return [
        (
            m["role"],
            m.get("content"),
            [
                (c["function"]["name"], c["function"].get("arguments"))
                for c in m.get("tool_calls") or []
            ],
        )
        for m in messages
    ]


def one(documents: list[dict[str, Any]]) -> dict[str, Any]:
    items = [item for document in documents for item in decode_request(document)]
    (found,) = normalise_all(items)
    assert not isinstance(found, tuple), found
    return found.record


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


@pytest.mark.parametrize(
    ("documents", "key", "version", "latency"),
    [
        (genai_latest("response"), "conv-1", "v7", 600),
        (genai_latest("result"), "conv-1", "v7", 600),
        (legacy_events(), f"{7:032x}", "v3", None),
        (openinference(), "sess-9", "oi-1", 300),
        (openllmetry(), f"{30:032x}", "ol-2", None),
    ],
    ids=[
        "genai-1.37-response",
        "genai-1.37-result",
        "genai-1.36-events",
        "openinference",
        "openllmetry",
    ],
)
def test_every_shape_gives_the_same_conversation(
    documents: list[dict[str, Any]], key: str, version: str, latency: int | None
) -> None:
    record = one(documents)
    assert record["id"] == key
    assert record["agent_version"] == version
    assert record.get("latency_ms") == latency
    assert record["started_at"] == "2026-01-01T00:00:00+00:00"
    got = view(record["messages"])
    assert got == _normalised_expected(got)
    parsed = parse_record(record)
    assert parsed.escalated and parsed.intent == "cancellation"


def _normalised_expected(got: list[Any]) -> list[Any]:
    # Arguments may arrive as an object (GenAI >= 1.37) or as a JSON string: compare parsed.
    expected = []
    for (role, content, calls), (_, _, got_calls) in zip(EXPECTED, got, strict=True):
        fixed = []
        for (name, args), (_, got_args) in zip(calls, got_calls, strict=True):
            fixed.append((name, got_args if _same_json(args, got_args) else args))
        expected.append((role, content, fixed))
    return expected


def _same_json(a: Any, b: Any) -> bool:
    load = lambda v: json.loads(v) if isinstance(v, str) else v  # noqa: E731
    return load(a) == load(b)


def test_content_not_captured_keeps_roles_and_tool_calls_with_a_marker() -> None:
    record = one(legacy_events(captured=False))
    got = view(record["messages"])
    assert [role for role, _, _ in got] == [role for role, _, _ in EXPECTED]
    assert [calls for _, _, calls in got] == [
        [(name, None) for name, _ in calls] for _, _, calls in EXPECTED
    ]
    assert got[0][1] == CONTENT_NOT_CAPTURED and got[2][1] == CONTENT_NOT_CAPTURED
    assert parse_record(record).escalated


def test_only_tool_spans_give_a_skeleton_with_the_calls() -> None:
    spans = [
        span(5, 1, name="invoke_agent", gen_ai__operation__name="invoke_agent", duration_ms=50),
        span(5, 2, start_ms=1, gen_ai__operation__name="chat"),
        span(
            5,
            3,
            start_ms=2,
            gen_ai__operation__name="execute_tool",
            gen_ai__tool__name="transfer_to_human_agents",
        ),
    ]
    record = one([traces(spans)])
    got = view(record["messages"])
    assert got == [
        ("user", CONTENT_NOT_CAPTURED, []),
        ("assistant", None, [("transfer_to_human_agents", None)]),
        ("tool", CONTENT_NOT_CAPTURED, []),
        ("assistant", CONTENT_NOT_CAPTURED, []),
    ]
    assert record["latency_ms"] == 50 and "agent_version" not in record
    assert parse_record(record).escalated


def test_traces_group_by_conversation_id_and_else_by_trace() -> None:
    items = decode_request(
        traces(
            [
                span(1, 1, gen_ai__conversation__id="a"),
                span(1, 2),
                span(2, 1, session__id="a"),
                span(3, 1),
            ]
        )
    )
    groups = group_items(items)
    assert sorted(groups) == [f"{3:032x}", "a"]
    assert len(groups["a"]) == 3


def test_a_trace_with_nothing_generative_is_a_rejection_not_a_crash() -> None:
    (found,) = normalise_all(decode_request(traces([span(4, 1, name="GET /")])))
    assert isinstance(found, tuple) and "no GenAI" in found[1].reason


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"resourceSpans": {}}, "must be an array"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}, "neither hex"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "00"}]}]}]}, "no traceId"),
    ],
)
def test_malformed_json_requests_are_decode_errors(document: object, message: str) -> None:
    with pytest.raises(OtlpDecodeError, match=message):
        decode_request(document)


def test_base64_ids_from_protobuf_json_mapping_are_read_as_hex() -> None:
    document = traces([span(1, 1)])
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = (
        "AAAAAAAAAAAAAAAAAAAAAQ=="
    )
    (item,) = decode_request(document)
    assert item.trace_id == f"{1:032x}"
