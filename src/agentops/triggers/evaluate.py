"""Evaluate one written trigger against reviewed outcomes and conversation signals."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from agentops.triggers.config import (
    AnyTrigger,
    EscalationRateTrigger,
    LatencyP95Trigger,
    PolicyAdherenceTrigger,
)
from agentops.triggers.statistics import (
    SprtMonitorResult,
    SprtResult,
    quantile,
    quantile_lower_bound,
    sprt_monitor,
    wilson_lower_bound,
)

TriggerOutcome = Literal["ok", "breach", "insufficient_data"]

# Evidence keeps every id it used, up to this many; the total is always recorded.
MAX_EVIDENCE_IDS = 500
LATENCY_QUANTILE = 0.95


@dataclass(frozen=True)
class ReviewedOutcome:
    """One submitted human review: did the conversation violate the policy?"""

    review_id: int
    conversation_id: int
    violation: bool
    submitted_at: datetime


@dataclass(frozen=True)
class ConversationSignal:
    """The automatic signals of one conversation."""

    conversation_id: int
    escalated: bool
    latency_ms: int | None
    started_at: datetime | None = None


@dataclass(frozen=True)
class TriggerResult:
    """A trigger's verdict; statistic is the number compared with threshold."""

    name: str
    kind: str
    outcome: TriggerOutcome
    statistic: float | None
    threshold: float | None
    evidence: dict[str, Any]


def evaluate_trigger(
    trigger: AnyTrigger,
    *,
    reviews: Sequence[ReviewedOutcome],
    conversations: Sequence[ConversationSignal],
) -> TriggerResult:
    """Apply one trigger to the data it needs and explain the verdict in the evidence."""
    if isinstance(trigger, PolicyAdherenceTrigger):
        return _policy_adherence(trigger, reviews)
    if isinstance(trigger, EscalationRateTrigger):
        return _with_window(trigger, _escalation_rate(trigger, recent(conversations, trigger)))
    if isinstance(trigger, LatencyP95Trigger):
        return _with_window(trigger, _latency_p95(trigger, recent(conversations, trigger)))
    raise TypeError(f"unknown trigger type {type(trigger).__name__}")


def recent(
    conversations: Sequence[ConversationSignal], trigger: EscalationRateTrigger | LatencyP95Trigger
) -> list[ConversationSignal]:
    """The conversations inside the trigger's window, ending at the version's latest one."""
    dated = [signal.started_at for signal in conversations if signal.started_at is not None]
    if trigger.window_hours is None or not dated:
        return list(conversations)
    # Anchored on the data, not the clock, so a replayed or imported history evaluates alike.
    start = max(dated) - timedelta(hours=trigger.window_hours)
    return [s for s in conversations if s.started_at is None or s.started_at > start]


def _with_window(
    trigger: EscalationRateTrigger | LatencyP95Trigger, result: TriggerResult
) -> TriggerResult:
    if trigger.window_hours is None:
        return result
    evidence = {**result.evidence, "window_hours": trigger.window_hours}
    evidence["summary"] = f"last {trigger.window_hours:g} h of traffic: {evidence['summary']}"
    return replace(result, evidence=evidence)


def _policy_adherence(
    trigger: PolicyAdherenceTrigger, reviews: Sequence[ReviewedOutcome]
) -> TriggerResult:
    # The sequential test is only valid over reviews in the order they were submitted.
    ordered = sorted(reviews, key=lambda review: (review.submitted_at, review.review_id))
    monitor = sprt_monitor(
        [review.violation for review in ordered],
        p0=trigger.p0,
        p1=trigger.p1,
        alpha=trigger.alpha,
        beta=trigger.beta,
    )
    outcome: TriggerOutcome = {
        "accept_h1": "breach",
        "accept_h0": "ok",
        "continue": "insufficient_data",
    }[monitor.decision]
    # The reviews behind the verdict: the alarm's or latest all-clear's run, else all so far.
    result = monitor.deciding or monitor.current
    first = monitor.deciding_start if monitor.deciding else monitor.current_start
    used = ordered[first : first + result.n_used]
    deciding = used[-1] if monitor.deciding and used else None
    current = monitor.current
    evidence = {
        "summary": _policy_summary(trigger, outcome, result, monitor),
        "test": "sprt, restarted after each all-clear",
        "p0": trigger.p0,
        "p1": trigger.p1,
        "alpha": trigger.alpha,
        "beta": trigger.beta,
        "decision": monitor.decision,
        "llr": result.llr,
        "upper_bound": result.upper,
        "lower_bound": result.lower,
        "n_used": result.n_used,
        "all_clears": monitor.clears,
        "reviews_total": len(ordered),
        "violations": result.violations,
        "violations_total": sum(review.violation for review in ordered),
        "violation_rate": result.violations / result.n_used if result.n_used else None,
        "reviews_since_all_clear": current.n_used if outcome == "ok" else None,
        "violations_since_all_clear": current.violations if outcome == "ok" else None,
        "decided_at_review_id": deciding.review_id if deciding else None,
        "decided_at": deciding.submitted_at.isoformat() if deciding else None,
        **_ids("review_ids", [review.review_id for review in used]),
        **_ids("conversation_ids", [review.conversation_id for review in used]),
        **_ids("violation_review_ids", [review.review_id for review in used if review.violation]),
    }
    return TriggerResult(
        trigger.name, trigger.kind, outcome, current.llr, current.upper, _json_safe(evidence)
    )


