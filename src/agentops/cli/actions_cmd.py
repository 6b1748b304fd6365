"""`agentops actions …`, `approve`, `reject` and `sweep`: the approval gate from a terminal."""

import typer
from rich.table import Table
from sqlmodel import Session

from agentops.actions import service as actions
from agentops.actions.decisions import DecisionOutcome, decide_and_wake
from agentops.actions.next_steps import ActionView, next_steps
from agentops.agents import service as agents
from agentops.bootstrap import resume_gate_run
from agentops.cli.common import (
    acting_person,
    console,
    err_console,
    fail,
    id_argument,
    store_session,
    user_errors,
    warn,
)
from agentops.cli.safe_text import styled
from agentops.orchestration import api_configured, flow_run_url
from agentops.settings import get_settings
from agentops.store.models import Action, ActionStatus, AgentVersion, Decision, Person
from agentops.store.refusals import refusal_kept

app = typer.Typer(help="Proposed rollbacks and redeploys, and their approvals.")


@app.command("list")
@user_errors
def list_actions(
    agent: str | None = typer.Option(None, "--agent", help="Only this agent."),
    status: ActionStatus | None = typer.Option(None, "--status", help="Only this status."),
) -> None:
    """List actions, newest first."""
    with store_session() as session:
        target = agents.get_agent(session, name=agent) if agent else None
        rows = actions.list_actions(session, agent=target, status=status)
        if not rows:
            console.print("No actions match.")
            return
        table = Table("id", "kind", "agent", "from → to", "status", "proposed by", "created (UTC)")
        for action in reversed(rows):
            table.add_row(
                str(action.id),
                action.kind.value,
                agents.agent_name(session, agent_id=action.agent_id),
                f"{_version(session, action.from_version_id)} → "
                f"{_version(session, action.to_version_id)}",
                action.status.value + (" (flagged)" if action.flag else ""),
                action.proposed_by,
                f"{action.created_at:%Y-%m-%d %H:%M}",
            )
        console.print(table)
    console.print("Details and what can happen next: `agentops actions show ID`.")


def _version(session: Session, version_id: int) -> str:
    version = session.get(AgentVersion, version_id)
    return version.version if version else "?"


@app.command("show")
@user_errors
def show(action_id: int = id_argument("Action id.")) -> None:
    """Show one action: reason, deadlines, decision, outcome and what can happen next."""
    with store_session() as session:
        action = actions.get_action(session, action_id=action_id)
        agent_name = agents.agent_name(session, agent_id=action.agent_id)
        console.print(
            styled(
                (f"action {action.id}", "bold"),
                f": {action.kind.value} of {agent_name} "
                f"{_version(session, action.from_version_id)} → "
                f"{_version(session, action.to_version_id)} ({action.status.value})",
            )
        )
        console.print(f"proposed by {action.proposed_by}: {action.reason}")
        for label, value in (
            ("owner deadline", action.owner_deadline),
            ("final deadline", action.final_deadline),
            ("escalated at", action.escalated_at),
            ("decided at", action.decided_at),
            ("executed at", action.executed_at),
        ):
            if value is not None:
                console.print(f"{label}: {value:%Y-%m-%d %H:%M:%S} UTC")
        approval = actions.get_approval(session, action_id=action_id)
        if approval is not None:
            approver = session.get(Person, approval.approver_id)
            console.print(
                f"decision: {approval.decision.value} by {approver.email if approver else '?'} "
                f"via {approval.channel}" + (f" ({approval.reason})" if approval.reason else "")
            )
        if action.outcome_detail:
            console.print(f"outcome: {action.outcome_detail}")
        if action.flag:
            console.print(styled(("flagged: ", "bold red"), action.flag))
        if action.flow_run_id:
            link = flow_run_url(action.flow_run_id)
            console.print(f"flow run: {action.flow_run_id}" + (f" ({link})" if link else ""))
        steps = next_steps(_view(session, action, agent_name))
    console.print(styled(("next:", "bold")))
    for step in steps:
        console.print(f"  - {step}")


