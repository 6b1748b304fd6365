"""The executor against a real fake deployer: secrets stay out of the trail, hangs post once."""

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.deployer import HttpDeployer
from agentops.actions.executor import execute_approved
from agentops.actions.service import decide, get_action
from agentops.agents.service import get_agent, live_version
from agentops.audit.chain import canonical_json
from agentops.audit.service import iter_events, verify_chain
from agentops.store.models import ActionStatus, Agent, Decision
from factories import OWNER, FakeDeployer, as_person, breach_rollback, degraded_fleet, serve

SECRET = "sup3r-secret-deployer-token"


@pytest.fixture
def approved(engine: Engine) -> int:
    """An owner-approved rollback of airline v2 to v1."""
    with Session(engine) as session:
        fleet = degraded_fleet(session)
        action = breach_rollback(session, fleet)
        decide(
            session,
            action_id=action.id,
            actor=as_person(session, OWNER),
            decision=Decision.approve,
            reason=None,
        )
        session.commit()
        return action.id


@pytest.fixture
def fake() -> FakeDeployer:
    return FakeDeployer(serving={"airline": "v2"}, settle_checks=1, token=SECRET)


@pytest.fixture
def url(fake: FakeDeployer) -> Iterator[str]:
    with serve(fake.app) as running:
        yield running


def test_a_secret_echoed_by_the_deployer_never_enters_the_trail(
    engine: Engine, approved: int, fake: FakeDeployer, url: str
) -> None:
    fake.refuse = fake.echo = True
    with HttpDeployer(url, token=SECRET) as deployer:
        action = execute_approved(
            engine, action_id=approved, deployer=deployer, health_timeout_s=2
        )
    assert action.status == ActionStatus.failed
    assert "HTTP 409" in (action.outcome_detail or "")
    with Session(engine) as session:
        trail = "".join(canonical_json(event.payload) for event in iter_events(session))
        assert SECRET not in trail and SECRET not in (action.outcome_detail or "")
        assert "***" in trail
        assert verify_chain(session) == []


def test_a_hanging_deployer_is_posted_once_and_the_store_follows_what_is_live(
    engine: Engine, approved: int, fake: FakeDeployer, url: str
) -> None:
    fake.hang_s = 1.0
    with HttpDeployer(url, token=SECRET, timeout=0.3) as deployer:
        action = execute_approved(
            engine, action_id=approved, deployer=deployer, health_timeout_s=2
        )
    assert fake.posts == 1
    # The hung request completed on the deployer's side: v1 went live after all.
    assert action.status == ActionStatus.succeeded
    assert fake.serving["airline"] == "v1"
    assert "unknown id" in (action.outcome_detail or "")
    with Session(engine) as session:
        live = live_version(session, agent=degraded_agent(session))
        assert live is not None
        assert live.version == fake.serving["airline"]
        assert get_action(session, action_id=approved).status == action.status


def degraded_agent(session: Session) -> Agent:
    """The fleet's agent, looked up afresh."""
    return get_agent(session, name="airline")


def test_without_a_deployer_nothing_is_deployed_and_the_reason_is_recorded(
    engine: Engine, approved: int
) -> None:
    action = execute_approved(engine, action_id=approved, deployer=None, health_timeout_s=1)
    assert action.status == ActionStatus.failed
    assert "no deployer configured" in (action.outcome_detail or "")
    with Session(engine) as session:
        live = live_version(session, agent=degraded_agent(session))
        assert live is not None and live.version == "v2"
