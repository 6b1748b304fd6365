"""Text from users and platforms, made safe for a terminal: no markup, no control codes."""

import re
from typing import Any

from rich.console import Console
from rich.text import Text

# Escape sequences first (so their parameters go too), then any lone control character.
_ESCAPE_SEQUENCES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)?")
# C0 (but tab and newline), DEL, C1, and the bidirectional overrides that reorder what is shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """The text with terminal escape sequences and control characters removed."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCES.sub("", text))


def one_line(text: str) -> str:
    """Printable text folded onto a single line."""
    return " ".join(printable(text).split())


class SafeConsole(Console):
    """A console that never reads markup from strings and strips control codes from them.

    Styling is applied with `style=` or Text objects, so a name or a transcript containing
    "[/]" or an escape sequence prints as the harmless text it is.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Every plain string printed, including table cells, passes through here."""
        kwargs["markup"] = False
        return super().render_str(printable(text), **kwargs)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Join plain and (text, style) parts into one Text, each part made printable."""
    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(printable(part[0]), style=part[1])
        else:
            text.append(printable(part))
    return text