def _view(session: Session, action: Action, agent_name: str) -> ActionView:
    agent = agents.get_agent(session, name=agent_name)
    owner = session.get(Person, agent.owner_id)
    backup = session.get(Person, agent.backup_id)
    assert owner is not None and backup is not None and action.id is not None
    return ActionView(
        action_id=action.id,
        status=action.status,
        agent=agent_name,
        owner_email=owner.email,
        backup_email=backup.email,
        owner_proposed=action.proposed_by_id == owner.id,
        owner_deadline=action.owner_deadline,
        final_deadline=action.final_deadline,
    )


@app.command("redeploy")
@user_errors
def propose_redeploy(
    agent: str = typer.Argument(..., help="Agent name."),
    version: str = typer.Argument(..., help="The fixed version to put live."),
    proposer: str | None = typer.Option(None, "--as", help="Your email (or AGENTOPS_USER_EMAIL)."),
    reason: str = typer.Option(..., "--reason", help="Why this version is fixed."),
) -> None:
    """Propose putting a fixed version live; an approver other than you must approve it."""
    with store_session() as session:
        actor = acting_person(session, proposer)
        target = agents.get_agent(session, name=agent)
        fixed = agents.get_version(session, agent=target, version=version)
        action = actions.propose_redeploy(
            session, agent=target, version=fixed, actor=actor, reason=reason
        )
        action_id = action.id
    console.print(
        f"Redeploy proposed as action {action_id}. "
        f"Open its approval window with `agentops actions request {action_id}`."
    )


@app.command("request")
@user_errors
def request_approval(action_id: int = id_argument("A proposed action.")) -> None:
    """Open the approval window: deadlines are stored, and `agentops sweep` enforces them."""
    settings = get_settings()
    with store_session() as session:
        action = actions.open_approval(
            session,
            action_id=action_id,
            flow_run_id=None,
            owner_timeout_s=settings.owner_approval_timeout_s,
            backup_timeout_s=settings.backup_approval_timeout_s,
        )
        status = action.status
        steps = next_steps(
            _view(session, action, agents.agent_name(session, agent_id=action.agent_id))
        )
    console.print(f"Action {action_id} is {status.value}.")
    for step in steps:
        console.print(f"  - {step}")


@app.command("cancel")
@user_errors
def cancel(
    action_id: int = id_argument("An action that has not started executing."),
    who: str | None = typer.Option(None, "--as", help="Your email (or AGENTOPS_USER_EMAIL)."),
    reason: str = typer.Option(..., "--reason", help="Why it is called off."),
) -> None:
    """Call off an undecided or approved action (its owner, backup or an admin)."""
    with store_session() as session:
        actor = acting_person(session, who)
        with refusal_kept(session, actions.ApprovalRefused):
            actions.cancel_action(session, action_id=action_id, actor=actor, reason=reason)
    console.print(f"Action {action_id} cancelled. A new proposal for the agent is now possible.")


@app.command("run")
@user_errors
def run_action(
    action_id: int = id_argument("An approved action."),
    deployer_url: str | None = typer.Option(
        None, help="Deployer base URL (default AGENTOPS_DEPLOYER_URL)."
    ),
) -> None:
    """Execute an approved action now: deploy, verify health, record what is live."""
    from agentops.actions.executor import execute_approved
    from agentops.bootstrap import make_deployer
    from agentops.store.db import engine_scope
    from agentops.store.migrate import ensure_schema

    settings = get_settings()
    deployer = make_deployer(settings, url=deployer_url)
    if deployer is None:
        raise fail("no deployer configured: set AGENTOPS_DEPLOYER_URL or pass --deployer-url")
    with engine_scope() as engine, deployer:
        ensure_schema(engine)
        with err_console.status(f"deploying action {action_id}…"):
            action = execute_approved(
                engine,
                action_id=action_id,
                deployer=deployer,
                health_timeout_s=settings.health_timeout_s,
            )
    console.print(f"Action {action_id} {action.status.value}: {action.outcome_detail or ''}")
    if action.status != ActionStatus.succeeded:
        raise typer.Exit(1)


