"""HttpDeployer against a real fake deployer served by uvicorn on 127.0.0.1."""

import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from agentops.actions.deployer import DeployerError, DeployerTimeout, HttpDeployer
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
        deployment_id = deployer.deploy(
            agent="airline", version="v1", action_id=7, idempotency_key="key-7"
        )
        health = deployer.wait_until_healthy(
            agent="airline", version="v1", timeout_s=5, poll_s=0.05
        )
    assert deployment_id.startswith("dep-")
    assert fake.deployments == [
        {"agent": "airline", "version": "v1", "action_id": 7, "idempotency_key": "key-7"}
    ]
    assert health.healthy
    assert health.observed_version == "v1"
    assert health.checks == fake.settle_checks
    assert "serving v1" in health.detail


def test_unhealthy_version_times_out_with_detail(fake: FakeDeployer, deployer_url: str) -> None:
    fake.healthy = False
    with HttpDeployer(deployer_url) as deployer:
        deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k-1")
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
        deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k-1")
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
        deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k-1")


def test_unreachable_deployer_is_named() -> None:
    url = unreachable_url()
    with HttpDeployer(url, timeout=2, backoff_s=0.01) as deployer:
        with pytest.raises(DeployerError, match=f"deployer at {url} is unreachable"):
            deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k-1")
        health = deployer.wait_until_healthy(agent="airline", version="v1", timeout_s=0.1)
    assert not health.healthy
    assert "is unreachable" in health.detail


def test_gateway_errors_are_retried_with_the_same_key_and_deploy_once() -> None:
    fake = FakeDeployer(serving={"airline": "v2"})
    failures = {"left": 2}
    app = FastAPI()

    @app.post("/deployments")
    async def flaky(request: Request) -> Response:
        if failures["left"]:
            failures["left"] -= 1
            return JSONResponse({"detail": "upstream busy"}, status_code=503)
        return await fake._deploy(request)

    with serve(app) as url, HttpDeployer(url, backoff_s=0.01) as deployer:
        first = deployer.deploy(agent="airline", version="v1", action_id=3, idempotency_key="k")
        again = deployer.deploy(agent="airline", version="v1", action_id=3, idempotency_key="k")
    assert first == again
    assert [d["idempotency_key"] for d in fake.deployments] == ["k"]


def test_a_hanging_deployer_is_posted_once_then_asked_what_is_live(fake: FakeDeployer) -> None:
    fake.hang_s = 1.5
    with serve(fake.app) as url, HttpDeployer(url, timeout=0.3) as deployer:
        with pytest.raises(DeployerTimeout, match="did not answer POST /deployments in time"):
            deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
        fake.hang_s = 0
        assert deployer.live(agent="airline").version == "v2"
    assert fake.posts == 1


@pytest.mark.parametrize(
    ("client", "accepted"),
    [
        ({"token": "t0ken-abc"}, True),
        ({"token": "wrong-token"}, False),
        ({}, False),
    ],
)
def test_bearer_token_authentication(client: dict[str, str], accepted: bool) -> None:
    fake = FakeDeployer(serving={"airline": "v2"}, token="t0ken-abc")
    with serve(fake.app) as url, HttpDeployer(url, **client) as deployer:
        if accepted:
            deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
        else:
            with pytest.raises(DeployerError, match="HTTP 401"):
                deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
    assert len(fake.deployments) == (1 if accepted else 0)


@pytest.mark.parametrize(("secret", "accepted"), [("s3cret-hmac", True), ("other", False)])
def test_hmac_signed_requests(secret: str, accepted: bool) -> None:
    fake = FakeDeployer(serving={"airline": "v2"}, hmac_secret="s3cret-hmac")
    with serve(fake.app) as url, HttpDeployer(url, hmac_secret=secret) as deployer:
        if accepted:
            deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
        else:
            with pytest.raises(DeployerError, match=r"HTTP 401 .*bad signature"):
                deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
    assert len(fake.deployments) == (1 if accepted else 0)


def test_a_token_echoed_in_an_error_body_is_masked(fake: FakeDeployer) -> None:
    fake.token = "sup3r-secret-token"
    fake.refuse = fake.echo = True
    with (
        serve(fake.app) as url,
        HttpDeployer(url, token="sup3r-secret-token") as deployer,
        pytest.raises(DeployerError) as refused,
    ):
        deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
    message = str(refused.value)
    assert "HTTP 409" in message and "deployments are frozen" in message
    assert "sup3r-secret-token" not in message and "***" in message
