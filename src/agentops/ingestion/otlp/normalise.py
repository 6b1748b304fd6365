"""Spans and log records (Items) grouped into conversations and turned into import records.

Pure domain: no I/O. Four attribute shapes are read, whichever an instrumentation emits:

- OpenTelemetry GenAI >= 1.37: `gen_ai.input.messages` / `gen_ai.output.messages` (JSON,
  messages made of `text`, `tool_call` and `tool_call_response` parts) on inference spans,
  and `execute_tool` spans;
- OpenTelemetry GenAI <= 1.36: one log record per message (`gen_ai.user.message`,
  `gen_ai.assistant.message`, `gen_ai.tool.message`, `gen_ai.system.message`,
  `gen_ai.choice`), tied to the inference span by its span id;
- OpenInference: `llm.input_messages.{i}.message.*` and `llm.output_messages.{i}.*`;
- OpenLLMetry: `gen_ai.prompt.{i}.*` and `gen_ai.completion.{i}.*`.

Every inference call re-sends the history before it, so the transcript is built by
appending to it what each call (in time order) adds beyond what is already there.
Content is opt-in everywhere: a message whose content was not captured keeps its role
and tool calls and carries CONTENT_NOT_CAPTURED instead.
"""

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from agentops.ingestion.otlp.model import LOG, SPAN, Item
from agentops.ingestion.transcripts import MAX_LATENCY_MS, RecordError

CONTENT_NOT_CAPTURED = "[content not captured]"
DEFAULT_CONVERSATION_KEYS = ("gen_ai.conversation.id", "session.id")
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
TOOL_OPERATION = "execute_tool"
INFERENCE_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
ROLE_ALIASES = {"developer": "system", "model": "assistant", "ai": "assistant", "human": "user"}
EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
_INDEXED = re.compile(r"(\d+)\.(.+)")


@dataclass(frozen=True, slots=True)
class Normalised:
    """One conversation built from items: the import record and who sent it."""

    key: str
    record: dict[str, Any]
    service_name: str | None
    items: int


def conversation_key(item: Item, keys: Iterable[str] = DEFAULT_CONVERSATION_KEYS) -> str | None:
    """The item's own conversation id (the first of `keys` it carries), or None."""
    for key in keys:
        value = item.attributes.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def group_items(
    items: Iterable[Item], *, keys: Iterable[str] = DEFAULT_CONVERSATION_KEYS
) -> dict[str, list[Item]]:
    """Items by conversation: a trace joins the conversation any of its items names.

    A trace naming none is a conversation of its own, keyed by its trace id; traces
    naming the same id (one per user turn, typically) are one conversation.
    """
    keys = tuple(keys)
    by_trace: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_trace[item.trace_id].append(item)
    groups: dict[str, list[Item]] = defaultdict(list)
    for trace_id, trace_items in by_trace.items():
        named = next(
            (k for item in trace_items if (k := conversation_key(item, keys)) is not None), None
        )
        groups[named or trace_id].extend(trace_items)
    return dict(groups)


def normalise(key: str, items: list[Item]) -> Normalised:
    """One conversation's items as a generic import record; RecordError if none is GenAI."""
    if not key:
        raise RecordError("log records with neither a trace id nor a conversation id")
    ordered = sorted(items, key=lambda item: item.start_ns)  # stable: arrival order breaks ties
    spans = [item for item in ordered if item.kind == SPAN]
    messages = _transcript(_calls(ordered))
    if not messages:
        messages = _from_tool_spans(spans)
    if not messages:
        raise RecordError(
            f"conversation {key!r}: no GenAI inference, agent or tool spans among "
            f"{len(items)} items"
        )
    for message in messages:
        if message.get("content") is None and not message.get("tool_calls"):
            message["content"] = CONTENT_NOT_CAPTURED
    record: dict[str, Any] = {"id": key, "messages": messages}
    starts = [item.start_ns for item in ordered if item.start_ns > 0]
    if starts:
        record["started_at"] = _iso(min(starts))
    latency = _latency_ms(spans)
    if latency is not None:
        record["latency_ms"] = latency
    version = _version(ordered)
    if version is not None:
        record["agent_version"] = version
    service = next(
        (
            str(item.resource["service.name"])
            for item in ordered
            if item.resource.get("service.name")
        ),
        None,
    )
    return Normalised(key=key, record=record, service_name=service, items=len(items))


