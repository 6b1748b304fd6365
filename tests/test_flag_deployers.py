"""Flag deployers (LaunchDarkly, Langfuse) against fakes of their documented APIs on loopback,
per-agent deployer configuration, and `agentops deployers check`."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from agentops.actions.deployer import DeployerError, Rollout
from agentops.actions.executor import execute_approved
from agentops.cli.app import app
from agentops.deployers.config import DeployersConfigError, parse_deployers_text
from agentops.deployers.flags import FlagDeployer, LangfuseBackend, LaunchDarklyBackend
from agentops.deployers.routing import RoutedDeployer
from agentops.settings import get_settings
from agentops.store.models import ActionStatus
from factories import serve
from flag_fakes import FakeLangfuse, FakeLaunchDarkly
from test_recovery import approve, propose, store_live, two_good_fleet

LD_TOKEN = "api-0123456789abcdef-ld-token"
LF_PUBLIC, LF_SECRET = "pk-lf-public", "sk-lf-0123456789-secret"


@pytest.fixture
def launchdarkly() -> Iterator[tuple[FakeLaunchDarkly, str]]:
    fake = FakeLaunchDarkly(token=LD_TOKEN)
    fake.add_flag("airline-prompt", variations=["v0", "v1", "v2"], serving="v2", env="production")
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def langfuse() -> Iterator[tuple[FakeLangfuse, str]]:
    fake = FakeLangfuse(public_key=LF_PUBLIC, secret_key=LF_SECRET)
    fake.add_prompt("airline-system", versions=3, production=3)
    with serve(fake.app) as url:
        yield fake, url


def ld_deployer(url: str, token: str = LD_TOKEN) -> FlagDeployer:
    backend = LaunchDarklyBackend(
        url, token=token, project="default", flag="airline-prompt", environment="production"
    )
    return FlagDeployer(agent="airline", backend=backend)


def test_launchdarkly_switches_the_fallthrough_and_reads_it_back(
    launchdarkly: tuple[FakeLaunchDarkly, str],
) -> None:
    fake, url = launchdarkly
    deployer = ld_deployer(url)
    with deployer.backend:
        assert deployer.live(agent="airline").version == "v2"
        first = deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
        again = deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
        health = deployer.wait_until_healthy(agent="airline", version="v1", timeout_s=2)
        state = deployer.live(agent="airline")
    assert first == "launchdarkly:v1" and again == "launchdarkly:v1 (already served)"
    assert fake.patches == [
        {
            "environmentKey": "production",
            "comment": "agentops rollback",
            "instructions": [
                {"kind": "updateFallthroughVariationOrRollout", "variationId": "id-v1"}
            ],
        }
    ]  # the second deploy read v1 back and sent nothing
    assert fake.serving("airline-prompt", "production") == "v1"
    assert health.healthy and health.checks == 1
    assert (state.version, state.rollout) == ("v1", Rollout.settled)


def test_launchdarkly_refuses_a_bad_token_and_an_unknown_variation(
    launchdarkly: tuple[FakeLaunchDarkly, str],
) -> None:
    fake, url = launchdarkly
    bad = ld_deployer(url, token="api-wrong-token-000000")
    with bad.backend, pytest.raises(DeployerError, match=r"refused the credentials.*HTTP 401"):
        bad.live(agent="airline")
    good = ld_deployer(url)
    with good.backend, pytest.raises(DeployerError, match="no variation named 'v9'"):
        good.deploy(agent="airline", version="v9", action_id=1, idempotency_key="k")
    assert fake.patches == []


def test_langfuse_moves_the_production_label_idempotently(
    langfuse: tuple[FakeLangfuse, str],
) -> None:
    fake, url = langfuse
    backend = LangfuseBackend(
        url, public_key=LF_PUBLIC, secret_key=LF_SECRET, prompt="airline-system"
    )
    deployer = FlagDeployer(agent="airline", backend=backend, versions={"v1": "2", "v2": "3"})
    with backend:
        assert deployer.live(agent="airline").version == "v2"
        deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
        repeat = deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
        state = deployer.live(agent="airline")
    assert fake.patches == [("airline-system", 2, ["production"])]
    assert repeat.endswith("(already served)")
    assert fake.holder("airline-system") == 2
    assert fake.prompts["airline-system"][3] == ["latest"]  # the label left version 3
    assert state.version == "v1"


def test_an_approved_rollback_runs_through_the_agents_configured_deployer(
    engine: Engine, launchdarkly: tuple[FakeLaunchDarkly, str]
) -> None:
    fake, url = launchdarkly
    config = parse_deployers_text(
        f"""