@user_errors
def sweep(
    deployer_url: str | None = typer.Option(
        None, help="Deployer to reconcile stuck executions with (default AGENTOPS_DEPLOYER_URL)."
    ),
) -> None:
    """Escalate, expire and reconcile actions from their stored deadlines (safe to repeat)."""
    from agentops.bootstrap import sweep_with_settings
    from agentops.store.db import engine_scope
    from agentops.store.migrate import ensure_schema

    with engine_scope() as engine:
        ensure_schema(engine)
        report = sweep_with_settings(engine, deployer_url=deployer_url)
    for label, ids in (("escalated", report.escalated), ("expired", report.expired)):
        if ids:
            console.print(f"{label}: " + ", ".join(f"action {n}" for n in ids))
    for action_id, outcome in report.executed.items():
        console.print(f"ran approved action {action_id} left behind: {outcome}")
    for action_id, status in report.reconciled.items():
        console.print(f"reconciled with the deployer: action {action_id} is {status}")
    for agent, version in report.followed.items():
        console.print(f"{agent}: the store now follows the deployer, {version} is live")
    for action_id, why in report.unsettled.items():
        warn(f"action {action_id} is still executing: {why}")
    for action_id in report.approved_not_run:
        console.print(f"approved, not run yet: `agentops actions run {action_id}`")
    if not (report.changed or report.unsettled or report.approved_not_run):
        console.print("Nothing due.")


def _decide(action_id: int, email: str | None, decision: Decision, reason: str | None) -> None:
    from agentops.store.db import engine_scope
    from agentops.store.migrate import ensure_schema

    with engine_scope() as engine:
        ensure_schema(engine)
        with Session(engine) as session:
            actor = acting_person(session, email)
        outcome = decide_and_wake(
            engine,
            action_id=action_id,
            actor=actor,
            decision=decision,
            reason=reason,
            waker=_CliWaker(actor.label),
        )
    if not outcome.newly_recorded:
        console.print(f"Action {action_id} was already {decision.value}d; counted once.")


class _CliWaker:
    """Report the decision, then wake the gate run waiting on it (if any)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def wake(self, outcome: DecisionOutcome) -> None:
        n = outcome.action_id
        console.print(f"Action {n}: {outcome.decision.value} recorded for {self.label}.")
        if outcome.flow_run_id:
            _wake_flow_run(outcome.flow_run_id, n)
        elif outcome.decision == Decision.approve:
            console.print(f"Deploy it with `agentops actions run {n}`.")


def _wake_flow_run(flow_run_id: str, action_id: int) -> None:
    # The decision is already committed: the scheduled sweep-actions flow wakes the run
    # too, so only try the Prefect API when one is configured (never a temporary server).
    if not api_configured():
        console.print(
            f"Flow run {flow_run_id} waiting on it is woken by the next sweep-actions run "
            "(every minute when deployed)."
        )
        return
    try:
        resumed = resume_gate_run(flow_run_id=flow_run_id, action_id=action_id)
    except Exception as exc:  # any Prefect/HTTP failure: report it, the store is already right
        resumed = False
        warn(f"Prefect could not be reached: {exc.__class__.__name__}")
    if resumed:
        console.print(f"The waiting flow run {flow_run_id} has been resumed.")
        return
    warn(
        f"flow run {flow_run_id} was not resumed from here; the decision is recorded and the "
        "next sweep-actions run wakes the waiting run"
    )


@user_errors
def approve(
    action_id: int = id_argument("Action to approve."),
    approver: str | None = typer.Option(None, "--as", help="Your email (or AGENTOPS_USER_EMAIL)."),
    reason: str | None = typer.Option(None, "--reason", help="Optional note for the trail."),
) -> None:
    """Approve a proposed rollback or redeploy (owner, or backup after escalation)."""
    _decide(action_id, approver, Decision.approve, reason)


@user_errors
def reject(
    action_id: int = id_argument("Action to reject."),
    approver: str | None = typer.Option(None, "--as", help="Your email (or AGENTOPS_USER_EMAIL)."),
    reason: str = typer.Option(..., "--reason", help="Why: required for a rejection."),
) -> None:
    """Reject a proposed action, with a reason."""
    _decide(action_id, approver, Decision.reject, reason)

