"""`agentops demo`: the whole runbook on a local SQLite store."""

import typer


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