agents:
  airline:
    kind: launchdarkly
    url: {url}
    token_env: LD_TOKEN
    project: default
    flag: airline-prompt
""",
        source="deployers.yaml",
    )
    with Session(engine) as session:
        two_good_fleet(session)
    action_id = propose(engine)
    approve(engine, action_id)
    with RoutedDeployer(config, environ={"LD_TOKEN": LD_TOKEN}) as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=5
        )
    assert action.status == ActionStatus.succeeded, action.outcome_detail
    assert fake.serving("airline-prompt", "production") == store_live(engine) == "v1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "agents:\n  a:\n    kind: consul\n",
            "deployers.yaml:3: agents.a.kind: unknown deployer kind 'consul'",
        ),
        (
            "agents:\n  a:\n    kind: unleash\n    url: http://x\n    feature: f\n",
            "deployers.yaml:2: agents.a.token_env: is required",
        ),
        (
            "agents:\n  a:\n    kind: http\n    url: http://x\n    token: abc\n",
            "deployers.yaml:5: agents.a.token: is not a known option",
        ),
        (
            "agents:\n  a:\n    kind: http\n    url: http://x\n    token_env: not a name\n",
            "deployers.yaml:5: agents.a.token_env: must name an environment variable",
        ),
        ("agents: [\n", "deployers.yaml:2: YAML syntax error"),
        ("", "deployers.yaml:1: the deployers file is empty"),
    ],
)
def test_a_bad_deployers_file_is_one_located_line(text: str, message: str) -> None:
    with pytest.raises(DeployersConfigError) as raised:
        parse_deployers_text(text, source="deployers.yaml")
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def _configure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, token: str | None
) -> None:
    path = tmp_path / "deployers.yaml"
    path.write_text(
        f"agents:\n  airline:\n    kind: launchdarkly\n    url: {url}\n"
        "    token_env: AIRLINE_LD_TOKEN\n    project: default\n    flag: airline-prompt\n"
    )
    monkeypatch.setenv("AGENTOPS_DEPLOYERS_FILE", str(path))
    monkeypatch.delenv("AGENTOPS_DEPLOYER_URL", raising=False)
    if token is None:
        monkeypatch.delenv("AIRLINE_LD_TOKEN", raising=False)
    else:
        monkeypatch.setenv("AIRLINE_LD_TOKEN", token)
    get_settings.cache_clear()


def test_deployers_check_reads_live_and_changes_nothing(
    engine: Engine,
    launchdarkly: tuple[FakeLaunchDarkly, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    fake, url = launchdarkly
    with Session(engine) as session:
        two_good_fleet(session)
    _configure(monkeypatch, tmp_path, url, LD_TOKEN)
    runner = CliRunner()
    checked = runner.invoke(app, ["deployers", "check", "airline"], env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output
    assert "deployer: launchdarkly at" in checked.stdout
    assert "default/airline-prompt in production" in checked.stdout
    assert "deployer reads live: v2 (healthy=True), rollout settled towards v2" in checked.stdout
    assert "credentials: ok" in checked.stdout
    shown = runner.invoke(app, ["agents", "show", "airline"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert (
        "deployer agrees: v2 is live (healthy=True, rollout settled; launchdarkly" in shown.stdout
    )
    assert fake.patches == []

    _configure(monkeypatch, tmp_path, url, "api-wrong-token-000000")
    refused = runner.invoke(app, ["deployers", "check", "airline"])
    assert refused.exit_code != 0
    assert "credentials: refused" in refused.stdout
    assert refused.stderr.startswith("error: airline: the deployer could not say what is live")
    assert "api-wrong-token-000000" not in refused.output
    assert len(refused.stderr.strip().splitlines()) == 1

    _configure(monkeypatch, tmp_path, url, None)
    unset = runner.invoke(app, ["deployers", "check", "airline"])
    assert unset.exit_code != 0
    assert "the environment variable AIRLINE_LD_TOKEN is not set" in unset.stderr
    assert "credentials: missing" in unset.stdout
    assert fake.patches == []


def test_deployers_check_with_a_broken_file_is_one_error_line(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with Session(engine) as session:
        two_good_fleet(session)
    path = tmp_path / "deployers.yaml"
    path.write_text("agents:\n  airline:\n    kind: flux\n")
    monkeypatch.setenv("AGENTOPS_DEPLOYERS_FILE", str(path))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["deployers", "check", "airline"])
    assert result.exit_code != 0
    assert result.stderr.strip() == (
        f"error: {path}:3: agents.airline.kind: unknown deployer kind 'flux'; "
        "use one of http, unleash, launchdarkly, langfuse, kubernetes"
    )
    assert "Traceback" not in result.output
