"""Replay an agent's stored history through a trigger file: when would each trigger fire?

Writes nothing: each version's charts start afresh at its first review or conversation
and read its whole stored history in time order, as the live evaluations would have.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from agentops.store.models import (
    Action,
    ActionKind,
    Agent,
    AgentVersion,
    Evaluation,
    utcnow,
)
from agentops.triggers.config import TriggerFile
from agentops.triggers.service import HealthyRateUnknown, new_observations, start_state


@dataclass(frozen=True)
class BacktestAlarm:
    """Where a trigger would have fired: the observation that crossed the threshold."""

    trigger: str
    unit: str
    position: int
    observation_id: int
    at: datetime


@dataclass(frozen=True)
class RealDecision:
    """The rollback that really happened to a version.

    proposed_at is the wall clock when it was proposed; alarm_at is the time, in the data,
    of the observation whose evaluation proposed it (None for a rollback asked for by hand).
    Only alarm_at compares with a replayed alarm's time: replayed or simulated data carry
    their own times, which need not be near the wall clock.
    """

    action_id: int
    proposed_at: datetime
    decided_at: datetime | None
    reason: str
    alarm_at: datetime | None = None
    alarm_trigger: str | None = None


@dataclass
class VersionBacktest:
    """One version's replay: alarms, quiet triggers and the real rollback if any."""

    version: str
    status: str
    observations: dict[str, int] = field(default_factory=dict)
    alarms: list[BacktestAlarm] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    real: RealDecision | None = None

    @property
    def first_alarm(self) -> BacktestAlarm | None:
        """The earliest alarm on this version."""
        return min(self.alarms, key=lambda alarm: alarm.at, default=None)

    def difference(self, alarm: BacktestAlarm | None = None) -> timedelta | None:
        """An alarm (default the first) minus the real alarm, in data time: negative is earlier.

        None when the real rollback came from no alarm: its wall-clock time does not
        compare with the data's times.
        """
        chosen = alarm or self.first_alarm
        if chosen is None or self.real is None or self.real.alarm_at is None:
            return None
        return chosen.at - self.real.alarm_at


def backtest(
    session: Session, *, agent: Agent, triggers: TriggerFile, since: datetime | None = None
) -> list[VersionBacktest]:
    """Replay every version of the agent, oldest first, through the triggers."""
    versions = session.exec(
        select(AgentVersion)
        .where(AgentVersion.agent_id == agent.id)
        .order_by(col(AgentVersion.created_at), col(AgentVersion.id))
    ).all()
    # Everything stored counts, even what is dated ahead of the clock.
    until = utcnow() + timedelta(days=36525)
    results = []
    for version in versions:
        replay = VersionBacktest(version.version, str(version.status))
        for trigger in triggers.triggers:
            observations, _ = new_observations(
                session,
                trigger=trigger,
                version=version,
                as_of=until,
                cursor=(None, None, None),
            )
            if since is not None:
                observations = [o for o in observations if o.at >= since]
            replay.observations[trigger.name] = len(observations)
            if not observations:
                continue
            try:
                state = start_state(
                    session,
                    triggers=triggers,
                    trigger=trigger,
                    agent=agent,
                    version=version,
                    before=observations[0].at,
                )
            except HealthyRateUnknown as exc:
                replay.skipped[trigger.name] = str(exc)
                continue
            state.feed(observations)
            if state.alarm is not None:
                replay.alarms.append(
                    BacktestAlarm(
                        trigger=trigger.name,
                        unit=trigger.unit,
                        position=int(state.alarm["position"]),
                        observation_id=int(state.alarm["id"]),
                        at=datetime.fromisoformat(state.alarm["at"]),
                    )
                )
        replay.real = _real_rollback(session, version=version)
        results.append(replay)
    return results


def _real_rollback(session: Session, *, version: AgentVersion) -> RealDecision | None:
    action = session.exec(
        select(Action)
        .where(Action.from_version_id == version.id, Action.kind == ActionKind.rollback)
        .order_by(col(Action.id))
    ).first()
    if action is None or action.id is None:
        return None
    alarm_at, trigger = None, None
    if action.evaluation_id is not None:
        evaluation = session.get(Evaluation, action.evaluation_id)
        alarm = (evaluation.evidence or {}).get("alarm") if evaluation else None
        if alarm and alarm.get("at"):
            alarm_at = datetime.fromisoformat(alarm["at"])
            if alarm_at.tzinfo is None:
                alarm_at = alarm_at.replace(tzinfo=UTC)
            trigger = evaluation.trigger_name if evaluation else None
    return RealDecision(
        action.id, action.created_at, action.decided_at, action.reason, alarm_at, trigger
    )
