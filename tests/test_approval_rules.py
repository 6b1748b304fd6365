from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from agentops.actions.rules import (
    ActionFacts,
    ApproverRole,
    CheckOutcome,
    DecisionRequest,
    check_decision,
    escalation_due,
    expiry_due,
)
from agentops.errors import RuleViolation
from agentops.store.models import ActionStatus, Decision

OPENED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
OWNER_DEADLINE = OPENED + timedelta(hours=1)
FINAL_DEADLINE = OWNER_DEADLINE + timedelta(hours=1)

FACTS = ActionFacts(
    status=ActionStatus.awaiting_approval,
    proposed_by="ops@x.io",
    owner_email="owner@x.io",
    backup_email="backup@x.io",
    owner_deadline=OWNER_DEADLINE,
    final_deadline=FINAL_DEADLINE,
)

APPROVED_BY_OWNER = replace(
    FACTS,
    status=ActionStatus.approved,
    recorded_decision=Decision.approve,
    recorded_approver="owner@x.io",
)


def ask(
    approver: str,
    decision: Decision = Decision.approve,
    *,
    at: datetime = OPENED + timedelta(minutes=5),
    reason: str | None = None,
) -> DecisionRequest:
    return DecisionRequest(approver_email=approver, decision=decision, now=at, reason=reason)


def test_owner_may_approve_before_the_deadline() -> None:
    check = check_decision(FACTS, ask("owner@x.io"))
    assert check.outcome is CheckOutcome.record
    assert check.role is ApproverRole.owner


def test_email_case_and_spaces_do_not_matter() -> None:
    check = check_decision(FACTS, ask("  Owner@X.io "))
    assert check.role is ApproverRole.owner


def test_self_approval_is_refused_even_for_the_owner() -> None:
    facts = replace(FACTS, proposed_by="owner@x.io")
    with pytest.raises(RuleViolation, match="proposed this action and cannot also decide"):
        check_decision(facts, ask("OWNER@x.io"))


def test_someone_else_is_refused() -> None:
    with pytest.raises(RuleViolation, match=r"only the owner \(owner@x.io\) or the backup"):
        check_decision(FACTS, ask("mallory@x.io"))


def test_backup_before_the_owner_deadline_is_told_when_it_escalates() -> None:
    with pytest.raises(RuleViolation, match="the owner has until 10:00 UTC"):
        check_decision(FACTS, ask("backup@x.io"))


def test_backup_after_escalation_may_decide() -> None:
    facts = replace(FACTS, status=ActionStatus.escalated)
    at = OWNER_DEADLINE + timedelta(minutes=1)
    check = check_decision(facts, ask("backup@x.io", at=at))
    assert check.outcome is CheckOutcome.record
    assert check.role is ApproverRole.backup


def test_backup_may_decide_once_the_owner_deadline_passed_even_if_not_yet_escalated() -> None:
    check = check_decision(FACTS, ask("backup@x.io", at=OWNER_DEADLINE))
    assert check.role is ApproverRole.backup


def test_owner_may_still_decide_after_escalation() -> None:
    facts = replace(FACTS, status=ActionStatus.escalated)
    check = check_decision(facts, ask("owner@x.io", at=OWNER_DEADLINE + timedelta(minutes=30)))
    assert check.outcome is CheckOutcome.record


def test_same_decision_again_is_a_duplicate() -> None:
    assert check_decision(APPROVED_BY_OWNER, ask("owner@x.io")).outcome is CheckOutcome.duplicate
    # Even long after the deadlines: the click is harmless and counted once.
    late = FINAL_DEADLINE + timedelta(days=1)
    assert (
        check_decision(APPROVED_BY_OWNER, ask("owner@x.io", at=late)).outcome
        is CheckOutcome.duplicate
    )


def test_conflicting_second_decision_is_refused() -> None:
    with pytest.raises(RuleViolation, match=r"already decided \(approve by owner@x.io\)"):
        check_decision(
            APPROVED_BY_OWNER, ask("owner@x.io", Decision.reject, reason="changed my mind")
        )


def test_duplicate_still_requires_an_allowed_approver() -> None:
    with pytest.raises(RuleViolation, match="may not decide"):
        check_decision(APPROVED_BY_OWNER, ask("mallory@x.io"))


def test_after_the_final_deadline_is_refused_as_expired() -> None:
    facts = replace(FACTS, status=ActionStatus.escalated)
    with pytest.raises(RuleViolation, match="expired"):
        check_decision(facts, ask("backup@x.io", at=FINAL_DEADLINE))


def test_expired_action_is_refused() -> None:
    facts = replace(FACTS, status=ActionStatus.expired)
    with pytest.raises(RuleViolation, match="expired"):
        check_decision(facts, ask("owner@x.io"))


@pytest.mark.parametrize(
    "status",
    [ActionStatus.executing, ActionStatus.succeeded, ActionStatus.failed],
)
def test_action_not_awaiting_approval_is_refused(status: ActionStatus) -> None:
    facts = replace(FACTS, status=status)
    with pytest.raises(RuleViolation, match=f"not awaiting approval \\(status: {status}\\)"):
        check_decision(facts, ask("owner@x.io"))


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_rejection_needs_a_reason(reason: str | None) -> None:
    with pytest.raises(RuleViolation, match="a rejection needs a reason"):
        check_decision(FACTS, ask("owner@x.io", Decision.reject, reason=reason))


def test_rejection_with_a_reason_is_recorded() -> None:
    check = check_decision(FACTS, ask("owner@x.io", Decision.reject, reason="false alarm"))
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
    allowed = check_decision(proposal, ask("owner@x.io"))
    assert (allowed.outcome, allowed.role) == (CheckOutcome.record, ApproverRole.owner)
    with pytest.raises(RuleViolation, match="the owner decides first"):
        check_decision(proposal, ask("backup@x.io"))
