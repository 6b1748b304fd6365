"""A chat transcript shaped for the review page: turns, tool calls and foldable results."""

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """A function the agent called, with its arguments pretty-printed."""

    name: str
    arguments: str


@dataclass(frozen=True)
class Turn:
    """One message: who spoke, what they said, the tools they called."""

    number: int
    role: str
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)

    @property
    def folds(self) -> bool:
        """Tool results and system prompts start folded away."""
        return self.role in {"tool", "system"}


def transcript_turns(messages: list[dict[str, Any]]) -> list[Turn]:
    """The stored OpenAI-style messages as display turns (Jinja escapes the text)."""
    turns = []
    for number, message in enumerate(messages, start=1):
        calls = [
            ToolCall(
                name=str((call.get("function") or {}).get("name", "?")),
                arguments=_pretty((call.get("function") or {}).get("arguments")),
            )
            for call in message.get("tool_calls") or []
        ]
        content = message.get("content")
        text = "" if content is None else content if isinstance(content, str) else _pretty(content)
        turns.append(
            Turn(number=number, role=str(message.get("role", "?")), text=text, tool_calls=calls)
        )
    return turns


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value  # type: ignore[no-any-return]
    return json.dumps(value, indent=2, ensure_ascii=False)
