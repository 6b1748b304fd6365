"""The normalised conversation a check reads, and what a check returns (pure)."""

import json
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

import orjson

QUOTE_CHARS = 160
_UNPARSED = object()


class Outcome(StrEnum):
    """What one check says about one conversation."""

    passed = "pass"
    flagged = "flag"
    not_applicable = "na"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a flag was raised: the message (turn, 1-based), the tool call and a short quote."""

    turn: int
    tool: str | None
    quote: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"turn": self.turn, "tool": self.tool, "quote": self.quote}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome; a flag carries its evidence (the first one found)."""

    outcome: Outcome
    evidence: Evidence | None = None

    @property
    def flagged(self) -> bool:
        """Whether the check flagged the conversation."""
        return self.outcome is Outcome.flagged


PASS = CheckResult(Outcome.passed)
NOT_APPLICABLE = CheckResult(Outcome.not_applicable)


def flag(turn: int, tool: str | None, quote: object) -> CheckResult:
    """A flag with its evidence, the quote shortened to QUOTE_CHARS."""
    text = quote if isinstance(quote, str) else json.dumps(quote, default=str)
    text = " ".join(text.split())
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 1] + "…"
    return CheckResult(Outcome.flagged, Evidence(turn, tool, text))


@dataclass(slots=True)
class ToolCall:
    """One tool call: the assistant turn that made it, its arguments and its result."""

    turn: int
    name: str
    raw_arguments: object
    call_id: str | None
    result: str | None = None
    result_turn: int | None = None
    _arguments: dict[str, Any] | None = None
    _parsed: Any = _UNPARSED

    @property
    def arguments(self) -> dict[str, Any]:
        """The arguments as a mapping ({} when they are not a JSON object)."""
        if self._arguments is None:
            value = self.raw_arguments
            if isinstance(value, str):
                try:
                    value = orjson.loads(value) if value.strip() else {}
                except orjson.JSONDecodeError:
                    value = {}
            self._arguments = dict(value) if isinstance(value, dict) else {}
        return self._arguments

    def result_json(self) -> Any:
        """The result parsed as JSON (once), or None when it is not JSON."""
        if self._parsed is _UNPARSED:
            try:
                self._parsed = orjson.loads(self.result) if self.result else None
            except orjson.JSONDecodeError:
                self._parsed = None
        return self._parsed


@dataclass(frozen=True, slots=True)
class Message:
    """One message: its turn (1-based position), role, text and the tool calls it made."""

    turn: int
    role: str
    text: str
    calls: tuple[ToolCall, ...] = ()


@dataclass
class Conversation:
    """A normalised conversation: messages in order and every tool call with its result."""

    messages: list[Message]
    calls: list[ToolCall] = field(default_factory=list)
    # What one check worked out that another may reuse (e.g. the flights a search showed).
    memo: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def results_by_tool(self) -> dict[str, list[ToolCall]]:
        """Calls grouped by tool name, in order."""
        grouped: dict[str, list[ToolCall]] = {}
        for call in self.calls:
            grouped.setdefault(call.name, []).append(call)
        return grouped

    def calls_before(self, turn: int, name: str) -> list[ToolCall]:
        """Calls of a tool made before the given turn, with their results."""
        return [call for call in self.results_by_tool.get(name, []) if call.turn < turn]

    def last_user_before(self, turn: int) -> Message | None:
        """The last user message before the given turn."""
        for message in reversed(self.messages[: turn - 1]):
            if message.role == "user":
                return message
        return None


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def normalise(messages: list[dict[str, Any]]) -> Conversation:
    """The conversation view of stored (or freshly parsed) chat messages."""
    out: list[Message] = []
    calls: list[ToolCall] = []
    by_id: dict[str, ToolCall] = {}
    pending: list[ToolCall] = []
    for turn, message in enumerate(messages, start=1):
        role = str(message.get("role", ""))
        text = _text(message.get("content"))
        made: list[ToolCall] = []
        if role == "assistant":
            for raw in message.get("tool_calls") or ():
                function = raw.get("function") or {}
                call = ToolCall(
                    turn=turn,
                    name=str(function.get("name", "")),
                    raw_arguments=function.get("arguments"),
                    call_id=raw.get("id"),
                )
                made.append(call)
                if call.call_id:
                    # tau-bench reuses call ids: the latest call with an id owns it.
                    by_id[call.call_id] = call
            calls.extend(made)
            pending.extend(made)
        elif role == "tool":
            owner = by_id.get(str(message.get("tool_call_id")))
            if owner is None or owner.result_turn is not None:
                owner = next((c for c in pending if c.result_turn is None), None)
            if owner is not None:
                owner.result = text
                owner.result_turn = turn
                pending = [c for c in pending if c.result_turn is None]
        out.append(Message(turn, role, text, tuple(made)))
    return Conversation(out, calls)
