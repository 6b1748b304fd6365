"""The deployer contract's rollout fields: parsed when present, optional when absent, obeyed.

A real fake deployer on 127.0.0.1, the test database, and the real sweeper.
"""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.deployer import DeployerError, HttpDeployer, LiveState, Rollout
from agentops.actions.executor import execute_approved
from agentops.actions.sweeper import sweep
from agentops.demo.fake_services import FakeServices
from agentops.store.models import ActionStatus
from factories import FakeDeployer, serve
from test_recovery import (
    NEVER_SETTLES,
    approve,
    event_kinds,
    finish_rollout,
    propose,
    read_action,
    store_live,
    two_good_fleet,
)


def test_an_old_style_live_answer_still_reads_with_no_rollout() -> None:
    fake = FakeDeployer(serving={"airline": "v2"})
    with serve(fake.app) as url, HttpDeployer(url) as deployer:
        raw = httpx.get(f"{url}/agents/airline/live").json()
        state = deployer.live(agent="airline")
    assert raw == {"agent": "airline", "version": "v2", "healthy": True}
    assert state == LiveState(version="v2", healthy=True, target=None, rollout=None)
    assert not state.rolling_out and state.serves_healthily


def test_the_new_fields_are_read_while_rolling_out_and_once_settled() -> None:
    fake = FakeDeployer(serving={"airline": "v2"}, settle_checks=3, reports_rollout=True)
    with serve(fake.app) as url, HttpDeployer(url) as deployer:
        deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
        during = deployer.live(agent="airline")
        assert during == LiveState(
            version="v2", healthy=True, target="v1", rollout=Rollout.rolling_out
        )
        assert "rollout rolling_out towards v1" in during.describe()
        finish_rollout(fake, "airline")
        after = deployer.live(agent="airline")
    assert after == LiveState(version="v1", healthy=True, target="v1", rollout=Rollout.settled)


def test_an_unknown_rollout_value_is_a_contract_error() -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/agents/{agent}/live")
    def live(agent: str) -> dict[str, object]:
        return {"agent": agent, "version": "v1", "healthy": True, "rollout": "maybe"}

    with (
        serve(app) as url,
        HttpDeployer(url) as deployer,
        pytest.raises(DeployerError, match="rollout='maybe'; expected one of rolling_out"),
    ):
        deployer.live(agent="airline")


def test_the_demo_deployer_reports_its_rollout() -> None:
    with FakeServices(rollout_delay_s=30) as services:
        services.set_live_version("airline", "v2")
        with HttpDeployer(services.url) as deployer:
            assert deployer.live(agent="airline").rollout == Rollout.settled
            deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
            state = deployer.live(agent="airline")
    assert (state.version, state.target, state.rollout) == ("v2", "v1", Rollout.rolling_out)


def rolling_fake() -> FakeDeployer:
    """A deployer on the newer contract whose rollouts never finish by themselves."""
    return FakeDeployer(
        serving={"airline": "v2"}, settle_checks=NEVER_SETTLES, reports_rollout=True
    )


def _stuck_execution(engine: Engine, fake: FakeDeployer, url: str) -> int:
    """An approved rollback v2 -> v1 whose executor gave up while the deployer rolls out."""
    with Session(engine) as session:
        two_good_fleet(session)
    action_id = propose(engine)
    approve(engine, action_id)
    with HttpDeployer(url) as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=0.3
        )
    assert action.status == ActionStatus.executing, action.outcome_detail
    return action_id


def test_the_sweeper_waits_while_the_deployer_rolls_out(engine: Engine) -> None:
    fake = rolling_fake()
    with serve(fake.app) as url:
        action_id = _stuck_execution(engine, fake, url)
        late = read_action(engine, action_id).execution_started_at + timedelta(seconds=601)
        with HttpDeployer(url) as deployer:
            waiting = sweep(engine, deployer=deployer, deploy_timeout_s=600, now=late)
            assert waiting.reconciled == {}
            assert "still rolling out" in waiting.unsettled[action_id]
            assert "towards v1" in waiting.unsettled[action_id]
            assert waiting.followed == {}  # an agent with an action in flight is not followed
            assert read_action(engine, action_id).status == ActionStatus.executing
            assert store_live(engine) == "v2"

            finish_rollout(fake, "airline")
            settled = sweep(engine, deployer=deployer, deploy_timeout_s=600, now=late)
        assert settled.reconciled == {action_id: "succeeded"}
    assert fake.posts == 1
    assert store_live(engine) == "v1"
    assert event_kinds(engine, action_id)[-1] == "action.executed"


def test_the_old_contract_is_still_judged_on_what_serves(engine: Engine) -> None:
    """Without rollout fields the executor cannot tell 'still rolling out': it settles."""
    fake = FakeDeployer(serving={"airline": "v2"}, settle_checks=NEVER_SETTLES)
    with Session(engine) as session:
        two_good_fleet(session)
    action_id = propose(engine)
    approve(engine, action_id)
    with serve(fake.app) as url, HttpDeployer(url) as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=0.3
        )
    assert action.status == ActionStatus.failed
    assert action.outcome_detail is not None
    assert "the deployer serves v2, so v1 is not live" in action.outcome_detail


def test_a_failed_rollout_takes_the_failure_path(engine: Engine) -> None:
    fake = rolling_fake()
    fake.failed_rollouts.add("v1")
    with Session(engine) as session:
        two_good_fleet(session)
    action_id = propose(engine)
    approve(engine, action_id)
    with serve(fake.app) as url, HttpDeployer(url) as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=0.3
        )
    assert action.status == ActionStatus.failed
    assert action.outcome_detail is not None
    assert "serves v2; the rollout failed, so v1 is not live" in action.outcome_detail
    assert store_live(engine) == "v2"


def test_a_rollout_that_fails_after_going_live_is_reverted_by_the_sweeper(
    engine: Engine,
) -> None:
    fake = rolling_fake()
    with serve(fake.app) as url:
        action_id = _stuck_execution(engine, fake, url)
        finish_rollout(fake, "airline")  # v1 now serves, but the deployer calls it failed
        fake.failed_rollouts.add("v1")
        fake.settle_checks = 1
        late = read_action(engine, action_id).execution_started_at + timedelta(seconds=601)
        with HttpDeployer(url) as deployer:
            report = sweep(
                engine, deployer=deployer, deploy_timeout_s=600, health_timeout_s=5, now=late
            )
    assert report.reconciled == {action_id: "failed"}
    assert [d["version"] for d in fake.deployments] == ["v1", "v2"]
    assert fake.serving["airline"] == store_live(engine) == "v2"
    assert "action.reverting" in event_kinds(engine, action_id)
