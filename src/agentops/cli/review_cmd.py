"""`agentops review …` and `agentops rubric …`: work the review queue."""

from pathlib import Path

import typer
from rich.table import Table
from sqlmodel import Session

from agentops.agents import service as agents
from agentops.cli.common import (
    acting_person,
    console,
    id_argument,
    store_session,
    user_errors,
)
from agentops.cli.transcript_view import transcript_panel
from agentops.errors import AgentOpsError
from agentops.review import service as review
from agentops.review.agreement import Interval
from agentops.review.queries import adherence_estimate, ageing_by_agent, agreement_report
from agentops.review.queue import AGEING_BUCKETS
from agentops.review.rubric import register_rubric
from agentops.review.rules import NotesRequired
from agentops.sampling.estimate import Estimate
from agentops.settings import get_settings
from agentops.store.models import utcnow
from agentops.textfiles import read_text_file

app = typer.Typer(help="Claim sampled conversations and record verdicts per rubric criterion.")
rubric_app = typer.Typer(help="The versioned policy rubric reviewers judge against.")


@rubric_app.command("add")
@user_errors
def add_rubric(file: Path = typer.Argument(..., help="Rubric YAML file.")) -> None:
    """Store a rubric version (identical content is a no-op)."""
    text = read_text_file(file, what="rubric file")
    with store_session() as session:
        rubric = register_rubric(session, text=text, source=str(file), actor="cli")
        name, version = rubric.name, rubric.version
    console.print(f"Rubric {name} v{version} is stored.")


@app.command("next")
@user_errors
def next_item(
    reviewer: str | None = typer.Option(None, "--as", help="Your email (or AGENTOPS_USER_EMAIL)."),
    agent: str | None = typer.Option(None, "--agent", help="Only this agent's queue."),
) -> None:
    """Claim the next open item and show its transcript and criteria."""
    with store_session(write=True) as session:
        actor = acting_person(session, reviewer)
        email = actor.label
        target = agents.get_agent(session, name=agent) if agent else None
        item = review.claim_next(
            session,
            reviewer=actor,
            agent=target,
            lease_minutes=get_settings().review_lease_minutes,
        )
        claimed = (item.id, item.lease_expires_at) if item is not None else None
    if claimed is None:
        console.print("The queue is empty: nothing to review.")
        return
    # Shown after the claim commits: SQLite's write lock is not held while printing.
    item_id, expires = claimed
    with store_session() as session:
        _print_item(session, item_id=item_id, full=False)  # type: ignore[arg-type]
    console.print(
        f"Claimed until {expires:%H:%M} UTC. Submit with: "
        f"agentops review submit {item_id} --as {email} "
        "[--fail CRITERION --note CRITERION=WHY …]"
    )


@app.command("show")
@user_errors
def show_item(
    item_id: int = id_argument("A review item."),
    full: bool = typer.Option(False, "--full", help="Show long turns whole instead of folded."),
) -> None:
    """Show an item's transcript and the rubric's criteria again."""
    with store_session() as session:
        _print_item(session, item_id=item_id, full=full)


def _print_item(session: Session, *, item_id: int, full: bool) -> None:
    details = review.item_details(session, item_id=item_id)
    console.print(
        transcript_panel(
            details.conversation.transcript,
            title=f"item {item_id} · conversation {details.conversation.external_id}",
            full=full,
            full_hint=f"agentops review show {item_id} --full",
        )
    )
    table = Table("criterion", "severity", "what to check")
    for criterion in details.criteria:
        table.add_row(criterion.key, criterion.severity.value, criterion.description)
    console.print(table)


@app.command("submit")
@user_errors
def submit(
    item_id: int = id_argument("The item you claimed."),
    reviewer: str | None = typer.Option(None, "--as", help="Your email (or AGENTOPS_USER_EMAIL)."),
    failed: list[str] = typer.Option(
        [], "--fail", help="A criterion the conversation failed; repeat for more. Others pass."
    ),
    notes: list[str] = typer.Option(
        [],
        "--note",
        help="CRITERION=WHY: the reason for a failed criterion (required for critical and "
        "major ones); repeat for more.",
    ),
    comment: str | None = typer.Option(None, "--comment", help="Free-text note for the trail."),
) -> None:
    """Record your verdict: every criterion passes unless named with --fail."""
    reasons = _parse_notes(notes)
    with store_session(write=True) as session:
        actor = acting_person(session, reviewer)
        details = review.item_details(session, item_id=item_id)
        keys = [criterion.key for criterion in details.criteria]
        # Unknown --fail names go through too, so the rubric check in submit_review reports them.
        findings = {key: key not in failed for key in keys} | dict.fromkeys(failed, False)
        try:
            result = review.submit_review(
                session,
                item_id=item_id,
                reviewer=actor,
                findings=findings,
                notes=reasons,
                comment=comment,
            )
        except NotesRequired as refused:
            example = refused.criteria[0]
            raise AgentOpsError(f"{refused}; say why with --note {example}=WHY") from None
        verdict = "policy violation" if result.violation else "no violation"
    console.print(f"Item {item_id} reviewed: {verdict} ({len(failed)} of {len(keys)} failed).")


