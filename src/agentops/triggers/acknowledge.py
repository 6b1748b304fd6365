"""Acknowledge a false alarm: the owner rejected a rollback because the charts were wrong.

Imports no actions code, so the reject path in actions can call it without a cycle.
"""

from sqlmodel import Session, col, select

from agentops.audit.service import record_event
from agentops.store.models import Action, AgentVersion, TriggerChart, utcnow
from agentops.triggers.evaluate import TriggerState

# The reason an owner gives when rejecting a rollback the charts raised by mistake.
FALSE_ALARM_REASON = "false alarm"


def is_false_alarm(reason: str | None) -> bool:
    """True when a rejection's reason says the alarm was false ("false alarm", any case)."""
    return (reason or "").strip().strip(".!").lower() == FALSE_ALARM_REASON


def acknowledge_false_alarm(session: Session, *, action: Action, actor: str) -> list[str]:
    """Reset the alarmed charts behind a rejected rollback and record it; returns their names.

    The charts of every trigger that had fired on the action's version start again from
    zero, so the version is watched afresh and a second breach proposes a new rollback.
    """
    version = session.get(AgentVersion, action.from_version_id)
    assert version is not None  # the action's foreign key
    # Locked: an evaluation running meanwhile must not write back the alarmed state.
    charts = session.exec(
        select(TriggerChart)
        .where(TriggerChart.agent_version_id == version.id)
        .order_by(col(TriggerChart.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    reset: list[str] = []
    for chart in charts:
        state = TriggerState.from_json(chart.state)
        if state.alarm is None:
            continue
        alarm = state.alarm
        # Where in the stream it was acknowledged, for a replay to reset at the same point.
        mark = None
        if chart.cursor_at is not None and chart.cursor_id is not None:
            mark = (chart.cursor_at, chart.cursor_id)
        state.reset(mark=mark)
        chart.state = state.to_json()
        chart.updated_at = utcnow()
        session.add(chart)
        reset.append(chart.trigger_name)
        record_event(
            session,
            actor=actor,
            kind="triggers.false_alarm_acknowledged",
            entity_type="trigger_chart",
            entity_id=chart.id,
            payload={
                "action_id": action.id,
                "version": version.version,
                "trigger": chart.trigger_name,
                "trigger_set_id": chart.trigger_set_id,
                "alarm_position": alarm["position"],
                "alarm_id": alarm["id"],
                "resets": state.resets,
            },
        )
    session.flush()
    return reset

