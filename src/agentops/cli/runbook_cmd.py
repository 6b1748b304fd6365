"""`agentops sample` and `agentops evaluate`: the scheduled steps, run once by hand."""

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table

from agentops import safe_yaml
from agentops.agents import service as agents
from agentops.cli.common import console, err_console, fail, store_session, user_errors
from agentops.cli.safe_text import styled
from agentops.reactions import evaluate_live_version
from agentops.review.rubric import rubric_for_agent
from agentops.sampling.plan import SamplePlan
from agentops.sampling.service import sample_agent_window
from agentops.store.models import Outcome
from agentops.textfiles import read_text_file

MAX_WINDOW_HOURS = 24 * 366
OUTCOME_STYLES = {Outcome.ok: "green", Outcome.breach: "bold red", Outcome.insufficient_data: "dim"}


@user_errors
def sample(
    agent: str = typer.Argument(..., help="Agent whose conversations to sample."),
    hours: float = typer.Option(
        1.0, min=0.01, max=MAX_WINDOW_HOURS, help="Window length, ending at --end."
    ),
    end: datetime | None = typer.Option(None, help="Window end (ISO 8601, UTC); default now."),
    seed: int = typer.Option(
        0, min=0, max=2**32 - 1, help="Seed: the same seed and window draw the same sample."
    ),
    margin: float = typer.Option(0.1, min=0.01, max=0.5, help="Margin of error for the size."),
    max_size: int | None = typer.Option(
        50, "--max", min=1, max=100_000, help="Cap per version and window."
    ),
    plan_file: Path | None = typer.Option(
        None, "--plan", help="A stratified sample plan (YAML file)."
    ),
    backfill: tuple[datetime, datetime] | None = typer.Option(
        None,
        "--backfill",
        metavar="FROM TO",
        help="Instead: re-pull FROM..TO (ISO 8601, UTC) from the platform; known ones are kept.",
    ),
) -> None:
    """Draw a reproducible review sample from a window of stored conversations."""
    if backfill is not None:
        from agentops.cli.coverage_cmd import backfill_period

        backfill_period(agent, start=backfill[0], end=backfill[1])
        return
    if not (math.isfinite(hours) and math.isfinite(margin)):
        raise fail("--hours and --margin must be finite numbers")
    plan = _load_plan(plan_file) if plan_file else None
    window_end = end or datetime.now(UTC)
    if window_end.tzinfo is None:
        window_end = window_end.replace(tzinfo=UTC)  # a bare timestamp means UTC here
    window_start = window_end - timedelta(hours=hours)
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        results = sample_agent_window(
            session,
            agent=target,
            rubric=rubric_for_agent(session, agent=target),
            window_start=window_start,
            window_end=window_end,
            seed=seed,
            margin=margin,
            max_size=max_size,
            plan=plan,
            actor="cli",
        )
        rows = [result.summary() for result in results]
    if not rows:
        raise fail(
            f"{agent} has no conversations between {window_start:%Y-%m-%d %H:%M} and "
            f"{window_end:%Y-%m-%d %H:%M} UTC: import or pull some, or widen --hours"
        )
    table = Table("version", "conversations in window", "newly queued")
    for row in rows:
        table.add_row(str(row["version"]), str(row["population"]), str(row["sampled"]))
    console.print(table)


def _load_plan(path: Path) -> SamplePlan:
    text = read_text_file(path, what="sample plan")
    try:
        data = safe_yaml.safe_load(text)
        return SamplePlan.model_validate(data or {})
    except yaml.YAMLError:
        raise fail(f"{path}: not valid YAML") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "plan"
        raise fail(f"{path}: {where}: {first['msg']}") from None


@user_errors
def evaluate(
    agent: str = typer.Argument(..., help="Agent to evaluate."),
    explain: bool = typer.Option(
        False, "--explain", help="Show each chart: value, threshold, change point, history."
    ),
) -> None:
    """Evaluate the live version on the registered triggers; a breach proposes a rollback."""
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        version, report = evaluate_live_version(session, agent=target, actor="cli")
        table = Table("trigger", "outcome", "evidence", title=f"{agent} {version.version}")
        for evaluation in report.evaluations:
            style = OUTCOME_STYLES[evaluation.outcome]
            table.add_row(
                evaluation.trigger_name,
                styled((evaluation.outcome.value, style)),
                str(evaluation.evidence.get("summary", "")),
            )
        action = report.proposed_action
        action_id = action.id if action else None
        not_proposed = report.not_proposed_reason
        known_good = report.marked_known_good
        breached = bool(report.breached)
        details = [(e.trigger_name, dict(e.evidence)) for e in report.evaluations]
    console.print(table)
    if explain:
        for name, evidence in details:
            _explain(name, evidence)
    if known_good:
        console.print(f"{version.version} passed every trigger and is now the last known good.")
    if action_id is not None:
        console.print(
            f"Rollback proposed as action {action_id}: the owner approves with "
            f"`agentops approve {action_id} --as EMAIL`, then `agentops actions run {action_id}`."
        )
    elif breached:
        err_console.print(
            styled(("breach, but no rollback was proposed: ", "bold red"), not_proposed or ""),
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _explain(name: str, evidence: dict[str, Any]) -> None:
    """Why a trigger said what it said: its charts and the statistic over time."""
    charts = evidence.get("charts")
    if not charts:
        return
    unit = evidence.get("unit", "observations")
    console.print()
    console.print(
        styled(
            (name, "bold"),
            f": {evidence.get('observations', 0)} {unit}, "
            f"{evidence.get('events', 0)} {evidence.get('events_word', 'events')}; "
            "highest chart over time (a full block is the threshold):",
        )
    )
    console.print(f"  {evidence.get('sparkline') or '(no data yet)'}", highlight=False)
    table = Table(
        "chart tuned to", "value / threshold (nats)", "change point", f"{unit} since",
        f"{evidence.get('events_word', 'events')} since", "ids since (first 5)",
    )
    for chart in charts:
        change = chart["change_point"]
        ids = chart["event_ids_since_change"]
        table.add_row(
            f"{chart['degraded_rate']:.1%}",
            f"{chart['value']:.2f} / {chart['threshold']:.2f}",
            f"#{change}" if change else "at zero",
            str(chart["since_change"]),
            str(chart["events_since_change"]),
            ", ".join(str(i) for i in ids[:5]) + (" …" if len(ids) > 5 else ""),
        )
    console.print(table)
    _explain_dependence(evidence.get("dependence"))


def _explain_dependence(dependence: dict[str, Any] | None) -> None:
    """The baseline's measured dispersion: is the independence the charts assume there?"""
    if not dependence:
        return
    source = dependence.get("source") or "no baseline"
    for period in ("hour", "day"):
        if period in dependence:
            console.print(f"  {source}, {dependence[period]['summary']}", highlight=False)
    if dependence.get("warning"):
        console.print(f"  warning: {dependence['warning']}", highlight=False)
