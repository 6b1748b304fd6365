from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from agentops.actions.rules import (
    ActionFacts,
    ApprovalProof,
    ApproverRole,
    CheckOutcome,
    DecisionRequest,
    check_cancel,
    check_decision,
    decides_now,
    escalation_due,
    execution_obstacle,
    expiry_due,
    first_approver,
)
from agentops.errors import RuleViolation
from agentops.store.models import ActionStatus, Decision

OPENED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
OWNER_DEADLINE = OPENED + timedelta(hours=1)
FINAL_DEADLINE = OWNER_DEADLINE + timedelta(hours=1)

OWNER, BACKUP, OPS, MALLORY = 1, 2, 3, 4

FACTS = ActionFacts(
    status=ActionStatus.awaiting_approval,
    proposer_id=OPS,
    owner_id=OWNER,
    backup_id=BACKUP,
    owner_deadline=OWNER_DEADLINE,
    final_deadline=FINAL_DEADLINE,
)

APPROVED_BY_OWNER = replace(FACTS, status=ActionStatus.approved, recorded_decision=Decision.approve)


def ask(
    approver: int | None,
    decision: Decision = Decision.approve,
    *,
    at: datetime = OPENED + timedelta(minutes=5),
    reason: str | None = None,
) -> DecisionRequest:
    return DecisionRequest(approver_id=approver, decision=decision, now=at, reason=reason)


def test_owner_may_approve_before_the_deadline() -> None:
    check = check_decision(FACTS, ask(OWNER))
    assert check.outcome is CheckOutcome.record
    assert check.role is ApproverRole.owner


def test_self_approval_is_refused_even_for_the_owner() -> None:
    facts = replace(FACTS, proposer_id=OWNER)
    with pytest.raises(RuleViolation, match="you proposed this action"):
        check_decision(facts, ask(OWNER))


def test_someone_else_is_refused() -> None:
    with pytest.raises(RuleViolation, match="only the agent's owner or its backup") as refused:
        check_decision(FACTS, ask(MALLORY))
    assert "@" not in str(refused.value)  # a refusal never lists who would pass


def test_backup_before_the_owner_deadline_is_told_when_it_escalates() -> None:
    with pytest.raises(RuleViolation, match="the owner has until 2025-03-01 10:00 UTC"):
        check_decision(FACTS, ask(BACKUP))


def test_backup_after_escalation_may_decide() -> None:
    facts = replace(FACTS, status=ActionStatus.escalated)
    at = OWNER_DEADLINE + timedelta(minutes=1)
    check = check_decision(facts, ask(BACKUP, at=at))
    assert check.outcome is CheckOutcome.record
    assert check.role is ApproverRole.backup


def test_backup_may_decide_once_the_owner_deadline_passed_even_if_not_yet_escalated() -> None:
    check = check_decision(FACTS, ask(BACKUP, at=OWNER_DEADLINE))
    assert check.role is ApproverRole.backup


def test_owner_may_still_decide_after_escalation() -> None:
    facts = replace(FACTS, status=ActionStatus.escalated)
    check = check_decision(facts, ask(OWNER, at=OWNER_DEADLINE + timedelta(minutes=30)))
    assert check.outcome is CheckOutcome.record


def test_same_decision_again_is_a_duplicate() -> None:
    assert check_decision(APPROVED_BY_OWNER, ask(OWNER)).outcome is CheckOutcome.duplicate
    # Even long after the deadlines: the click is harmless and counted once.
    late = FINAL_DEADLINE + timedelta(days=1)
    assert check_decision(APPROVED_BY_OWNER, ask(OWNER, at=late)).outcome is CheckOutcome.duplicate


def test_conflicting_second_decision_is_refused() -> None:
    with pytest.raises(RuleViolation, match=r"already decided \(approve\)"):
        check_decision(APPROVED_BY_OWNER, ask(OWNER, Decision.reject, reason="changed my mind"))


def test_duplicate_still_requires_an_allowed_approver() -> None:
    with pytest.raises(RuleViolation, match="may decide this action"):
        check_decision(APPROVED_BY_OWNER, ask(MALLORY))


def test_after_the_final_deadline_is_refused_as_expired() -> None:
    facts = replace(FACTS, status=ActionStatus.escalated)
    with pytest.raises(RuleViolation, match="expired"):
        check_decision(facts, ask(BACKUP, at=FINAL_DEADLINE))


def test_expired_action_is_refused() -> None:
    facts = replace(FACTS, status=ActionStatus.expired)
    with pytest.raises(RuleViolation, match="expired"):
        check_decision(facts, ask(OWNER))


@pytest.mark.parametrize(
    "status",
    [ActionStatus.executing, ActionStatus.succeeded, ActionStatus.failed],
)
def test_action_not_awaiting_approval_is_refused(status: ActionStatus) -> None:
    facts = replace(FACTS, status=status)
    with pytest.raises(RuleViolation, match=f"not awaiting approval \\(status: {status}\\)"):
        check_decision(facts, ask(OWNER))


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_rejection_needs_a_reason(reason: str | None) -> None:
    with pytest.raises(RuleViolation, match="a rejection needs a reason"):
        check_decision(FACTS, ask(OWNER, Decision.reject, reason=reason))


def test_rejection_with_a_reason_is_recorded() -> None:
    check = check_decision(FACTS, ask(OWNER, Decision.reject, reason="false alarm"))
    assert check.outcome is CheckOutcome.record