def normalise_all(
    items: Iterable[Item], *, keys: Iterable[str] = DEFAULT_CONVERSATION_KEYS
) -> list[Normalised | tuple[str, RecordError]]:
    """Every conversation among the items, or (key, error) for one that cannot be built."""
    keys = tuple(keys)
    found: list[Normalised | tuple[str, RecordError]] = []
    for key, group in group_items(items, keys=keys).items():
        try:
            found.append(normalise(key, group))
        except RecordError as exc:
            found.append((key, exc))
    return found


# --- inference calls -------------------------------------------------------------------

_Message = dict[str, Any]


@dataclass(slots=True)
class _Call:
    start_ns: int
    inputs: list[_Message]
    outputs: list[_Message]


def _calls(ordered: list[Item]) -> list[_Call]:
    calls: list[_Call] = []
    events: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item in ordered:
        if item.kind == LOG:
            if item.name in EVENT_ROLES or item.name == CHOICE_EVENT:
                events[(item.trace_id, item.span_id)].append(item)
            continue
        found = _span_messages(item.attributes)
        if found is not None:
            calls.append(_Call(item.start_ns, *found))
    for records in events.values():
        calls.append(_Call(records[0].start_ns, *_event_messages(records)))
    calls.sort(key=lambda call: call.start_ns)
    return calls


def _span_messages(attributes: dict[str, Any]) -> tuple[list[_Message], list[_Message]] | None:
    if "gen_ai.input.messages" in attributes or "gen_ai.output.messages" in attributes:
        inputs = _system_instructions(attributes.get("gen_ai.system_instructions"))
        inputs += _parts_messages(attributes.get("gen_ai.input.messages"))
        return inputs, _parts_messages(attributes.get("gen_ai.output.messages"))[:1]
    if any(key.startswith(("llm.input_messages.", "llm.output_messages.")) for key in attributes):
        return (
            [_openinference(m) for m in _indexed(attributes, "llm.input_messages.")],
            [_openinference(m) for m in _indexed(attributes, "llm.output_messages.")][:1],
        )
    if any(key.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for key in attributes):
        return (
            [_openllmetry(m) for m in _indexed(attributes, "gen_ai.prompt.")],
            [
                _openllmetry(m, default_role="assistant")
                for m in _indexed(attributes, "gen_ai.completion.")
            ][:1],
        )
    return None


def _transcript(calls: list[_Call]) -> list[_Message]:
    transcript: list[_Message] = []
    for call in calls:
        shared = 0
        while (
            shared < len(transcript)
            and shared < len(call.inputs)
            and _same(transcript[shared], call.inputs[shared])
        ):
            shared += 1
        transcript.extend(call.inputs[shared:])
        transcript.extend(call.outputs)
    return transcript


def _same(a: _Message, b: _Message) -> bool:
    if a["role"] != b["role"] or _tool_names(a) != _tool_names(b):
        return False
    left, right = a.get("content"), b.get("content")
    return left is None or right is None or left == right


def _tool_names(message: _Message) -> list[str]:
    return [call["function"]["name"] for call in message.get("tool_calls") or []]


# --- OpenTelemetry GenAI >= 1.37: messages of parts, as JSON ---------------------------


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            # orjson, as the importer: strict (no NaN), so the messages need no re-check.
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def _system_instructions(value: Any) -> list[_Message]:
    parts = _json(value)
    if not isinstance(parts, list):
        return []
    text = _texts(parts)
    return [{"role": "system", "content": text}] if text is not None else []


