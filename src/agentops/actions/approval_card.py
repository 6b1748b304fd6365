"""What an approval request says, for any channel: plain data and plain sentences.

Slack (and later the web) only lay this out; deciding which evidence to show and how
each state reads lives here, once. People are rendered through a callable so each
channel can show them its own way (an email in a terminal, a mention in Slack).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from agentops.actions.rules import (
    UNDECIDED_STATUSES,
    ApproverRole,
    decides_now,
    first_approver,
)
from agentops.actions.service import get_action, get_approval
from agentops.store.models import (
    ActionStatus,
    Agent,
    AgentVersion,
    Decision,
    Evaluation,
    Person,
    TriggerSet,
)

# A message shows a few ids behind the verdict; the total says how many there are.
SHOWN_IDS = 5
Render = Callable[[str], str]


@dataclass(frozen=True)
class ApprovalCard:
    """Everything an approver needs to decide one action, read from the store."""

    action_id: int
    kind: str
    agent: str
    from_version: str
    to_version: str
    proposed_by: str
    reason: str
    status: ActionStatus
    owner_email: str
    backup_email: str
    owner_proposed: bool
    owner_deadline: datetime | None
    final_deadline: datetime | None
    escalated_at: datetime | None
    trigger: str | None
    evidence: tuple[str, ...]
    decision: Decision | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    outcome_detail: str | None = None

    @property
    def open_for_decision(self) -> bool:
        """True while someone may still approve or reject it."""
        return self.status in UNDECIDED_STATUSES

    @property
    def decides_now(self) -> str:
        """The email of whoever decides at this moment."""
        turn = decides_now(owner_proposed=self.owner_proposed, status=self.status)
        return self.backup_email if turn is ApproverRole.backup else self.owner_email

    @property
    def title(self) -> str:
        """One line naming the action."""
        return (
            f"{self.kind.capitalize()} of {self.agent}: {self.from_version} → {self.to_version} "
            f"(action {self.action_id})"
        )


def approval_card(session: Session, *, action_id: int) -> ApprovalCard:
    """Build the card for an action from the store."""
    action = get_action(session, action_id=action_id)
    agent = session.get(Agent, action.agent_id)
    assert agent is not None
    owner = session.get(Person, agent.owner_id)
    backup = session.get(Person, agent.backup_id)
    from_version = session.get(AgentVersion, action.from_version_id)
    to_version = session.get(AgentVersion, action.to_version_id)
    assert owner and backup and from_version and to_version
    evaluation = session.get(Evaluation, action.evaluation_id) if action.evaluation_id else None
    trigger = None
    lines: tuple[str, ...] = ()
    if evaluation is not None:
        trigger_set = session.get(TriggerSet, evaluation.trigger_set_id)
        trigger = f"{evaluation.trigger_name} ({evaluation.kind}" + (
            f", trigger set v{trigger_set.version})" if trigger_set else ")"
        )
        lines = evidence_lines(
            statistic=evaluation.statistic,
            threshold=evaluation.threshold,
            evidence=evaluation.evidence,
        )
    approval = get_approval(session, action_id=action_id)
    approver = session.get(Person, approval.approver_id) if approval else None
    return ApprovalCard(
        action_id=action_id,
        kind=action.kind.value,
        agent=agent.name,
        from_version=from_version.version,
        to_version=to_version.version,
        proposed_by=action.proposed_by,
        reason=action.reason,
        status=action.status,
        owner_email=owner.email,
        backup_email=backup.email,
        owner_proposed=action.proposed_by_id == owner.id,
        owner_deadline=action.owner_deadline,
        final_deadline=action.final_deadline,
        escalated_at=action.escalated_at,
        trigger=trigger,
        evidence=lines,
        decision=approval.decision if approval else None,
        decided_by=approver.email if approver else None,
        decided_at=approval.decided_at if approval else None,
        decision_reason=approval.reason if approval else None,
        outcome_detail=action.outcome_detail,
    )


def evidence_lines(
    *, statistic: float | None, threshold: float | None, evidence: dict[str, Any]
) -> tuple[str, ...]:
    """The evidence worth reading before deciding; unknown or missing keys are skipped."""
    lines: list[str] = []
    summary = evidence.get("summary")
    if isinstance(summary, str) and summary.strip():
        lines.append(summary.strip())
    if statistic is not None or threshold is not None:
        lines.append(f"statistic {_num(statistic)} against threshold {_num(threshold)}")
    counted = _text(evidence.get("unit")) or "observations"
    counts = [
        f"{label} {evidence[key]}"
        for key, label in (
            ("reviews_total", "reviews"),
            ("n_used", "reviews used"),
            ("violations", "violations"),
            ("conversations", "conversations"),
            ("escalated", "escalated"),
            ("observations", counted),
            ("events", _text(evidence.get("events_word")) or "events"),
        )
        if _is_count(evidence.get(key))
    ]
    if counts:
        lines.append("counts: " + ", ".join(counts))
    interval = _interval(evidence)
    if interval:
        lines.append(interval)
    lines.extend(_charts(evidence))
    alarm = evidence.get("alarm")
    if isinstance(alarm, dict) and _is_count(alarm.get("position")):
        at = f" (#{alarm['id']})" if _is_count(alarm.get("id")) else ""
        lines.append(
            f"alarm at {counted[:-1] if counted.endswith('s') else counted} {alarm['position']}{at}"
        )
    for key, label in (
        ("review_ids", "reviews"),
        ("violation_review_ids", "violating reviews"),
        ("conversation_ids", "conversations"),
        ("escalated_conversation_ids", "escalated conversations"),
    ):
        ids = evidence.get(key)
        if isinstance(ids, list) and ids:
            total = evidence.get(f"{key}_total")
            total = total if isinstance(total, int) else len(ids)
            shown = ", ".join(f"#{i}" for i in ids[:SHOWN_IDS])
            more = f" (of {total})" if total > min(len(ids), SHOWN_IDS) else ""
            lines.append(f"{label}: {shown}{more}")
    return tuple(lines)


def status_line(card: ApprovalCard, *, person: Render = str) -> str:
    """How the action stands now, in one sentence."""
    owner, backup = person(card.owner_email), person(card.backup_email)
    decided = ""
    if card.decision is not None and card.decided_by is not None:
        by = person(card.decided_by)
        decided = (
            f"Approved by {by} at {_time(card.decided_at)}"
            if card.decision == Decision.approve
            else f"Rejected by {by} at {_time(card.decided_at)}: {card.decision_reason or ''}"
        )
    match card.status:
        case ActionStatus.proposed:
            return "Proposed; the approval window is not open yet."
        case ActionStatus.awaiting_approval if (
            first_approver(owner_proposed=card.owner_proposed) is ApproverRole.backup
        ):
            return f"Waiting for {backup} until {_time(card.final_deadline)} ({owner} proposed it)."
        case ActionStatus.awaiting_approval:
            return (
                f"Waiting for {owner} until {_time(card.owner_deadline)}; "
                f"then {backup} until {_time(card.final_deadline)}."
            )
        case ActionStatus.escalated:
            return (
                f"Escalated to {backup} at {_time(card.escalated_at)}: {owner} did not answer "
                f"in time. {backup} decides by {_time(card.final_deadline)}."
            )
        case ActionStatus.expired:
            return f"Expired: nobody decided by {_time(card.final_deadline)}. Nothing was deployed."
        case ActionStatus.cancelled:
            return "Cancelled: nothing will be deployed."
        case ActionStatus.executing:
            return f"{decided}. Deploying {card.to_version}…"
        case ActionStatus.succeeded:
            return f"{decided}. {card.to_version} is live."
        case ActionStatus.failed:
            return f"{decided}. The {card.kind} failed; see the thread."
        case _:
            return f"{decided}."


def result_line(card: ApprovalCard) -> str | None:
    """The execution result for the thread once it is known, else None."""
    if card.status == ActionStatus.succeeded:
        return f"{card.kind.capitalize()} done: {card.to_version} is live. {card.outcome_detail}"
    if card.status == ActionStatus.failed:
        return f"{card.kind.capitalize()} failed: {card.outcome_detail or 'no detail recorded'}"
    return None


def _charts(evidence: dict[str, Any]) -> list[str]:
    """One line per chart of a CUSUM bank: where it stands against its threshold."""
    charts = evidence.get("charts")
    if not isinstance(charts, list):
        return []
    lines = []
    for chart in charts[:SHOWN_IDS]:
        if not isinstance(chart, dict) or not _is_count(chart.get("threshold")):
            continue
        rate = chart.get("degraded_rate")
        name = f"chart for a {rate:.1%} rate" if isinstance(rate, float) else "chart"
        since = chart.get("events_since_change")
        tail = f", {since} since its change point" if _is_count(since) else ""
        lines.append(f"{name}: {_num(chart.get('value'))} of {_num(chart['threshold'])}{tail}")
    return lines


def _is_count(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _interval(evidence: dict[str, Any]) -> str | None:
    confidence = evidence.get("confidence")
    level = f" at {confidence:.0%} confidence" if isinstance(confidence, float) else ""
    if isinstance(evidence.get("wilson_lower"), int | float):
        return f"one-sided lower bound {_num(evidence['wilson_lower'])}{level}"
    lower, upper = evidence.get("lower_bound"), evidence.get("upper_bound")
    if isinstance(lower, int | float) or isinstance(upper, int | float):
        return f"test bounds [{_num(lower)}, {_num(upper)}]" + (
            f", log-likelihood ratio {_num(evidence['llr'])}"
            if isinstance(evidence.get("llr"), int | float)
            else ""
        )
    for key in ("lower_bound_ms", "p95_lower_ms", "lower_ms"):
        if isinstance(evidence.get(key), int | float):
            return f"one-sided lower bound {_num(evidence[key])} ms{level}"
    return None


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _time(moment: datetime | None) -> str:
    return f"{moment:%H:%M} UTC on {moment:%Y-%m-%d}" if moment else "its deadline"
