"""What an approval request says: evidence read defensively, one sentence per state."""

from dataclasses import replace
from datetime import UTC, datetime

from agentops.actions.approval_card import ApprovalCard, evidence_lines, result_line, status_line
from agentops.slack import messaging
from agentops.store.models import ActionStatus, Decision

AT = datetime(2026, 11, 26, 14, 2, tzinfo=UTC)
CARD = ApprovalCard(
    action_id=7,
    kind="rollback",
    agent="airline",
    from_version="v2",
    to_version="v1",
    proposed_by="flow:evaluate-triggers",
    reason="breach <!channel>",
    status=ActionStatus.awaiting_approval,
    owner_email="o@x.io",
    backup_email="b@x.io",
    owner_proposed=False,
    owner_deadline=AT,
    final_deadline=AT,
    escalated_at=None,
    trigger="escalation-rate (escalation_rate, trigger set v2)",
    evidence=("counts: conversations 40, escalated 12",),
)


def test_evidence_lines_show_what_is_there_and_skip_the_rest() -> None:
    lines = evidence_lines(
        statistic=0.21,
        threshold=0.15,
        evidence={
            "summary": "12 of 40 escalated",
            "conversations": 40,
            "escalated": 12,
            "wilson_lower": 0.2,
            "confidence": 0.95,
            "conversation_ids": [1, 2, 3, 4, 5, 6, 7],
            "conversation_ids_total": 40,
            "escalated_conversation_ids": "not a list",
            "violations": True,  # a flag, not a count
            "new_key_from_a_rewrite": {"nested": [1]},
        },
    )
    assert lines == (
        "12 of 40 escalated",
        "statistic 0.21 against threshold 0.15",
        "counts: conversations 40, escalated 12",
        "one-sided lower bound 0.2 at 95% confidence",
        "conversations: #1, #2, #3, #4, #5 (of 40)",
    )
    assert evidence_lines(statistic=None, threshold=None, evidence={}) == ()


def test_cusum_bank_evidence_reads_too() -> None:
    lines = evidence_lines(
        statistic=1.02,
        threshold=1.0,
        evidence={
            "summary": "40 of the 300 reviews needed to clear the version (9 violations)",
            "unit": "reviews",
            "events_word": "violations",
            "observations": 40,
            "events": 9,
            "charts": [
                {"degraded_rate": 0.3, "value": 4.1, "threshold": 4.0, "events_since_change": 7},
                "not a chart",
            ],
            "alarm": {"position": 38, "id": 512, "charts": [0]},
            "review_ids": [510, 511, 512],
        },
    )
    assert lines == (
        "40 of the 300 reviews needed to clear the version (9 violations)",
        "statistic 1.02 against threshold 1",
        "counts: reviews 40, violations 9",
        "chart for a 30.0% rate: 4.1 of 4, 7 since its change point",
        "alarm at review 38 (#512)",
        "reviews: #510, #511, #512",
    )


def test_each_state_reads_as_one_sentence() -> None:
    person = {"o@x.io": "@olivia", "b@x.io": "@bashir"}.__getitem__
    assert status_line(CARD, person=person).startswith("Waiting for @olivia until 14:02 UTC")
    escalated = replace(CARD, status=ActionStatus.escalated, escalated_at=AT)
    assert status_line(escalated, person=person).startswith("Escalated to @bashir at 14:02")
    assert escalated.decides_now == "b@x.io"
    decided = replace(
        CARD,
        status=ActionStatus.succeeded,
        decision=Decision.approve,
        decided_by="o@x.io",
        decided_at=AT,
        outcome_detail="healthy",
    )
    assert status_line(decided, person=person) == (
        "Approved by @olivia at 14:02 UTC on 2026-11-26. v1 is live."
    )
    assert result_line(decided) == "Rollback done: v1 is live. healthy"
    expired = replace(CARD, status=ActionStatus.expired)
    assert status_line(expired).startswith("Expired: nobody decided")
    assert not expired.open_for_decision and result_line(expired) is None


def test_slack_message_escapes_people_text_and_keeps_a_fallback() -> None:
    blocks = messaging.request_blocks(CARD, person=lambda email: f"<@U{email[0]}>")
    text = messaging.as_text(blocks)
    assert "breach &lt;!channel&gt;" in text and "<!channel>" not in text
    assert "Waiting for <@Uo>" in text and "[ Approve ]  [ Reject ]" in text
    approve = blocks[-1]["elements"][0]
    assert approve["value"] == "7" and "confirm" in approve
    closed = messaging.request_blocks(replace(CARD, status=ActionStatus.cancelled), person=str)
    assert all(block["type"] != "actions" for block in closed)
    assert messaging.fallback_text(CARD, person=str).startswith("Rollback of airline: v2 → v1")
    modal = messaging.reject_modal(action_id=7, title=CARD.title)
    assert modal["blocks"][1]["element"]["min_length"] == 1
