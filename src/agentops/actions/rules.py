"""Who may decide, cancel or execute an approval-gated action, and when: pure rules, no I/O."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

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
# Anything not yet executing can still be called off.
CANCELLABLE_STATUSES = DECIDABLE_STATUSES | {ActionStatus.approved}
NOT_AN_APPROVER = "only the agent's owner or its backup approver may decide this action"


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
    """What the rules need to know about an action and its approvers, by person id."""

    status: ActionStatus
    proposer_id: int | None
    owner_id: int
    backup_id: int
    owner_deadline: datetime | None
    final_deadline: datetime | None
    recorded_decision: Decision | None = None


@dataclass(frozen=True)
class DecisionRequest:
    """One person's attempt to approve or reject an action."""

    approver_id: int | None
    decision: Decision
    now: datetime
    reason: str | None = None


@dataclass(frozen=True)
class DecisionCheck:
    """The verdict for an allowed request: record it, or count it as a repeat."""

    outcome: CheckOutcome
    role: ApproverRole


@dataclass(frozen=True)
class ApprovalProof:
    """The recorded approval behind an execution, and whether its audit event verifies."""

    approver_id: int
    decision: Decision
    event_verified: bool


def first_approver(*, owner_proposed: bool) -> ApproverRole:
    """Who is asked first: the owner, or the backup when the owner proposed the action."""
    return ApproverRole.backup if owner_proposed else ApproverRole.owner


def decides_now(*, owner_proposed: bool, status: ActionStatus) -> ApproverRole:
    """Whose turn it is at this moment: the first approver, or the backup once escalated."""
    if status == ActionStatus.escalated:
        return ApproverRole.backup
    return first_approver(owner_proposed=owner_proposed)


def check_decision(facts: ActionFacts, request: DecisionRequest) -> DecisionCheck:
    """Allow a decision (new or repeated) or raise RuleViolation saying why not."""
    role = _approver_role(facts, request.approver_id)
    if request.approver_id == facts.proposer_id:
        raise RuleViolation("you proposed this action, so someone else must decide it")
    if facts.recorded_decision is not None:
        return _check_repeat(facts, request, role)
    _check_open_for_decision(facts, request.now)
    if role is ApproverRole.backup and not _backup_may_decide(facts, request.now):
        raise RuleViolation(
            f"the backup approver decides only after escalation; {_owner_turn(facts)}"
        )
    if request.decision == Decision.reject and not (request.reason or "").strip():
        raise RuleViolation("a rejection needs a reason")
    return DecisionCheck(outcome=CheckOutcome.record, role=role)


def check_cancel(
    facts: ActionFacts, *, actor_id: int | None, is_admin: bool, reason: str | None
) -> None:
    """Allow calling off an action that has not started executing, or raise RuleViolation."""
    allowed = is_admin or (actor_id is not None and actor_id in {facts.owner_id, facts.backup_id})
    if not allowed:
        raise RuleViolation(
            "only the agent's owner, its backup approver or an admin may cancel this action"
        )
    if facts.status not in CANCELLABLE_STATUSES:
        raise RuleViolation(f"this action is {facts.status} and can no longer be cancelled")
    if not (reason or "").strip():
        raise RuleViolation("cancelling needs a reason")


def execution_obstacle(facts: ActionFacts, proof: ApprovalProof | None) -> str | None:
    """Why an action may not be executed (None when it may): status alone is never proof."""
    if facts.status != ActionStatus.approved:
        return f"the action is {facts.status}; only an approved action runs"
    if proof is None:
        return "the action claims approval but no approval is recorded for it"
    if proof.decision != Decision.approve:
        return f"the recorded decision is {proof.decision}, not approve"
    if proof.approver_id not in {facts.owner_id, facts.backup_id}:
        return "the recorded approver is neither the owner nor the backup approver"
    if proof.approver_id == facts.proposer_id:
        return "the recorded approver also proposed the action"
    if not proof.event_verified:
        return "the approval's decision event is missing from the audit chain or does not verify"
    return None


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


def _approver_role(facts: ActionFacts, approver_id: int | None) -> ApproverRole:
    if approver_id is not None and approver_id == facts.owner_id:
        return ApproverRole.owner
    if approver_id is not None and approver_id == facts.backup_id:
        return ApproverRole.backup
    raise RuleViolation(NOT_AN_APPROVER)


def _check_repeat(
    facts: ActionFacts, request: DecisionRequest, role: ApproverRole
) -> DecisionCheck:
    recorded = facts.recorded_decision
    if request.decision != recorded:
        raise RuleViolation(
            f"this action was already decided ({recorded}); a later {request.decision} "
            "cannot change it"
        )
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
    return f"the owner has until {facts.owner_deadline:%Y-%m-%d %H:%M} UTC"


def _backup_may_decide(facts: ActionFacts, now: datetime) -> bool:
    # An owner who proposed the action cannot decide it, so it goes straight to the backup.
    # The deadline itself counts, so a late sweep never blocks the backup.
    owner_proposed = facts.proposer_id == facts.owner_id
    return (
        first_approver(owner_proposed=owner_proposed) is ApproverRole.backup
        or facts.status == ActionStatus.escalated
        or (facts.owner_deadline is not None and now >= facts.owner_deadline)
    )
