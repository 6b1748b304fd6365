"""The `agentops` command line: a thin edge over the domain services.

Every command lives in its own module, imported only when that command runs: a command
pays for its own imports (the store, Prefect, numpy, the web stack) and nobody else's, and
`agentops --help` lists them all from the table below without importing any.
"""

import gc
import importlib
import re
import sys
from dataclasses import dataclass
from typing import Any

import typer

# Typer 0.29 carries its own fork of click; its exceptions are the ones raised here.
from typer._click import Command, Context, HelpFormatter
from typer._click import exceptions as cli_errors
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandInfo, TyperInfo

from agentops.cli.output import USER_ERROR_EXIT, err_console, fail


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives and the line `agentops --help` shows for it."""

    module: str  # under agentops.cli
    attribute: str  # a typer.Typer (a command group) or a command function
    help: str  # the first paragraph of the command's own help (a test keeps them equal)


# In the order `agentops --help` lists them.
COMMANDS: dict[str, LazyCommand] = {
    "import": LazyCommand(
        "import_cmd",
        "import_file",
        "Import conversations; bad records are reported and the good ones kept.",
    ),
    "conversations": LazyCommand(
        "conversations_cmd", "app", "Stored conversations of an agent: list them, show one."
    ),
    "sample": LazyCommand(
        "runbook_cmd",
        "sample",
        "Draw a reproducible review sample from a window of stored conversations.",
    ),
    "coverage": LazyCommand(
        "coverage_cmd",
        "coverage_command",
        "Show which stretches of an agent's conversations were pulled, and the gaps between.",
    ),
    "evaluate": LazyCommand(
        "runbook_cmd",
        "evaluate",
        "Evaluate the live version on the registered triggers; a breach proposes a rollback.",
    ),
    "approve": LazyCommand(
        "actions_cmd",
        "approve",
        "Approve a proposed rollback or redeploy (owner, or backup after escalation).",
    ),
    "reject": LazyCommand("actions_cmd", "reject", "Reject a proposed action, with a reason."),
    "sweep": LazyCommand(
        "actions_cmd",
        "sweep",
        "Escalate, expire and reconcile actions from their stored deadlines (safe to repeat).",
    ),
    "fake-services": LazyCommand(
        "fake_services_cmd",
        "fake_services",
        "Serve a fake agent platform and deployer on 127.0.0.1 until stopped (Ctrl-C).",
    ),
    "serve": LazyCommand("serve_cmd", "serve", "Serve agentops over HTTP until stopped (Ctrl-C)."),
    "status": LazyCommand(
        "status_cmd",
        "status",
        "Check the store, the Slack outbox, Prefect and the last sweep; exit 1 when not ready.",
    ),
    "report": LazyCommand(
        "report_cmd",
        "report",
        "Write the manager report: incidents, time to detect, decide and roll back.",
    ),
    "demo": LazyCommand(
        "demo_cmd",
        "demo",
        "Run the whole runbook end to end on a local SQLite store, no tokens needed.",
    ),
    "agents": LazyCommand(
        "agents_cmd", "app", "Register agents, name their owners and see their versions."
    ),
    "review": LazyCommand(
        "review_cmd", "app", "Claim sampled conversations and record verdicts per rubric criterion."
    ),
    "rubric": LazyCommand(
        "review_cmd", "rubric_app", "The versioned policy rubric reviewers judge against."
    ),
    "triggers": LazyCommand(
        "triggers_cmd", "app", "Rollback triggers, written down before launch."
    ),
    "checks": LazyCommand(
        "checks_cmd", "app", "Policy checks run on every conversation, certified against reviews."
    ),
    "actions": LazyCommand(
        "actions_cmd", "app", "Proposed rollbacks and redeploys, and their approvals."
    ),
    "audit": LazyCommand(
        "audit_cmd", "app", "Read, seal, sign, export and verify the tamper-evident decision trail."
    ),
    "db": LazyCommand("db_cmd", "app", "Manage the store's schema."),
    "prefect": LazyCommand(
        "prefect_cmd", "app", "Prepare the Prefect server the deployments run on."
    ),
    "people": LazyCommand(
        "people_cmd",
        "app",
        "People who may sign in to the web pages, their roles and sign-in links.",
    ),
    "deployers": LazyCommand(
        "deployers_cmd", "app", "Which deployer serves each agent, and what it reads as live."
    ),
}


class LazyGroup(TyperGroup):
    """The top-level group: builds a command from its module on first use."""

    # True while the help page is drawn: commands are then listed from the table.
    _listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        """Every command's name, in the table's order."""
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """The named command, importing its module unless only its help line is wanted."""
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self._listing:
            return TyperCommand(name=cmd_name, help=entry.help)
        if cmd_name not in self.commands:
            self.commands[cmd_name] = self._build(cmd_name, entry)
        return self.commands[cmd_name]

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The help page, with the command list drawn from the table."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        """Typer's lookup, with "did you mean" drawn from every command, loaded or not."""
        try:
            return self._click_resolve_command(ctx, args)
        except cli_errors.UsageError as exc:
            if self.suggest_commands and args:
                from difflib import get_close_matches

                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    suggestions = ", ".join(f"{match!r}" for match in matches)
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise

    def _build(self, name: str, entry: LazyCommand) -> Command:
        # Import the command's module and build its command as add_typer/command would.
        module = importlib.import_module(f"agentops.cli.{entry.module}")
        target: Any = getattr(module, entry.attribute)
        if isinstance(target, typer.Typer):
            return typer.main.get_group_from_info(
                TyperInfo(target, name=name),
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=self.rich_markup_mode,
                suggest_commands=self.suggest_commands,
            )
        return typer.main.get_command_from_info(
            CommandInfo(name=name, cls=TyperCommand, callback=target),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode,
        )