def test_escalation_is_due_only_for_undecided_actions_past_the_owner_deadline() -> None:
    waiting = ActionStatus.awaiting_approval
    assert not escalation_due(waiting, OWNER_DEADLINE, OWNER_DEADLINE - timedelta(seconds=1))
    assert escalation_due(waiting, OWNER_DEADLINE, OWNER_DEADLINE)
    assert not escalation_due(ActionStatus.escalated, OWNER_DEADLINE, FINAL_DEADLINE)
    assert not escalation_due(ActionStatus.approved, OWNER_DEADLINE, FINAL_DEADLINE)
    assert not escalation_due(waiting, None, FINAL_DEADLINE)


def test_expiry_is_due_only_for_undecided_actions_past_the_final_deadline() -> None:
    assert expiry_due(ActionStatus.escalated, FINAL_DEADLINE, FINAL_DEADLINE)
    assert expiry_due(ActionStatus.awaiting_approval, FINAL_DEADLINE, FINAL_DEADLINE)
    assert not expiry_due(ActionStatus.escalated, FINAL_DEADLINE, OWNER_DEADLINE)
    assert not expiry_due(ActionStatus.rejected, FINAL_DEADLINE, FINAL_DEADLINE)


def test_owner_may_decide_a_proposal_before_any_gate_but_the_backup_may_not() -> None:
    proposal = replace(
        FACTS, status=ActionStatus.proposed, owner_deadline=None, final_deadline=None
    )
    allowed = check_decision(proposal, ask(OWNER))
    assert (allowed.outcome, allowed.role) == (CheckOutcome.record, ApproverRole.owner)
    with pytest.raises(RuleViolation, match="the owner decides first"):
        check_decision(proposal, ask(BACKUP))


def test_unregistered_person_is_refused() -> None:
    with pytest.raises(RuleViolation, match="only the agent's owner or its backup"):
        check_decision(FACTS, ask(None))


def test_a_redeploy_the_owner_proposed_goes_straight_to_the_backup() -> None:
    facts = replace(FACTS, proposer_id=OWNER)
    check = check_decision(facts, ask(BACKUP))  # before any escalation
    assert check.role is ApproverRole.backup
    proposed = replace(facts, status=ActionStatus.proposed, owner_deadline=None)
    assert check_decision(proposed, ask(BACKUP)).outcome is CheckOutcome.record


@pytest.mark.parametrize(
    ("actor", "admin", "status", "reason", "refusal"),
    [
        (OWNER, False, ActionStatus.awaiting_approval, "wrong agent", None),
        (BACKUP, False, ActionStatus.approved, "stale", None),
        (MALLORY, True, ActionStatus.proposed, "cleanup", None),
        (MALLORY, False, ActionStatus.proposed, "cleanup", "only the agent's owner"),
        (None, False, ActionStatus.proposed, "cleanup", "only the agent's owner"),
        (OWNER, False, ActionStatus.executing, "too late", "can no longer be cancelled"),
        (OWNER, False, ActionStatus.succeeded, "too late", "can no longer be cancelled"),
        (OWNER, False, ActionStatus.escalated, "  ", "needs a reason"),
    ],
)
def test_cancel_rules(
    actor: int | None, admin: bool, status: ActionStatus, reason: str, refusal: str | None
) -> None:
    facts = replace(FACTS, status=status)
    if refusal is None:
        check_cancel(facts, actor_id=actor, is_admin=admin, reason=reason)
        return
    with pytest.raises(RuleViolation, match=refusal):
        check_cancel(facts, actor_id=actor, is_admin=admin, reason=reason)


GOOD_PROOF = ApprovalProof(approver_id=OWNER, decision=Decision.approve, event_verified=True)


@pytest.mark.parametrize(
    ("status", "proof", "obstacle"),
    [
        (ActionStatus.approved, GOOD_PROOF, None),
        (ActionStatus.approved, None, "no approval is recorded"),
        (ActionStatus.approved, replace(GOOD_PROOF, decision=Decision.reject), "not approve"),
        (ActionStatus.approved, replace(GOOD_PROOF, approver_id=MALLORY), "neither the owner"),
        (ActionStatus.approved, replace(GOOD_PROOF, approver_id=OPS), "neither the owner"),
        (ActionStatus.approved, replace(GOOD_PROOF, event_verified=False), "audit chain"),
        (ActionStatus.awaiting_approval, GOOD_PROOF, "only an approved action runs"),
    ],
)
def test_execution_needs_proof_not_just_a_status(
    status: ActionStatus, proof: ApprovalProof | None, obstacle: str | None
) -> None:
    found = execution_obstacle(replace(FACTS, status=status), proof)
    if obstacle is None:
        assert found is None
    else:
        assert found is not None and obstacle in found


def test_an_approver_who_proposed_is_no_proof() -> None:
    facts = replace(FACTS, status=ActionStatus.approved, proposer_id=OWNER)
    assert "also proposed" in (execution_obstacle(facts, GOOD_PROOF) or "")


@pytest.mark.parametrize(
    ("owner_proposed", "status", "first", "now"),
    [
        (False, ActionStatus.proposed, ApproverRole.owner, ApproverRole.owner),
        (False, ActionStatus.awaiting_approval, ApproverRole.owner, ApproverRole.owner),
        (False, ActionStatus.escalated, ApproverRole.owner, ApproverRole.backup),
        (True, ActionStatus.proposed, ApproverRole.backup, ApproverRole.backup),
        (True, ActionStatus.awaiting_approval, ApproverRole.backup, ApproverRole.backup),
        (True, ActionStatus.escalated, ApproverRole.backup, ApproverRole.backup),
    ],
)
def test_who_decides_first_and_now_is_one_rule(
    owner_proposed: bool, status: ActionStatus, first: ApproverRole, now: ApproverRole
) -> None:
    assert first_approver(owner_proposed=owner_proposed) is first
    assert decides_now(owner_proposed=owner_proposed, status=status) is now
