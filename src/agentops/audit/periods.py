"""Read the moments people type: `30d` ago, `2026-11-01`, `2026-11-01T09:30`."""

import re
from datetime import UTC, datetime, timedelta

from agentops.errors import AgentOpsError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGO = re.compile(r"^(\d+)([smhdw])$")


class PeriodError(AgentOpsError):
    """A moment that cannot be read."""


def parse_moment(text: str, *, now: datetime, option: str = "--since") -> datetime:
    """A duration before now (30d, 12h, 2w) or an ISO date/time (UTC unless it says)."""
    cleaned = text.strip()
    match = _AGO.match(cleaned)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise PeriodError(
            f"{option} {text!r}: give a duration like 30d, 12h or 2w, "
            "or a date like 2026-11-01 (UTC)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
