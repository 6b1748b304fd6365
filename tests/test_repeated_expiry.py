"""An expired rollback request is not re-proposed every cycle: back off, then tell operators."""

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.actions.repeats import backoff_after
from agentops.actions.service import propose_rollback
from agentops.audit.service import iter_events
from agentops.demo.fake_slack import FakeSlack
from agentops.settings import Settings
from agentops.slack.outbox import collect, deliver, start_outbox
from agentops.slack.service import make_web_client
from agentops.store.models import (
    Action,
    ActionStatus,
    Evaluation,
    Outcome,
    TriggerSet,
    utcnow,
)
from factories import BACKUP, OPS, OWNER, Fleet, degraded_fleet

HOUR = timedelta(hours=1)
OPS_CHANNEL = "COPS"


@pytest.mark.parametrize(
    ("unanswered", "expected"),
    [(0, timedelta(0)), (1, HOUR), (2, 2 * HOUR), (3, 4 * HOUR), (6, 24 * HOUR), (40, 24 * HOUR)],
)
def test_backoff_doubles_to_a_day(unanswered: int, expected: timedelta) -> None:
    assert backoff_after(unanswered, base=HOUR) == expected


def _breach(session: Session, fleet: Fleet, trigger: str = "policy-adherence") -> Action | None:
    trigger_set = session.exec(select(TriggerSet)).first()
    if trigger_set is None:
        trigger_set = TriggerSet(
            agent_id=fleet.agent.id,  # type: ignore[arg-type]
            version=1,
            content="{}",
            content_sha256="x",
            source="t",
        )
        session.add(trigger_set)
        session.flush()
    evaluation = Evaluation(
        agent_version_id=fleet.bad.id,  # type: ignore[arg-type]
        trigger_set_id=trigger_set.id,  # type: ignore[arg-type]
        trigger_name=trigger,
        kind="policy_adherence",
        outcome=Outcome.breach,
        statistic=3.1,
        threshold=2.9,
        evidence={"summary": "breach"},
    )
    session.add(evaluation)
    session.flush()
    return propose_rollback(
        session,
        agent=fleet.agent,
        from_version=fleet.bad,
        evaluation=evaluation,
        actor="flow:evaluate-triggers",
        reason="breach",
    )


def _expired(session: Session, action: Action, *, ago: timedelta) -> None:
    """The request lapsed `ago` (as the sweeper's expiry leaves it)."""
    action.status = ActionStatus.expired
    action.final_deadline = utcnow() - ago
    session.add(action)
    session.flush()


def _refusals(session: Session) -> list[str]:
    events = iter_events(session, kind_prefix="action.not_proposed")
    return [str(e.payload["reason"]) for e in events]


def test_next_proposal_waits_then_is_announced_as_the_nth(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine) as session:
        fleet = degraded_fleet(session)
        first = _breach(session, fleet)
        assert first is not None
        _expired(session, first, ago=timedelta(minutes=10))
        # Ten minutes after the expiry: within the hour's back-off, nothing is proposed.
        assert _breach(session, fleet) is None
        [reason] = _refusals(session)
        assert "1 request(s) to roll back v2 on policy-adherence expired unanswered" in reason
        # Another trigger's breach is not held back by this one's streak.
        other = _breach(session, fleet, trigger="escalation-rate")
        assert other is not None
        _expired(session, other, ago=timedelta(days=2))

        first.final_deadline = utcnow() - 2 * HOUR  # the back-off has passed
        session.add(first)
        second = _breach(session, fleet)
        assert second is not None and second.status == ActionStatus.proposed
        [repeated] = iter_events(session, kind_prefix="action.repeated_request")
        assert repeated.payload["nth"] == 2 and repeated.entity_id == str(second.id)

        # Two unanswered in a row: the wait doubles to two hours.
        _expired(session, second, ago=90 * timedelta(minutes=1))
        assert _breach(session, fleet) is None
        assert "2 request(s)" in _refusals(session)[-1]
        session.commit()


def test_operators_channel_hears_the_nth_request(engine: Engine) -> None:
    start_outbox(engine)
    with Session(engine) as session:
        fleet = degraded_fleet(session)
        for _ in range(2):
            action = _breach(session, fleet)
            assert action is not None
            _expired(session, action, ago=3 * HOUR)
        third = _breach(session, fleet)
        assert third is not None
        third_id = third.id
        session.commit()
    users = {OWNER: "UOWNER", BACKUP: "UBACKUP", OPS: "UOPS"}
    with FakeSlack(users=users) as slack:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token=slack.token,
            slack_signing_secret="s",
            slack_api_url=slack.api_url,
            slack_operators_channel=OPS_CHANNEL,
        )
        collect(engine)
        deliver(
            engine,
            make_web_client(settings),
            agent_channels={},
            operators_channel=settings.slack_operators_channel,
        )
        second, told = slack.messages_in(OPS_CHANNEL)  # one per repeated request
    assert "is the 2nd request; the previous 1 expired" in second.text
    assert f"action #{third_id} is the 3rd request" in told.text
    assert told.text.startswith("Rollback of airline v2 (policy-adherence): ")
    assert "the previous 2 expired with nobody answering" in told.text
