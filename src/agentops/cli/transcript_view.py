"""Render an OpenAI-style chat transcript for a reviewer's terminal."""

import json
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.text import Text

ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "tool": "magenta", "system": "dim"}
TOOL_RESULT_CHARS = 300
SYSTEM_PROMPT_CHARS = 120


def render_transcript(messages: list[dict[str, Any]]) -> Group:
    """One line block per message: who spoke, what they said, which tools ran."""
    blocks: list[Text] = []
    for number, message in enumerate(messages, start=1):
        role = str(message.get("role", "?"))
        header = Text(f"{number:>3} {role:<9} ", style=ROLE_STYLES.get(role, "bold"))
        body = Text(_content_text(role, message.get("content")))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            body.append(
                f"\n    → {function.get('name', '?')}({_arguments(function.get('arguments'))})",
                style="yellow",
            )
        blocks.append(header + body)
    return Group(*blocks)


def _content_text(role: str, content: Any) -> str:
    if content is None:
        return ""
    text = content if isinstance(content, str) else json.dumps(content)
    limit = {"system": SYSTEM_PROMPT_CHARS, "tool": TOOL_RESULT_CHARS}.get(role)
    if limit and len(text) > limit:
        return f"{text[:limit].rstrip()} … ({len(text)} chars)"
    return text


def _arguments(arguments: Any) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    if isinstance(arguments, dict):
        return ", ".join(f"{key}={json.dumps(value)}" for key, value in arguments.items())
    return json.dumps(arguments)


def transcript_panel(messages: list[dict[str, Any]], *, title: str) -> Panel:
    """The transcript framed with a title line."""
    return Panel(render_transcript(messages), title=title, title_align="left")
