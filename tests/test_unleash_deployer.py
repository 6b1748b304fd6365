"""The Unleash deployer against a real Unleash server (npm unleash-server on PostgreSQL).

The server takes tens of seconds to migrate its fresh database, so one is started per
module; each test uses its own feature. What is served is read back through Unleash's
own client API (what SDKs fetch) and frontend API (Unleash's evaluation for a user).
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.executor import execute_approved
from agentops.actions.service import decide, propose_redeploy
from agentops.agents.actors import Channel, person_actor
from agentops.agents.service import ensure_person, ensure_version, get_agent
from agentops.deployers.config import parse_deployers_text
from agentops.deployers.routing import RoutedDeployer
from agentops.store.models import ActionStatus, Decision, Role
from factories import OWNER, as_person, breach_rollback, degraded_fleet
from test_deployer_kill import Target, kill_after_switch_then_sweep
from test_recovery import read_action, store_live
from unleash_server import (
    Unleash,
    client_api_variants,
    create_feature,
    frontend_variant,
    unleash,
)
from waiting import wait_for

RELEASE_MANAGER = "release.manager@example.com"  # proposes the redeploy; the owner approves
ENVIRONMENT = "development"  # the environment the backend and frontend tokens are for


@pytest.fixture(scope="module")
def unleash_server() -> Iterator[Unleash]:
    with unleash() as server:
        yield server


def _config(server: Unleash, feature: str) -> str:
    return (
        f"agents:\n  airline:\n    kind: unleash\n    url: {server.url}\n"
        f"    token_env: UNLEASH_ADMIN_TOKEN\n    feature: {feature}\n"
        f"    environment: {ENVIRONMENT}\n"
    )


def _served(server: Unleash, feature: str) -> str | None:
    """What Unleash hands out: the client API's one variant, checked against its evaluation."""
    variants = client_api_variants(server, feature)
    if len(variants) != 1:
        return None
    return variants[0]


def _approve(engine: Engine, action_id: int) -> None:
    with Session(engine) as session:
        decide(
            session,
            action_id=action_id,
            actor=as_person(session, OWNER),
            decision=Decision.approve,
            reason=None,
        )
        session.commit()


def test_the_demos_rollback_and_redeploy_go_through_unleash(
    engine: Engine, unleash_server: Unleash
) -> None:
    feature = f"airline-{uuid.uuid4().hex[:8]}"
    create_feature(unleash_server, feature, serving="v2", environment=ENVIRONMENT)
    config = parse_deployers_text(_config(unleash_server, feature), source="deployers.yaml")
    environ = {"UNLEASH_ADMIN_TOKEN": unleash_server.admin_token}
    with Session(engine) as session:  # the demo's fleet: v1 proved good, v2 degraded
        fleet = degraded_fleet(session)
        rollback_id = breach_rollback(session, fleet).id
        session.commit()
    _approve(engine, rollback_id)

    with RoutedDeployer(config, environ=environ) as deployer:
        assert deployer.live(agent="airline").version == "v2"
        rollback = execute_approved(
            engine, action_id=rollback_id, deployer=deployer, health_timeout_s=10
        )
        assert rollback.status == ActionStatus.succeeded, rollback.outcome_detail
        assert client_api_variants(unleash_server, feature) == ["v1"]
        # Unleash's frontend API serves from a cache it refreshes on its own clock.
        def users() -> list[str]:
            return [frontend_variant(unleash_server, feature, user_id=str(n)) for n in range(5)]

        wait_for(lambda: users() == ["v1"] * 5, what="the frontend API serving v1", timeout=30)
        assert store_live(engine) == "v1"

        with Session(engine) as session:  # the demo's release manager redeploys fixed v3
            agent = get_agent(session, name="airline")
            v3 = ensure_version(session, agent=agent, version="v3", actor="test")
            ensure_person(session, email=RELEASE_MANAGER, role=Role.owner)
            redeploy = propose_redeploy(
                session,
                agent=agent,
                version=v3,
                actor=person_actor(session, email=RELEASE_MANAGER, channel=Channel.cli),
                reason="v3 fixes the confirmation step that v2 skipped",
            )
            session.commit()
            redeploy_id = redeploy.id
        _approve(engine, redeploy_id)
        done = execute_approved(
            engine, action_id=redeploy_id, deployer=deployer, health_timeout_s=10
        )
        assert done.status == ActionStatus.succeeded, done.outcome_detail
        again = deployer.deploy(agent="airline", version="v3", action_id=0, idempotency_key="x")
    assert again.endswith("(already served)")
    assert client_api_variants(unleash_server, feature) == ["v3"]
    wait_for(
        lambda: frontend_variant(unleash_server, feature, user_id="alice") == "v3",
        what="the frontend API serving v3",
        timeout=30,
    )
    assert store_live(engine) == "v3"
    assert read_action(engine, rollback_id).status == ActionStatus.succeeded


def test_unleash_executor_killed_after_the_switch_is_reconciled(
    engine: Engine, database_url: str, tmp_path: Path, unleash_server: Unleash
) -> None:
    feature = f"airline-{uuid.uuid4().hex[:8]}"
    create_feature(unleash_server, feature, serving="v2", environment=ENVIRONMENT)
    target = Target(
        deployers_yaml=_config(unleash_server, feature),
        environ={"UNLEASH_ADMIN_TOKEN": unleash_server.admin_token},
        served=lambda: _served(unleash_server, feature),
    )
    kill_after_switch_then_sweep(engine, database_url, tmp_path, target)
    wait_for(
        lambda: frontend_variant(unleash_server, feature, user_id="bob") == "v1",
        what="the frontend API serving v1",
        timeout=30,
    )


def test_a_wrong_admin_token_is_reported_as_refused(unleash_server: Unleash) -> None:
    from agentops.actions.deployer import DeployerError

    feature = f"airline-{uuid.uuid4().hex[:8]}"
    create_feature(unleash_server, feature, serving="v2", environment=ENVIRONMENT)
    config = parse_deployers_text(_config(unleash_server, feature), source="deployers.yaml")
    wrong = {"UNLEASH_ADMIN_TOKEN": "*:*.not-the-admin-token-000000"}
    with (
        RoutedDeployer(config, environ=wrong) as deployer,
        pytest.raises(DeployerError, match="refused the credentials"),
    ):
        deployer.live(agent="airline")
    assert _served(unleash_server, feature) == "v2"