def _parts_messages(value: Any) -> list[_Message]:
    # One pass over each message's parts: on a big import this is the hot loop.
    messages: list[_Message] = []
    found = _json(value)
    if not isinstance(found, list):
        return messages
    for entry in found:
        if type(entry) is not dict:
            continue
        role = entry.get("role")
        if role not in _PLAIN_ROLES:
            role = _role(role)
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        responses: list[_Message] = []
        for part in entry.get("parts") or ():
            if type(part) is not dict:
                continue
            kind = part.get("type")
            if kind == "text":
                content = part.get("content")
                if content is not None:
                    texts.append(content if type(content) is str else str(content))
            elif kind == "tool_call":
                if part.get("name"):
                    calls.append(_tool_call(part.get("id"), part["name"], part.get("arguments")))
            elif kind == "tool_call_response":
                # The conventions renamed `result` to `response`; both are in the field.
                result = part.get("response", part.get("result"))
                responses.append(_tool_message(part.get("id"), result))
        if responses:
            messages.extend(responses)
            continue
        message: _Message = {"role": role, "content": "\n".join(texts) if texts else None}
        if calls and role == "assistant":
            message["tool_calls"] = calls
        messages.append(message)
    return messages


_PLAIN_ROLES = frozenset({"system", "user", "assistant", "tool"})


def _texts(parts: list[Any]) -> str | None:
    texts = [
        str(part.get("content"))
        for part in parts
        if isinstance(part, dict) and part.get("type") == "text" and part.get("content") is not None
    ]
    return "\n".join(texts) if texts else None


# --- OpenTelemetry GenAI <= 1.36: one log record per message ---------------------------


def _event_messages(records: list[Item]) -> tuple[list[_Message], list[_Message]]:
    inputs: list[_Message] = []
    outputs: list[_Message] = []
    for record in records:
        body = record.body if isinstance(record.body, dict) else {}
        if record.name == CHOICE_EVENT:
            if outputs or int(body.get("index") or 0) != 0:
                continue
            message = body.get("message")
            found = message if isinstance(message, dict) else {}
            outputs.append(_event_message(_role(found.get("role") or "assistant"), found))
            continue
        role = EVENT_ROLES[record.name]
        if role == "tool":
            inputs.append(_tool_message(body.get("id"), body.get("content")))
        else:
            inputs.append(_event_message(role, body))
    return inputs, outputs


def _event_message(role: str, body: dict[str, Any]) -> _Message:
    message: _Message = {"role": role, "content": _content_text(body.get("content"))}
    calls = []
    for call in body.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and function.get("name"):
            calls.append(_tool_call(call.get("id"), function["name"], function.get("arguments")))
    if calls and role == "assistant":
        message["tool_calls"] = calls
    return message


# --- OpenInference and OpenLLMetry: one flat attribute per field -----------------------


def _indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    found: dict[int, dict[str, Any]] = defaultdict(dict)
    for key, value in attributes.items():
        if key.startswith(prefix):
            match = _INDEXED.fullmatch(key[len(prefix) :])
            if match:
                found[int(match[1])][match[2]] = value
    return [found[index] for index in sorted(found)]


