"""The OTLP normaliser: one conversation from each attribute shape, content on and off."""

import json
from typing import Any

import pytest

from agentops.ingestion.otlp.normalise import CONTENT_NOT_CAPTURED, group_items, normalise_all
from agentops.ingestion.otlp.otlp_json import OtlpDecodeError, decode_request
from agentops.ingestion.transcripts import parse_record
from otlp_payloads import (
    EXPECTED,
    genai_latest,
    legacy_events,
    openinference,
    openllmetry,
    span,
    traces,
)


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
