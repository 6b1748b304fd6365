"""Who may decide an approval-gated action, and when: pure rules, no I/O."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from agentops.agents.emails import normalise_email
from agentops.errors import RuleViolation
from agentops.store.models import ActionStatus, Decision

OPEN_STATUSES = frozenset(
    {
        ActionStatus.proposed,
        ActionStatus.awaiting_approval,
        ActionStatus.escalated,
        ActionStatus.approved,
        ActionStatus.executing,
    }
)
UNDECIDED_STATUSES = frozenset({ActionStatus.awaiting_approval, ActionStatus.escalated})
# The owner may also decide a proposal before any approval gate has opened for it.
DECIDABLE_STATUSES = UNDECIDED_STATUSES | {ActionStatus.proposed}


class CheckOutcome(StrEnum):
    """Whether an allowed decision is new (record it) or a repeat of the recorded one."""

    record = "record"
    duplicate = "duplicate"


class ApproverRole(StrEnum):
    """In which capacity someone may decide: as the agent's owner or as its backup."""

    owner = "owner"
    backup = "backup"


@dataclass(frozen=True)
class ActionFacts:
    """What the rules need to know about an action and its approvers."""

    status: ActionStatus
    proposed_by: str
    owner_email: str
    backup_email: str
    owner_deadline: datetime | None
    final_deadline: datetime | None
    recorded_decision: Decision | None = None
    recorded_approver: str | None = None


@dataclass(frozen=True)
class DecisionRequest:
    """One person's attempt to approve or reject an action."""

    approver_email: str
    decision: Decision
    now: datetime
    reason: str | None = None


@dataclass(frozen=True)
class DecisionCheck:
    """The verdict for an allowed request: record it, or count it as a repeat."""

    outcome: CheckOutcome
    role: ApproverRole


def check_decision(facts: ActionFacts, request: DecisionRequest) -> DecisionCheck:
    """Allow a decision (new or repeated) or raise RuleViolation saying why not."""
    approver = normalise_email(request.approver_email)
    if approver == normalise_email(facts.proposed_by):
        raise RuleViolation(f"{approver} proposed this action and cannot also decide it")
    role = _approver_role(facts, approver)
    if facts.recorded_decision is not None:
        return _check_repeat(facts, request)
    _check_open_for_decision(facts, request.now)
    if role is ApproverRole.backup and not _backup_may_decide(facts, request.now):
        raise RuleViolation(f"{approver} is the backup approver; {_owner_turn(facts)}")
    if request.decision == Decision.reject and not (request.reason or "").strip():
        raise RuleViolation("a rejection needs a reason")
    return DecisionCheck(outcome=CheckOutcome.record, role=role)


def escalation_due(status: ActionStatus, owner_deadline: datetime | None, now: datetime) -> bool:
    """True when the owner let the deadline pass and the backup should be asked."""
    return (
        status == ActionStatus.awaiting_approval
        and owner_deadline is not None
        and now >= owner_deadline
    )


def expiry_due(status: ActionStatus, final_deadline: datetime | None, now: datetime) -> bool:
    """True when nobody decided before the final deadline."""
    return status in UNDECIDED_STATUSES and final_deadline is not None and now >= final_deadline


def _approver_role(facts: ActionFacts, approver: str) -> ApproverRole:
    if approver == normalise_email(facts.owner_email):
        return ApproverRole.owner
    if approver == normalise_email(facts.backup_email):
        return ApproverRole.backup
    raise RuleViolation(
        f"{approver} may not decide this action: only the owner ({facts.owner_email}) "
        f"or the backup ({facts.backup_email}) can"
    )


def _check_repeat(facts: ActionFacts, request: DecisionRequest) -> DecisionCheck:
    recorded = facts.recorded_decision
    by = facts.recorded_approver or "someone"
    if request.decision != recorded:
        raise RuleViolation(
            f"this action was already decided ({recorded} by {by}); "
            f"a later {request.decision} cannot change it"
        )
    role = _approver_role(facts, normalise_email(request.approver_email))
    return DecisionCheck(outcome=CheckOutcome.duplicate, role=role)


def _check_open_for_decision(facts: ActionFacts, now: datetime) -> None:
    if facts.status == ActionStatus.expired or (
        facts.status in UNDECIDED_STATUSES
        and facts.final_deadline is not None
        and now >= facts.final_deadline
    ):
        raise RuleViolation("the approval window has expired; propose the action again")
    if facts.status not in DECIDABLE_STATUSES:
        raise RuleViolation(f"this action is not awaiting approval (status: {facts.status})")


def _owner_turn(facts: ActionFacts) -> str:
    if facts.owner_deadline is None:
        return "the owner decides first; the backup is asked once the approval gate escalates"
    return f"the owner has until {facts.owner_deadline:%H:%M} UTC before the decision escalates"


def _backup_may_decide(facts: ActionFacts, now: datetime) -> bool:
    # The deadline itself counts, so a late escalation timer never blocks the backup.
    return facts.status == ActionStatus.escalated or (
        facts.owner_deadline is not None and now >= facts.owner_deadline
    )
