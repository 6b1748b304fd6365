"""Readiness from the store: can it be reached, is the Slack outbox moving, do sweeps run."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from agentops.store.db import write_session
from agentops.store.models import Heartbeat, SlackOutbox, utcnow

# Heartbeat names: the sweep-actions flow, and the sweeper inside `agentops serve`.
FLOW_SWEEP = "flow:sweep-actions"
SERVE_SWEEP = "serve:sweeper"


@dataclass(frozen=True)
class Check:
    """One readiness check: its name, whether it passes, and what was seen."""

    name: str
    ok: bool
    detail: str


def beat(engine: Engine, *, name: str, now: datetime | None = None) -> None:
    """Note that the named recurring job just finished a round."""
    with write_session(engine) as session:
        row = session.get(Heartbeat, name)
        if row is None:
            session.add(Heartbeat(name=name, at=now or utcnow()))
        else:
            row.at = now or utcnow()
            session.add(row)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store writes UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _age(now: datetime, then: datetime) -> str:
    return f"{(now - _aware(then)).total_seconds():.0f} s ago"


def store_checks(
    engine: Engine,
    *,
    slack_enabled: bool,
    max_outbox_lag: timedelta,
    max_sweep_age: timedelta,
    now: datetime | None = None,
) -> list[Check]:
    """The store, the oldest unsent Slack message and the most recent sweep, as checks."""
    now = now or utcnow()
    try:
        with Session(engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            oldest = session.exec(
                select(func.min(SlackOutbox.created_at)).where(col(SlackOutbox.sent_at).is_(None))
            ).one()
            beats = {row.name: _aware(row.at) for row in session.exec(select(Heartbeat))}
    except Exception as exc:  # report, never crash the probe
        return [Check("store", False, f"unreachable: {exc.__class__.__name__}")]
    checks = [Check("store", True, "reachable")]
    if oldest is None:
        checks.append(Check("slack_outbox", True, "nothing waiting"))
    elif not slack_enabled:
        checks.append(Check("slack_outbox", True, "Slack not configured"))
    else:
        lag = now - _aware(oldest)
        checks.append(
            Check(
                "slack_outbox",
                lag <= max_outbox_lag,
                f"oldest unsent message queued {lag.total_seconds():.0f} s ago",
            )
        )
    if not beats:
        checks.append(Check("last_sweep", False, "no sweep has run yet"))
    else:
        name, latest = max(beats.items(), key=lambda item: item[1])
        checks.append(
            Check("last_sweep", now - latest <= max_sweep_age, f"{name}, {_age(now, latest)}")
        )
    return checks
