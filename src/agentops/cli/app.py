"""The `agentops` command line: a thin edge over the domain services."""

import typer

from agentops.cli import (
    actions_cmd,
    agents_cmd,
    audit_cmd,
    db_cmd,
    report_cmd,
    review_cmd,
    runbook_cmd,
    triggers_cmd,
)
from agentops.cli.import_cmd import import_file

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
app.command("import")(import_file)
app.command("sample")(runbook_cmd.sample)
app.command("evaluate")(runbook_cmd.evaluate)
app.command("approve")(actions_cmd.approve)
app.command("reject")(actions_cmd.reject)
app.command("report")(report_cmd.report)


@app.command("demo")
def demo(
    seed: int = typer.Option(7, help="Seed for traffic, sampling and reviewers."),
    keep: bool = typer.Option(
        False, help="Keep the previous demo database instead of a fresh one."
    ),
) -> None:
    """Run the whole runbook end to end on a local SQLite store, no tokens needed."""
    from agentops.demo.runner import run_demo

    raise typer.Exit(run_demo(seed=seed, fresh=not keep))


def main() -> None:
    """Console-script entry point."""
    app()
