"""Turn one raw conversation record (tau-bench or generic shape) into a validated record."""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentops.signals.sentiment import message_text, score_texts

TRANSFER_TOOL = "transfer_to_human_agents"
# The store's latency_ms column is a 32-bit integer on PostgreSQL.
MAX_LATENCY_MS = 2**31 - 1
DEFAULT_ESCALATION_TOOLS: frozenset[str] = frozenset({TRANSFER_TOOL})
ROLES = ("system", "user", "assistant", "tool")
# The first tool call that changes state names what the customer came for.
INTENT_BY_TOOL_PREFIX: tuple[tuple[str, str], ...] = (
    ("book_", "booking"),
    ("cancel_", "cancellation"),
    ("update_", "change"),
    ("modify_", "change"),
)


class RecordError(ValueError):
    """A raw record cannot be imported; `reason` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """One validated conversation, ready to store (started_at, if any, aware and in UTC)."""

    external_id: str
    messages: list[dict[str, Any]]
    escalated: bool
    contained: bool
    sentiment: float
    started_at: datetime | None = None
    channel: str = "chat"
    intent: str | None = None
    latency_ms: int | None = None
    task_success: float | None = None
    agent_version: str | None = None


def parse_record(
    raw: object,
    *,
    escalation_tools: frozenset[str] = DEFAULT_ESCALATION_TOOLS,
    json_checked: bool = False,
) -> ConversationRecord:
    """Validate a raw tau-bench or generic record; raise RecordError with the reason.

    json_checked says the record came from a strict JSON parser (orjson), which refuses
    NaN and Infinity itself, so the messages need not be re-serialised to find them.
    """
    if not isinstance(raw, Mapping):
        raise RecordError(f"record must be a JSON object, not {_json_type(raw)}")
    fields = _tau_fields(raw) if "traj" in raw else _generic_fields(raw)
    messages, tool_names, user_texts = fields.pop("messages")
    if not json_checked:
        _check_strict_json(messages)
    escalated = any(name in escalation_tools for name in tool_names)
    intent = fields.pop("intent", None) or derive_intent(tool_names)
    return ConversationRecord(
        **fields,
        intent=intent,
        messages=messages,
        escalated=escalated,
        contained=not escalated,
        sentiment=score_texts(user_texts),
    )


def derive_intent(tool_names: list[str]) -> str | None:
    """Intent from the first state-changing tool call, or None when there is none."""
    for name in tool_names:
        for prefix, intent in INTENT_BY_TOOL_PREFIX:
            if name.startswith(prefix):
                return intent
    return None


def assistant_tool_names(messages: list[dict[str, Any]]) -> list[str]:
    """Names of the tools the assistant called, in order (messages already validated)."""
    return [
        call["function"]["name"]
        for message in messages
        if message["role"] == "assistant"
        for call in message.get("tool_calls") or []
    ]


def _tau_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("task_id", "trial"):
        if key not in raw:
            raise RecordError(f"tau-bench record is missing '{key}'")
        if not _is_id(raw[key]):
            raise RecordError(f"'{key}' must be a string or an integer")
        if isinstance(raw[key], str):
            _check_storable(raw[key], key=key)
    return {
        "external_id": f"tau-{raw['task_id']}-{raw['trial']}",
        "messages": _messages(raw["traj"], key="traj"),
        "task_success": _fraction(raw.get("reward"), key="reward"),
        "agent_version": _optional_text(raw, "agent_version"),
    }


def _generic_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    if "id" not in raw:
        raise RecordError("missing 'id'")
    if not _is_id(raw["id"]) or str(raw["id"]).strip() == "":
        raise RecordError("'id' must be a non-empty string")
    if "messages" not in raw:
        raise RecordError("missing 'messages'")
    external_id = str(raw["id"]).strip()
    _check_storable(external_id, key="id")
    return {
        "external_id": external_id,
        "messages": _messages(raw["messages"], key="messages"),
        "started_at": _started_at(raw.get("started_at")),
        "channel": _optional_text(raw, "channel") or "chat",
        "intent": _optional_text(raw, "intent"),
        "latency_ms": _latency(raw.get("latency_ms")),
        "task_success": _fraction(raw.get("task_success"), key="task_success"),
        "agent_version": _optional_text(raw, "agent_version"),
    }


_Messages = tuple[list[dict[str, Any]], list[str], list[str]]


def _messages(value: object, *, key: str) -> _Messages:
    """The checked messages, the tools the assistant called and what the user wrote.

    One pass over the messages does all three: at bulk-import rates this loop is the
    largest cost after parsing, so plain dicts (all parsed JSON) skip the slower Mapping
    check and the "message N" wording is only built for a message that fails.
    """
    if not isinstance(value, list):
        raise RecordError(f"'{key}' must be a list of chat messages, not {_json_type(value)}")
    if not value:
        raise RecordError(f"'{key}' is empty")
    plain = True
    tool_names: list[str] = []
    user_texts: list[str] = []
    for number, message in enumerate(value, start=1):
        if type(message) is not dict:
            if not isinstance(message, Mapping):
                raise RecordError(f"message {number} must be an object, not {_json_type(message)}")
            plain = False
        role = message.get("role", _ABSENT)
        if role is _ABSENT:
            raise RecordError(f"message {number} has no 'role'")
        if role not in ROLES:
            raise RecordError(
                f"message {number} has unknown role {role!r} (expected {', '.join(ROLES)})"
            )
        tool_calls = message.get("tool_calls")
        if tool_calls is not None:
            if role != "assistant":
                raise RecordError(
                    f"message {number} ({role}) has tool_calls; only assistant messages may"
                )
            _check_tool_calls(tool_calls, number=number, names=tool_names)
        content = message.get("content")
        if content is None:
            if not tool_calls:
                raise RecordError(
                    f"message {number} ({role}) has no content; "
                    "only assistant tool calls may omit it"
                )
        elif type(content) is str or isinstance(content, str | list):
            if role == "user":
                user_texts.append(content if type(content) is str else message_text(message))
        else:
            raise RecordError(
                f"message {number} content must be a string, not {_json_type(content)}"
            )
    # Parsed JSON is plain dicts already; other mappings become dicts to store.
    messages = value if plain else [dict(message) for message in value]
    return messages, tool_names, user_texts


_ABSENT = object()


def _check_strict_json(messages: list[dict[str, Any]]) -> None:
    # json.loads accepts NaN and Infinity, but they are not JSON: PostgreSQL's json type
    # refuses them (failing a whole import) while SQLite would store them silently. The
    # other stored fields are numbers checked against a finite range or integers.
    for number, message in enumerate(messages, start=1):
        try:
            json.dumps(message, allow_nan=False)
        except (TypeError, ValueError) as exc:
            found = _non_finite_number(message, path="")
            if found is None:
                raise RecordError(f"message {number} is not valid JSON: {exc}") from None
            token, path = found
            raise RecordError(
                f"message {number} contains {token} (at {path}), which is not valid JSON"
            ) from None


def _non_finite_number(value: object, *, path: str) -> tuple[str, str] | None:
    """The first NaN or infinity inside value, as (JSON-ish token, path), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        token = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return token, path
    if isinstance(value, Mapping):
        children = [(f"{path}.{key}" if path else str(key), item) for key, item in value.items()]
    elif isinstance(value, list | tuple):
        children = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    else:
        return None
    for child_path, child in children:
        found = _non_finite_number(child, path=child_path)
        if found is not None:
            return found
    return None