def _policy_summary(
    trigger: PolicyAdherenceTrigger,
    outcome: TriggerOutcome,
    result: SprtResult,
    monitor: SprtMonitorResult,
) -> str:
    counted = f"{result.violations} violations in {result.n_used} reviews"
    if outcome == "breach":
        restart = f" after {monitor.clears} all-clear(s)" if monitor.clears else ""
        return (
            f"violation rate looks like p1={trigger.p1} rather than p0={trigger.p0}: "
            f"{counted}{restart}"
        )
    if outcome == "ok":
        since = monitor.current
        return (
            f"violation rate consistent with p0={trigger.p0}: {counted}; since then "
            f"{since.violations} violations in {since.n_used} reviews, no alarm"
        )
    return (
        f"no decision yet: {counted} (log-likelihood ratio {result.llr:.3f} between "
        f"{result.lower:.3f} and {result.upper:.3f})"
    )


def _escalation_rate(
    trigger: EscalationRateTrigger, conversations: Sequence[ConversationSignal]
) -> TriggerResult:
    n = len(conversations)
    escalated = [signal.conversation_id for signal in conversations if signal.escalated]
    # One-sided: a breach claims the rate is above max_rate with probability `confidence`.
    lower = wilson_lower_bound(len(escalated), n, confidence=trigger.confidence)
    statistic = lower if n else None
    bound = f"Wilson one-sided {_percent(trigger.confidence)} lower bound {lower:.3f}"
    if n < trigger.min_conversations:
        outcome: TriggerOutcome = "insufficient_data"
        summary = f"only {n} conversations; at least {trigger.min_conversations} are needed"
    elif lower > trigger.max_rate:
        outcome = "breach"
        summary = (
            f"escalation rate {len(escalated)}/{n}: {bound} exceeds max_rate {trigger.max_rate}"
        )
    else:
        outcome = "ok"
        summary = (
            f"escalation rate {len(escalated)}/{n}: {bound} "
            f"does not exceed max_rate {trigger.max_rate}"
        )
    evidence = {
        "summary": summary,
        "test": "wilson_one_sided_lower_bound",
        "max_rate": trigger.max_rate,
        "min_conversations": trigger.min_conversations,
        "confidence": trigger.confidence,
        "conversations": n,
        "escalated": len(escalated),
        "rate": len(escalated) / n if n else None,
        "wilson_lower": lower if n else None,
        **_ids("conversation_ids", [signal.conversation_id for signal in conversations]),
        **_ids("escalated_conversation_ids", escalated),
    }
    return TriggerResult(
        trigger.name, trigger.kind, outcome, statistic, trigger.max_rate, _json_safe(evidence)
    )


def _latency_p95(
    trigger: LatencyP95Trigger, conversations: Sequence[ConversationSignal]
) -> TriggerResult:
    timed = [signal for signal in conversations if signal.latency_ms is not None]
    latencies = [float(signal.latency_ms) for signal in timed if signal.latency_ms is not None]
    n = len(latencies)
    # One-sided: a breach claims p95 is above max_ms with probability `confidence`.
    lower = quantile_lower_bound(latencies, LATENCY_QUANTILE, confidence=trigger.confidence)
    point = quantile(latencies, LATENCY_QUANTILE) if latencies else None
    if n < trigger.min_conversations or math.isinf(lower):
        outcome: TriggerOutcome = "insufficient_data"
        summary = (
            f"only {n} conversations with a latency; at least "
            f"{trigger.min_conversations} are needed"
        )
    elif lower > trigger.max_ms:
        outcome = "breach"
        summary = (
            f"p95 latency {point:.0f} ms over {n} conversations: one-sided "
            f"{_percent(trigger.confidence)} lower bound {lower:.0f} ms exceeds max_ms "
            f"{trigger.max_ms:.0f}"
        )
    else:
        outcome = "ok"
        summary = (
            f"p95 latency {point:.0f} ms over {n} conversations: one-sided "
            f"{_percent(trigger.confidence)} lower bound {lower:.0f} ms does not exceed "
            f"max_ms {trigger.max_ms:.0f}"
        )
    evidence = {
        "summary": summary,
        "test": "order_statistic_one_sided_lower_bound",
        "quantile": LATENCY_QUANTILE,
        "max_ms": trigger.max_ms,
        "min_conversations": trigger.min_conversations,
        "confidence": trigger.confidence,
        "conversations": n,
        "conversations_without_latency": len(conversations) - n,
        "p95_ms": point,
        "p95_lower_ms": lower,
        "max_observed_ms": max(latencies) if latencies else None,
        **_ids("conversation_ids", [signal.conversation_id for signal in timed]),
    }
    statistic = None if math.isinf(lower) else lower
    return TriggerResult(
        trigger.name, trigger.kind, outcome, statistic, trigger.max_ms, _json_safe(evidence)
    )


def _percent(confidence: float) -> str:
    # "95%", but "97.5%" rather than a rounded "98%" for a level that is not a whole percent.
    return f"{confidence * 100:.10g}%"


def _ids(key: str, ids: list[int]) -> dict[str, Any]:
    return {key: ids[:MAX_EVIDENCE_IDS], f"{key}_total": len(ids)}


def _json_safe(evidence: dict[str, Any]) -> dict[str, Any]:
    # Strict JSON (and PostgreSQL's json type) has no infinities: an unbounded side is null.
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in evidence.items()
    }
