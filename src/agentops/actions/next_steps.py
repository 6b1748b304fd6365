"""What can happen next to an action, and the command that does it: pure, for every channel."""

from dataclasses import dataclass
from datetime import datetime

from agentops.actions.rules import ApproverRole, first_approver
from agentops.store.models import ActionStatus

FINAL = "final: nothing more happens to this action"


@dataclass(frozen=True)
class ActionView:
    """The facts about an action that decide its next steps."""

    action_id: int
    status: ActionStatus
    agent: str
    owner_email: str
    backup_email: str
    owner_proposed: bool
    owner_deadline: datetime | None
    final_deadline: datetime | None


def next_steps(view: ActionView) -> list[str]:
    """One line per way forward, each with its command."""
    n = view.action_id
    cancel = f"call it off: `agentops actions cancel {n} --as EMAIL --reason ...`"
    asked_first = first_approver(owner_proposed=view.owner_proposed)
    first = view.backup_email if asked_first is ApproverRole.backup else view.owner_email
    decide = (
        f"`agentops approve {n} --as {{who}}` or `agentops reject {n} --as {{who}} --reason ...`"
    )
    match view.status:
        case ActionStatus.proposed:
            return [
                f"open the approval window: `agentops actions request {n}`",
                f"{first} may decide right away: " + decide.format(who=first),
                cancel,
            ]
        case ActionStatus.awaiting_approval:
            return [
                f"{first} decides by {_when(view.owner_deadline)}: " + decide.format(who=first),
                f"then {view.backup_email} has until {_when(view.final_deadline)}; "
                "`agentops sweep` escalates and expires on those deadlines",
                cancel,
            ]
        case ActionStatus.escalated:
            return [
                f"{view.backup_email} decides by {_when(view.final_deadline)}: "
                + decide.format(who=view.backup_email),
                cancel,
            ]
        case ActionStatus.approved:
            return [f"deploy it: `agentops actions run {n}`", cancel]
        case ActionStatus.executing:
            return [
                "being deployed; if the executor stopped, `agentops sweep` reconciles it with "
                "the deployer once AGENTOPS_DEPLOY_TIMEOUT_S has passed"
            ]
        case _:
            return [
                FINAL,
                f"watch the agent again with `agentops evaluate {view.agent}`, or propose a "
                f"fixed version with `agentops actions redeploy {view.agent} VERSION`",
            ]


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "its deadline"
