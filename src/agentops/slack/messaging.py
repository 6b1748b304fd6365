"""Every Slack message agentops sends, built in one place from the channel-neutral card.

Block Kit is plain JSON, so this module needs no Slack client: it lays out what
`actions.approval_card` decided to say. Text that came from people (reasons, names)
is escaped, so it cannot mention @channel or forge links.
"""

from dataclasses import replace
from typing import Any

from agentops.actions.approval_card import ApprovalCard, Render, result_line, status_line

APPROVE = "agentops_approve"
REJECT = "agentops_reject"
REJECT_MODAL = "agentops_reject_modal"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
DECISION_BLOCK = "agentops_decision"


def escape(text: str) -> str:
    """Escape the three characters Slack treats as markup in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(slack_user_id: str | None, email: str) -> str:
    """A person as Slack shows them: a mention when their Slack id is known."""
    return f"<@{slack_user_id}>" if slack_user_id else escape(email)


def request_blocks(card: ApprovalCard, *, person: Render, note: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    """The approval request: evidence, deadline, state and (while open) the buttons."""
    facts = [
        f"*Why:* {escape(card.reason)}",
        f"*Proposed by:* {_who(card.proposed_by, person)}",
        f"*Versions:* {escape(card.from_version)} → {escape(card.to_version)}",
    ]
    if card.open_for_decision:
        deadline = card.final_deadline if card.decides_now == card.backup_email else None
        deadline = deadline or card.owner_deadline
        if deadline is not None:
            facts.append(f"*Decide by:* {deadline:%Y-%m-%d %H:%M} UTC ({person(card.decides_now)})")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(card.title[:150])},
        {"type": "section", "text": _mrkdwn("\n".join(facts))},
    ]
    if card.trigger:
        evidence = "\n".join(f"• {escape(line)}" for line in card.evidence) or "• (no evidence)"
        blocks.append(
            {
                "type": "section",
                "text": _mrkdwn(f"*Trigger:* {escape(card.trigger)}\n{evidence}"[:3000]),
            }
        )
    state = status_line(_escaped(card), person=person)
    if note:
        state = f"{note} {state}"
    blocks.append({"type": "context", "elements": [_mrkdwn(state[:3000])]})
    if card.open_for_decision:
        blocks.append({"type": "actions", "block_id": DECISION_BLOCK, "elements": _buttons(card)})
    return blocks


def fallback_text(card: ApprovalCard, *, person: Render) -> str:
    """The plain-text version sent with every message (notifications, screen readers)."""
    return f"{escape(card.title)}: {status_line(_escaped(card), person=person)}"


def result_text(card: ApprovalCard) -> str | None:
    """The thread reply with the execution result, once there is one."""
    line = result_line(card)
    return escape(line) if line else None


def reject_modal(*, action_id: int, title: str) -> dict[str, Any]:
    """The modal Reject opens: a reason is required before anything is recorded."""
    return {
        "type": "modal",
        "callback_id": REJECT_MODAL,
        "private_metadata": str(action_id),
        "title": _plain(f"Reject action {action_id}"[:24]),
        "submit": _plain("Reject"),
        "close": _plain("Cancel"),
        "blocks": [
            {"type": "section", "text": _plain(title[:3000])},
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": _plain("Why reject it?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": 2000,
                },
            },
        ],
    }


def as_text(blocks: list[dict[str, Any]]) -> str:
    """A message rendered as plain text lines, as the demo prints it."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in {"header", "section"}:
            lines.append(block["text"]["text"])
        elif kind == "context":
            lines.extend(element.get("text", "") for element in block["elements"])
        elif kind == "actions":
            lines.append("  ".join(f"[ {b['text']['text']} ]" for b in block["elements"]))
    return "\n".join(lines)


def _buttons(card: ApprovalCard) -> list[dict[str, Any]]:
    value = str(card.action_id)  # which action; never who clicked
    return [
        {
            "type": "button",
            "action_id": APPROVE,
            "text": _plain("Approve"),
            "style": "primary",
            "value": value,
            "confirm": {
                "title": _plain("Approve this action?"),
                "text": _plain(
                    f"{card.kind.capitalize()} {card.agent} to {card.to_version} now."[:300]
                ),
                "confirm": _plain("Approve"),
                "deny": _plain("Not yet"),
            },
        },
        {
            "type": "button",
            "action_id": REJECT,
            "text": _plain("Reject"),
            "style": "danger",
            "value": value,
        },
    ]


def _escaped(card: ApprovalCard) -> ApprovalCard:
    # Status lines quote the rejection reason; people render themselves (mentions).
    reason = escape(card.decision_reason) if card.decision_reason else None
    return replace(card, decision_reason=reason, to_version=escape(card.to_version))


def _who(label: str, person: Render) -> str:
    return person(label) if "@" in label else escape(label)


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}
