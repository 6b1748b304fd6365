"""Review queue rules: claim leases and how findings become a verdict (pure)."""

from collections.abc import Mapping
from datetime import datetime, timedelta

from agentops.errors import RuleViolation
from agentops.store.models import ItemStatus, Severity

# Failing any of these makes the conversation a policy violation; minor failures are noted only.
VIOLATING_SEVERITIES = frozenset({Severity.critical, Severity.major})

# An item's review stage: None (one review), "second" (waiting for the blind second
# review), "adjudication" (a disagreement or a dispute) or "done".
STAGE_SECOND, STAGE_ADJUDICATION, STAGE_DONE = "second", "adjudication", "done"


def can_claim(status: ItemStatus, lease_expires_at: datetime | None, now: datetime) -> bool:
    """An item is claimable when open, or claimed by someone whose lease has run out."""
    if status == ItemStatus.open:
        return True
    if status == ItemStatus.claimed:
        return lease_expires_at is None or lease_expires_at <= now
    return False


def lease_until(now: datetime, minutes: int) -> datetime:
    """When a claim taken now stops protecting the item from other reviewers."""
    if minutes <= 0:
        raise RuleViolation(f"a review lease must last at least one minute, got {minutes}")
    return now + timedelta(minutes=minutes)


def stage_after_verdict(
    *, stage: str | None, needs_second: bool, violation: bool, first_violation: bool | None
) -> str:
    """The item's stage once this verdict is in: done, or the round it goes back to the queue for.

    A first verdict on an item drawn for double review waits for someone else's blind
    second one; a second verdict that disagrees with the first goes to adjudication.
    """
    if stage == STAGE_SECOND:
        return STAGE_ADJUDICATION if violation != first_violation else STAGE_DONE
    if stage == STAGE_ADJUDICATION:
        return STAGE_DONE
    return STAGE_SECOND if needs_second else STAGE_DONE


def validate_findings(criteria_keys: set[str], findings: Mapping[str, bool]) -> None:
    """Require a pass/fail judgement on every rubric criterion and nothing else."""
    missing = sorted(criteria_keys - findings.keys())
    unknown = sorted(findings.keys() - criteria_keys)
    problems = []
    if missing:
        problems.append(f"missing judgements for: {', '.join(missing)}")
    if unknown:
        known = ", ".join(sorted(criteria_keys))
        problems.append(f"unknown criteria: {', '.join(unknown)}; this rubric has: {known}")
    if problems:
        raise RuleViolation("findings do not match the rubric (" + "; ".join(problems) + ")")


def is_violation(findings: Mapping[str, bool], severities: Mapping[str, Severity]) -> bool:
    """True when any critical or major criterion failed."""
    return any(
        not passed and severities[key] in VIOLATING_SEVERITIES for key, passed in findings.items()
    )


# Ageing buckets, most urgent first: (label, upper bound of "due minus now").
AGEING_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("overdue > 1 h", timedelta(hours=-1)),
    ("overdue", timedelta(0)),
    ("due < 15 min", timedelta(minutes=15)),
    ("due later", None),
)


def ageing_bucket(due_at: datetime, now: datetime) -> str:
    """The ageing bucket of an unreviewed item due at `due_at`."""
    left = due_at - now
    for label, bound in AGEING_BUCKETS:
        if bound is None or left <= bound:
            return label
    raise AssertionError("the last bucket is unbounded")

