"""HttpDeployer against a real fake deployer served by uvicorn on 127.0.0.1."""

import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from agentops.actions.deployer import DeployerError, HttpDeployer
from factories import FakeDeployer, serve, unreachable_url


@pytest.fixture
def fake() -> FakeDeployer:
    return FakeDeployer(serving={"airline": "v2"})


@pytest.fixture
def deployer_url(fake: FakeDeployer) -> Iterator[str]:
    with serve(fake.app) as url:
        yield url


def test_deploy_then_wait_until_healthy(fake: FakeDeployer, deployer_url: str) -> None:
    with HttpDeployer(deployer_url + "/") as deployer:
        deployment_id = deployer.deploy(agent="airline", version="v1", action_id=7)
        health = deployer.wait_until_healthy(
            agent="airline", version="v1", timeout_s=5, poll_s=0.05
        )
    assert deployment_id.startswith("dep-")
    assert fake.deployments == [{"agent": "airline", "version": "v1", "action_id": 7}]
    assert health.healthy
    assert health.observed_version == "v1"
    assert health.checks == fake.settle_checks
    assert "serving v1" in health.detail


def test_unhealthy_version_times_out_with_detail(fake: FakeDeployer, deployer_url: str) -> None:
    fake.healthy = False
    with HttpDeployer(deployer_url) as deployer:
        deployer.deploy(agent="airline", version="v1", action_id=1)
        started = time.monotonic()
        health = deployer.wait_until_healthy(
            agent="airline", version="v1", timeout_s=0.5, poll_s=0.05
        )
    assert time.monotonic() - started < 2
    assert not health.healthy
    assert health.observed_version == "v1"
    assert health.checks > 2
    assert "did not become healthy on v1 within 0.5s" in health.detail
    assert "healthy=False" in health.detail


def test_wrong_version_is_not_healthy(fake: FakeDeployer, deployer_url: str) -> None:
    with HttpDeployer(deployer_url) as deployer:
        health = deployer.wait_until_healthy(
            agent="airline", version="v1", timeout_s=0.3, poll_s=0.05
        )
    assert not health.healthy
    assert health.observed_version == "v2"


def test_unknown_agent_health_reports_the_http_error(deployer_url: str) -> None:
    with HttpDeployer(deployer_url) as deployer:
        health = deployer.wait_until_healthy(
            agent="hotel", version="v1", timeout_s=0.2, poll_s=0.05
        )
        with pytest.raises(DeployerError, match="HTTP 404"):
            deployer.check_health(agent="hotel")
    assert not health.healthy
    assert health.observed_version is None
    assert "HTTP 404" in health.detail


def test_refused_deployment_raises(fake: FakeDeployer, deployer_url: str) -> None:
    fake.refuse = True
    with (
        HttpDeployer(deployer_url) as deployer,
        pytest.raises(DeployerError, match=r"refused to deploy airline v1: HTTP 409 .*frozen"),
    ):
        deployer.deploy(agent="airline", version="v1", action_id=1)
    assert fake.deployments == []


def test_contract_violation_is_reported() -> None:
    app = FastAPI()

    @app.post("/deployments")
    def accept_without_id() -> JSONResponse:
        return JSONResponse({"status": "accepted"}, status_code=202)

    with (
        serve(app) as url,
        HttpDeployer(url) as deployer,
        pytest.raises(DeployerError, match="without a deployment_id"),
    ):
        deployer.deploy(agent="airline", version="v1", action_id=1)


def test_unreachable_deployer_is_named() -> None:
    url = unreachable_url()
    with HttpDeployer(url, timeout=2) as deployer:
        with pytest.raises(DeployerError, match=f"deployer at {url} is unreachable"):
            deployer.deploy(agent="airline", version="v1", action_id=1)
        health = deployer.wait_until_healthy(agent="airline", version="v1", timeout_s=0.1)
    assert not health.healthy
    assert "is unreachable" in health.detail