def _nested(fields: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return _indexed(fields, prefix)


def _openinference(fields: dict[str, Any]) -> _Message:
    role = _role(fields.get("message.role"))
    content = fields.get("message.content")
    if content is None:
        texts = [
            str(part["message_content.text"])
            for part in _nested(fields, "message.contents.")
            if part.get("message_content.text") is not None
        ]
        content = "\n".join(texts) if texts else None
    if role == "tool":
        return _tool_message(fields.get("message.tool_call_id"), content)
    message: _Message = {"role": role, "content": _content_text(content)}
    calls = [
        _tool_call(
            call.get("tool_call.id"),
            call.get("tool_call.function.name"),
            call.get("tool_call.function.arguments"),
        )
        for call in _nested(fields, "message.tool_calls.")
        if call.get("tool_call.function.name")
    ]
    if calls and role == "assistant":
        message["tool_calls"] = calls
    return message


def _openllmetry(fields: dict[str, Any], *, default_role: str = "user") -> _Message:
    role = _role(fields.get("role") or default_role)
    content = fields.get("content")
    if role == "tool":
        return _tool_message(fields.get("tool_call_id"), content)
    message: _Message = {"role": role, "content": _content_text(content)}
    calls = [
        _tool_call(call.get("id"), call.get("name"), call.get("arguments"))
        for call in _nested(fields, "tool_calls.")
        if call.get("name")
    ]
    if calls and role == "assistant":
        message["tool_calls"] = calls
    return message


# --- tool spans, for when no inference call carries messages ---------------------------


def _is_tool_span(item: Item) -> bool:
    attributes = item.attributes
    return (
        attributes.get("gen_ai.operation.name") == TOOL_OPERATION
        or attributes.get("openinference.span.kind") == "TOOL"
    )


def _is_inference_span(item: Item) -> bool:
    attributes = item.attributes
    return (
        attributes.get("gen_ai.operation.name") in INFERENCE_OPERATIONS
        or attributes.get("openinference.span.kind") == "LLM"
        or attributes.get("llm.request.type") in {"chat", "completion"}
    )


def _from_tool_spans(spans: list[Item]) -> list[_Message]:
    """A skeleton from tool and inference spans alone, when no content was captured.

    Each trace (a user turn) gives a user message, its tool calls with their results,
    and the assistant's answer, all but the tool names marked as not captured.
    """
    turns: dict[str, list[Item]] = {}
    for span in spans:
        if _is_tool_span(span) or _is_inference_span(span):
            turns.setdefault(span.trace_id, []).append(span)
    messages: list[_Message] = []
    for turn in turns.values():
        messages.append({"role": "user", "content": None})
        for span in turn:
            if not _is_tool_span(span):
                continue
            attributes = span.attributes
            name = attributes.get("gen_ai.tool.name") or attributes.get("tool.name") or span.name
            arguments = attributes.get(
                "gen_ai.tool.call.arguments", attributes.get("tool.parameters")
            )
            call_id = attributes.get("gen_ai.tool.call.id")
            call = _tool_call(call_id, name, arguments)
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            messages.append(_tool_message(call_id, attributes.get("gen_ai.tool.call.result")))
        messages.append({"role": "assistant", "content": None})
    return messages


# --- shared pieces ---------------------------------------------------------------------


def _role(value: Any) -> str:
    role = str(value or "user").strip().lower()
    return ROLE_ALIASES.get(role, role)


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": str(name)}
    if arguments is not None:
        # Always a JSON string, as chat APIs send it, whichever shape carried an object.
        function["arguments"] = (
            json.dumps(arguments, ensure_ascii=False)
            if isinstance(arguments, dict | list)
            else _content_text(arguments)
        )
    call: dict[str, Any] = {"type": "function", "function": function}
    if call_id:
        call["id"] = str(call_id)
    return call


def _tool_message(call_id: Any, result: Any) -> _Message:
    message: _Message = {"role": "tool", "content": _content_text(result)}
    if call_id:
        message["tool_call_id"] = str(call_id)
    return message


def _content_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, dict) for part in value):
        texts = _texts(value)
        if texts is not None:
            return texts
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _latency_ms(spans: list[Item]) -> int | None:
    """Mean duration of the agent spans (one per user turn), in milliseconds."""
    durations = [
        span.end_ns - span.start_ns
        for span in spans
        if span.end_ns >= span.start_ns > 0
        and (
            span.attributes.get("gen_ai.operation.name") in AGENT_OPERATIONS
            or span.attributes.get("openinference.span.kind") == "AGENT"
        )
    ]
    if not durations:
        return None
    return min(round(sum(durations) / len(durations) / 1e6), MAX_LATENCY_MS)


def _version(ordered: list[Item]) -> str | None:
    for item in ordered:
        value = item.attributes.get("gen_ai.agent.version")
        if value not in (None, ""):
            return str(value)
    for item in ordered:
        value = item.resource.get("service.version")
        if value not in (None, ""):
            return str(value)
    return None


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()
