"""What every channel must hold a verdict to before it is saved: pure rules, no I/O."""

from collections.abc import Mapping

from agentops.errors import RuleViolation
from agentops.review.queue import VIOLATING_SEVERITIES
from agentops.store.models import Severity


class NotesRequired(RuleViolation):
    """A failed critical or major criterion came without its reason."""

    def __init__(self, criteria: list[str]) -> None:
        super().__init__(
            "a failed critical or major criterion needs a note: " + ", ".join(criteria)
        )
        self.criteria = criteria


def missing_notes(
    findings: Mapping[str, bool],
    severities: Mapping[str, Severity],
    notes: Mapping[str, str],
) -> list[str]:
    """Failed critical or major criteria without a note: the verdict needs its reason."""
    return [
        key
        for key, passed in findings.items()
        if not passed
        and severities.get(key) in VIOLATING_SEVERITIES
        and not (notes.get(key) or "").strip()
    ]


def require_notes(
    findings: Mapping[str, bool],
    severities: Mapping[str, Severity],
    notes: Mapping[str, str],
) -> None:
    """Refuse (NotesRequired) a verdict failing a critical or major criterion without a note."""
    if missing := missing_notes(findings, severities, notes):
        raise NotesRequired(missing)