def _parse_notes(raw: list[str]) -> dict[str, str]:
    """`--note KEY=TEXT` options as a mapping; a malformed one is a user error."""
    notes: dict[str, str] = {}
    for entry in raw:
        key, sep, text = entry.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise AgentOpsError(f"--note takes CRITERION=WHY, got {entry!r}")
        notes[key.strip()] = text.strip()
    return notes


@app.command("status")
@user_errors
def status(agent: str | None = typer.Option(None, "--agent", help="Only this agent.")) -> None:
    """Count open, claimed and reviewed items, and how overdue the unreviewed ones are."""
    with store_session() as session:
        target = agents.get_agent(session, name=agent) if agent else None
        counts = review.queue_counts(session, agent=target)
        ageing = ageing_by_agent(session, now=utcnow(), agent=target)
    table = Table("open", "claimed", "reviewed")
    table.add_row(*(str(counts.get(key, 0)) for key in ("open", "claimed", "reviewed")))
    console.print(table)
    if not ageing:
        return
    buckets = [label for label, _ in AGEING_BUCKETS]
    by_agent = Table("agent", *buckets, "overdue")
    for row in ageing:
        by_agent.add_row(row.agent, *(str(row.buckets[b]) for b in buckets), str(row.overdue))
    console.print(by_agent)


@app.command("estimate")
@user_errors
def estimate(
    agent: str = typer.Argument(..., help="Agent whose adherence to estimate."),
    version: str | None = typer.Option(None, "--version", help="Version (default: every one)."),
) -> None:
    """The weighted (Hájek) adherence rate with its 95% interval and n, per stratum too."""
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        versions = (
            [agents.get_version(session, agent=target, version=version)]
            if version
            else agents.list_versions(session, agent=target)
        )
        results = [(v.version, adherence_estimate(session, version=v)) for v in versions]
    table = Table("version", "stratum", "adherence", "95% interval", "n", "effective n")
    for label, result in results:
        for stratum, part in [("all", result), *result.strata.items()]:
            table.add_row(label, stratum, *_estimate_cells(part))
    console.print(table)


def _estimate_cells(result: Estimate) -> list[str]:
    if result.rate is None:
        return ["-", "-", "0", "-"]
    return [
        f"{result.rate:.1%}",
        f"{result.low:.1%} - {result.high:.1%}",
        str(result.n),
        f"{result.effective_n:.1f}",
    ]


@app.command("agreement")
@user_errors
def agreement(agent: str | None = typer.Option(None, "--agent", help="Only this agent.")) -> None:
    """How often blind second reviews agree: raw, Cohen's kappa, Gwet's AC1 (95% bootstrap)."""
    with store_session() as session:
        target = agents.get_agent(session, name=agent) if agent else None
        criteria, pairs = agreement_report(session, agent=target)
    if not criteria and not pairs:
        console.print("No item has a second review yet.")
        return
    table = Table("criterion / reviewer pair", "n", "raw agreement", "Cohen's kappa", "Gwet's AC1")
    for row in [*criteria, *pairs]:
        result = row.result
        table.add_row(
            row.label,
            str(result.n),
            _interval(result.raw),
            _interval(result.kappa),
            _interval(result.ac1),
        )
    console.print(table)


def _interval(value: Interval) -> str:
    if value.value is None:
        return "-"
    if value.low is None or value.high is None:
        return f"{value.value:.2f}"
    return f"{value.value:.2f} ({value.low:.2f} to {value.high:.2f})"


@app.command("dispute")
@user_errors
def dispute(
    item_id: int = id_argument("A reviewed item of your agent."),
    who: str | None = typer.Option(None, "--as", help="Your email (the agent's owner or backup)."),
    reason: str = typer.Option(..., "--reason", help="Why the verdict is wrong."),
) -> None:
    """Send a settled verdict to adjudication (the agent's owner or backup, within the window)."""
    with store_session() as session:
        actor = acting_person(session, who)
        review.dispute_verdict(session, item_id=item_id, actor=actor, reason=reason)
    console.print(f"Item {item_id} is disputed: it counts in no trigger until adjudicated.")
