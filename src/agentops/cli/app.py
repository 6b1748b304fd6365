"""The `agentops` command line: a thin edge over the domain services."""

import sys

import typer

# Typer 0.29 carries its own fork of click; its exceptions are the ones raised here.
from typer._click import exceptions as cli_errors

from agentops.cli import (
    actions_cmd,
    agents_cmd,
    audit_cmd,
    db_cmd,
    people_cmd,
    prefect_cmd,
    report_cmd,
    review_cmd,
    runbook_cmd,
    triggers_cmd,
)
from agentops.cli.common import USER_ERROR_EXIT, err_console, fail
from agentops.cli.fake_services_cmd import fake_services
from agentops.cli.import_cmd import import_file
from agentops.cli.serve_cmd import serve

app = typer.Typer(
    help="Keep live AI agents healthy: review queues, written triggers, gated rollbacks, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(agents_cmd.app, name="agents")
app.add_typer(review_cmd.app, name="review")
app.add_typer(review_cmd.rubric_app, name="rubric")
app.add_typer(triggers_cmd.app, name="triggers")
app.add_typer(actions_cmd.app, name="actions")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(db_cmd.app, name="db")
app.add_typer(prefect_cmd.app, name="prefect")
app.add_typer(people_cmd.app, name="people")
app.command("import")(import_file)
app.command("sample")(runbook_cmd.sample)
app.command("evaluate")(runbook_cmd.evaluate)
app.command("approve")(actions_cmd.approve)
app.command("reject")(actions_cmd.reject)
app.command("sweep")(actions_cmd.sweep)
app.command("fake-services")(fake_services)
app.command("serve")(serve)
app.command("report")(report_cmd.report)


@app.command("demo")
def demo(
    seed: int = typer.Option(
        7, min=0, max=2**32 - 1, help="Seed for traffic, sampling and reviewers."
    ),
    keep: bool = typer.Option(
        False, help="Keep the previous demo database instead of a fresh one."
    ),
) -> None:
    """Run the whole runbook end to end on a local SQLite store, no tokens needed."""
    from agentops.demo.runner import run_demo

    raise typer.Exit(run_demo(seed=seed, fresh=not keep))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on these arguments and return the exit code; usage errors are one line."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="agentops", standalone_mode=False)
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
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