def _no_options() -> None:
    # Typer builds a group only for an app with a callback or registered commands; the
    # commands here are registered lazily, so this empty callback makes `app` a group.
    pass


app = typer.Typer(
    cls=LazyGroup,
    callback=_no_options,
    help="Keep live AI agents healthy: review queues, written triggers, gated rollbacks, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on these arguments and return the exit code; usage errors are one line."""
    command = typer.main.get_command(app)
    arguments = sys.argv[1:] if argv is None else argv
    for number, argument in enumerate(arguments, start=1):
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:  # bytes the locale could not decode (surrogateescape)
            fail(f"argument {number} is not valid UTF-8 text")
            return USER_ERROR_EXIT
    try:
        result = command.main(args=arguments, prog_name="agentops", standalone_mode=False)
    except cli_errors.NoArgsIsHelpError as exc:
        exc.show()
        return USER_ERROR_EXIT
    except cli_errors.UsageError as exc:
        where = f" ({exc.ctx.command_path})" if exc.ctx is not None else ""
        fail(f"{exc.format_message()}{where}; see --help")
        return USER_ERROR_EXIT
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except cli_errors.ClickException as exc:
        fail(exc.format_message())
        return exc.exit_code
    except Exception as exc:
        # Settings are read on first use, inside any command: a bad value is one line.
        problem = _settings_problem(exc)
        if problem is None:
            raise
        fail(f"invalid setting: {problem}")
        return USER_ERROR_EXIT
    return result if isinstance(result, int) else 0


def _settings_problem(exc: Exception) -> str | None:
    """What is wrong with a setting, if this error is pydantic's about the settings."""
    if not type(exc).__module__.startswith(("pydantic_settings", "pydantic")):
        if isinstance(exc, RecursionError):  # settings JSON nested absurdly deep
            return "a setting's JSON is nested too deeply"
        return None
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        from agentops.cli.common import _settings_problem as validation_problem

        return validation_problem(exc)
    found = re.search(r'field "(\w+)"', str(exc))
    if found is None:
        return str(exc).splitlines()[0][:200]
    return f"AGENTOPS_{found.group(1).upper()} is not valid JSON"


def main() -> None:
    """Console-script entry point."""
    code = run()
    # The process ends here. Python's shutdown runs a full garbage collection over every
    # object the command loaded (SQLAlchemy, pydantic, the driver): up to a third of a
    # quick command's time. Frozen objects are exempt; exit handlers still run.
    gc.freeze()
    sys.exit(code)