def _check_tool_calls(tool_calls: object, *, number: int, names: list[str]) -> None:
    where = f"message {number}"
    if not isinstance(tool_calls, list):
        raise RecordError(f"{where} tool_calls must be a list, not {_json_type(tool_calls)}")
    for index, call in enumerate(tool_calls):
        function = call.get("function") if _is_mapping(call) else None
        name = function.get("name") if _is_mapping(function) else None  # type: ignore[union-attr]
        if not isinstance(name, str) or not name.strip():
            raise RecordError(f"{where} tool_calls[{index}] has no function name")
        arguments = function.get("arguments")  # type: ignore[union-attr]
        if arguments is not None and not (isinstance(arguments, str) or _is_mapping(arguments)):
            raise RecordError(
                f"{where} tool_calls[{index}] arguments must be a JSON string or an object"
            )
        names.append(name)


def _is_mapping(value: object) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _started_at(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError("started_at must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordError(f"started_at {value!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        # Guessing a zone would silently shift every window computed from this record.
        raise RecordError(f"started_at {value!r} has no timezone; add 'Z' or an offset like +00:00")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the year 1 in UTC
        raise RecordError(f"started_at {value!r} is out of range") from None


def _latency(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError("latency_ms must be a non-negative integer")
    if value > MAX_LATENCY_MS:
        raise RecordError(f"latency_ms must be at most {MAX_LATENCY_MS}")
    return value


def _fraction(value: object, *, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise RecordError(f"{key} must be a number between 0 and 1")
    return float(value)


def _optional_text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{key} must be a string, not {_json_type(value)}")
    _check_storable(value, key=key)
    return value.strip() or None


def _check_storable(value: str, *, key: str) -> None:
    # PostgreSQL text refuses NUL, and no driver can encode a lone surrogate (which the
    # stdlib parser lets through): one such value would fail a whole batch of rows.
    if "\x00" in value:
        raise RecordError(f"{key} contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RecordError(f"{key} is not valid Unicode (a lone surrogate)") from None


def _is_id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
