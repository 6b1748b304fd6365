"""Where commands print: the safe consoles and one-line user errors (no store imports)."""

import typer

from agentops.cli.safe_text import SafeConsole, one_line, styled

console = SafeConsole()
err_console = SafeConsole(stderr=True)

USER_ERROR_EXIT = 2


def fail(message: str) -> typer.Exit:
    """Print a user-facing error on one line and return the exit to raise."""
    err_console.print(styled(("error:", "bold red"), " ", one_line(message)), soft_wrap=True)
    return typer.Exit(USER_ERROR_EXIT)


def warn(message: str) -> None:
    """Print a warning on stderr (the command goes on)."""
    err_console.print(styled(("warning:", "yellow"), " ", one_line(message)), soft_wrap=True)
