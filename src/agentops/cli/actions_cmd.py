"""`agentops actions …`, `agentops approve` and `agentops reject`: the approval gate."""

import typer
from rich.table import Table

from agentops.actions import service as actions
from agentops.agents import service as agents
from agentops.cli.common import (
    acting_user,
    console,
    err_console,
    fail,
    store_session,
    user_errors,
)
from agentops.store.models import ActionKind, ActionStatus, AgentVersion, Decision

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
                action.status.value,
                action.proposed_by,
                f"{action.created_at:%Y-%m-%d %H:%M}",
            )
        console.print(table)


def _version(session, version_id: int) -> str:  # type: ignore[no-untyped-def]
    version = session.get(AgentVersion, version_id)
    return version.version if version else "?"


@app.command("show")
@user_errors
def show(action_id: int = typer.Argument(..., help="Action id.")) -> None:
    """Show one action with its reason, deadlines and decision."""
    with store_session() as session:
        action = actions.get_action(session, action_id=action_id)
        console.print(f"[bold]action {action.id}[/]: {action.kind.value} ({action.status.value})")
        console.print(f"reason: {action.reason}")
        for label, value in (
            ("owner deadline", action.owner_deadline),
            ("final deadline", action.final_deadline),
            ("escalated at", action.escalated_at),
            ("decided at", action.decided_at),
            ("executed at", action.executed_at),
        ):
            if value is not None:
                console.print(f"{label}: {value:%Y-%m-%d %H:%M:%S} UTC")
        if action.outcome_detail:
            console.print(f"outcome: {action.outcome_detail}")


@app.command("redeploy")
@user_errors
def propose_redeploy(
    agent: str = typer.Argument(..., help="Agent name."),
    version: str = typer.Argument(..., help="The fixed version to put live."),
    proposer: str | None = typer.Option(None, "--as", help="Your email (or AGENTOPS_USER_EMAIL)."),
    reason: str = typer.Option(..., "--reason", help="Why this version is fixed."),
) -> None:
    """Propose putting a fixed version live; the owner must approve it."""
    email = acting_user(proposer)
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        fixed = agents.get_version(session, agent=target, version=version)
        action = actions.propose_redeploy(
            session, agent=target, version=fixed, actor=email, reason=reason
        )
        action_id = action.id
    console.print(
        f"Redeploy proposed as action {action_id}. Start its gate with the redeploy-agent flow."
    )


@app.command("run")
@user_errors
def run_action(
    action_id: int = typer.Argument(..., help="An approved action."),
    deployer_url: str | None = typer.Option(
        None, help="Deployer base URL (default AGENTOPS_DEPLOYER_URL)."
    ),
) -> None:
    """Execute an approved action now: deploy, verify health, record the outcome."""
    with store_session() as session:
        action = actions.get_action(session, action_id=action_id)
        kind, status = action.kind, action.status
    if status != ActionStatus.approved:
        raise fail(
            f"action {action_id} is {status.value}: only an approved action can be run "
            f"(the owner approves with `agentops approve {action_id} --as EMAIL`)"
        )
    from flows.redeploy_agent import redeploy_agent
    from flows.rollback_agent import rollback_agent

    flow = rollback_agent if kind == ActionKind.rollback else redeploy_agent
    with err_console.status(f"running the {kind.value} through Prefect…"):
        summary = flow(action_id=action_id, deployer_url=deployer_url)
    console.print(f"Action {action_id} {summary['status']}: {summary.get('detail') or ''}")
    if summary["status"] != ActionStatus.succeeded.value:
        raise typer.Exit(1)


def _decide(action_id: int, email: str, decision: Decision, reason: str | None) -> None:
    with store_session() as session:
        try:
            result = actions.decide(
                session,
                action_id=action_id,
                approver_email=email,
                decision=decision,
                reason=reason,
                channel="cli",
            )
        except actions.ApprovalRefused:
            session.commit()  # the refusal itself belongs in the audit trail
            raise
        flow_run_id = result.action.flow_run_id
        newly_recorded = result.newly_recorded
    if not newly_recorded:
        console.print(f"Action {action_id} was already {decision.value}d; counted once.")
        return
    console.print(f"Action {action_id}: {decision.value} recorded for {email}.")
    if flow_run_id:
        _wake_flow_run(flow_run_id, action_id)
    elif decision == Decision.approve:
        console.print(
            f"No run is waiting on it yet: execute it with `agentops actions run {action_id}`."
        )


def _wake_flow_run(flow_run_id: str, action_id: int) -> None:
    # The decision is already committed: failing to wake the run must not look like a failure.
    from flows.approval_gate import resume_waiting_run

    try:
        with err_console.status(f"resuming flow run {flow_run_id} through Prefect…"):
            resumed = resume_waiting_run(flow_run_id=flow_run_id, action_id=action_id)
    except Exception as exc:  # any Prefect/HTTP failure: report it, the store is already right
        resumed = False
        err_console.print(f"Prefect could not be reached: {exc.__class__.__name__}: {exc}")
    if resumed:
        console.print(f"The waiting flow run {flow_run_id} has been resumed.")
        return
    err_console.print(
        f"Flow run {flow_run_id} was not resumed from here (it is not waiting on the Prefect "
        "API this command reached). The decision is recorded: the waiting run finds it in the "
        "store within its poll interval (AGENTOPS_APPROVAL_POLL_INTERVAL_S)."
    )


@user_errors
def approve(
    action_id: int = typer.Argument(..., help="Action to approve."),
    approver: str | None = typer.Option(None, "--as", help="Your email (or AGENTOPS_USER_EMAIL)."),
    reason: str | None = typer.Option(None, "--reason", help="Optional note for the trail."),
) -> None:
    """Approve a proposed rollback or redeploy (owner, or backup after escalation)."""
    _decide(action_id, acting_user(approver), Decision.approve, reason)


@user_errors
def reject(
    action_id: int = typer.Argument(..., help="Action to reject."),
    approver: str | None = typer.Option(None, "--as", help="Your email (or AGENTOPS_USER_EMAIL)."),
    reason: str = typer.Option(..., "--reason", help="Why: required for a rejection."),
) -> None:
    """Reject a proposed action, with a reason."""
    _decide(action_id, acting_user(approver), Decision.reject, reason)
