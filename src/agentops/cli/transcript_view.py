"""Render an OpenAI-style chat transcript for a reviewer's terminal."""

import json
from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agentops.cli.safe_text import printable

ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "tool": "magenta", "system": "dim"}
TOOL_RESULT_CHARS = 300
SYSTEM_PROMPT_CHARS = 120
TURN_CHARS = 1200


def render_transcript(
    messages: list[dict[str, Any]], *, full: bool = False, full_hint: str = "--full"
) -> Table:
    """One row per message: its number, who spoke, what they said and which tools ran.

    Long turns fold unless `full`; the fold names `full_hint`, the way to see them whole.
    """
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="dim")
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for number, message in enumerate(messages, start=1):
        role = str(message.get("role", "?"))
        body = Text(printable(_content_text(role, message.get("content"), full, full_hint)))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            if body.plain:
                body.append("\n")
            call_text = f"→ {function.get('name', '?')}({_arguments(function.get('arguments'))})"
            body.append(printable(call_text), style="yellow")
        grid.add_row(str(number), Text(printable(role), style=ROLE_STYLES.get(role, "bold")), body)
    return grid


def _content_text(role: str, content: Any, full: bool, full_hint: str) -> str:
    if content is None:
        return ""
    text = content if isinstance(content, str) else json.dumps(content)
    limit = {"system": SYSTEM_PROMPT_CHARS, "tool": TOOL_RESULT_CHARS}.get(role, TURN_CHARS)
    if not full and len(text) > limit:
        return f"{text[:limit].rstrip()} … ({len(text)} chars; whole: {full_hint})"
    return text


def _arguments(arguments: Any) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return arguments  # type: ignore[no-any-return]
    if isinstance(arguments, dict):
        return ", ".join(f"{key}={json.dumps(value)}" for key, value in arguments.items())
    return json.dumps(arguments)


def transcript_panel(
    messages: list[dict[str, Any]], *, title: str, full: bool = False, full_hint: str = "--full"
) -> Panel:
    """The transcript framed with a title line."""
    return Panel(
        render_transcript(messages, full=full, full_hint=full_hint),
        # Panel reads a str title as markup: hand it a Text instead.
        title=Text(printable(title)),
        title_align="left",
    )
