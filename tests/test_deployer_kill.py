"""A kill test per flag deployer: the executor dies after the switch and before the record.

`agentops actions run` runs in a real subprocess against a deployers file; a wrapper lets the
switch happen, then parks the process where it would verify and record, and it is SIGKILLed
there. The sweeper then settles the action from the deployer's own read, and the store agrees
with what is served.
"""

import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.sweeper import sweep
from agentops.deployers.config import parse_deployers_text
from agentops.deployers.routing import RoutedDeployer
from agentops.store.models import ActionStatus
from factories import serve
from flag_fakes import FakeLangfuse, FakeLaunchDarkly
from test_recovery import (
    approve,
    child,
    child_env,
    event_kinds,
    propose,
    read_action,
    store_live,
    two_good_fleet,
    wait_for,
)

# The executor, with the deployer's health wait replaced by "note the switch, then hang":
# the process is killed after the switch and before it can record the outcome.
RUN_THEN_HANG = """
import importlib, sys, time
from pathlib import Path
marker = Path(sys.argv[2])
module, name = sys.argv[3].rsplit(".", 1)
def switched_then_hang(self, **kwargs):
    marker.touch()
    time.sleep(600)
setattr(getattr(importlib.import_module(module), name), "wait_until_healthy", switched_then_hang)
from agentops.cli.app import main
sys.argv = ["agentops", "actions", "run", sys.argv[1]]
main()
"""


@dataclass
class Target:
    """A flag service configured for agent 'airline' and how to read what it serves."""

    deployers_yaml: str
    environ: dict[str, str]
    served: Callable[[], str | None]
    deployer_class: str = "agentops.deployers.flags.FlagDeployer"


def kill_after_switch_then_sweep(
    engine: Engine, database_url: str, tmp_path: Path, target: Target
) -> None:
    """Run, kill after the switch, sweep late; the store must follow what is served."""
    with Session(engine) as session:
        two_good_fleet(session)
    action_id = propose(engine)
    approve(engine, action_id)
    assert target.served() == "v2"
    config_path = tmp_path / "deployers.yaml"
    config_path.write_text(target.deployers_yaml)
    marker = tmp_path / "switched"
    env = child_env(database_url, AGENTOPS_DEPLOYERS_FILE=str(config_path), **target.environ)
    args = [sys.executable, "-c", RUN_THEN_HANG, str(action_id), str(marker), target.deployer_class]
    with child(args, env=env, workdir=tmp_path, name="run") as executor:
        wait_for(marker.exists, what="the executor's switch", watch=executor, timeout=60)
        assert executor.kill() == -signal.SIGKILL
    assert target.served() == "v1"  # the switch happened
    executing = read_action(engine, action_id)
    assert executing.status == ActionStatus.executing  # ... and was never recorded
    assert store_live(engine) == "v2"

    config = parse_deployers_text(target.deployers_yaml, source=str(config_path))
    with RoutedDeployer(config, environ=target.environ) as deployer:
        assert executing.execution_started_at is not None
        # The next sweep settles it from the deployer's read, without waiting out the
        # deploy timeout, once the target serves healthily (settled, not rolling out).
        report = sweep(engine, deployer=deployer, deploy_timeout_s=600)
        assert report.reconciled == {action_id: "succeeded"}
        late = executing.execution_started_at + timedelta(seconds=601)
        assert not sweep(engine, deployer=deployer, deploy_timeout_s=600, now=late).changed
    settled = read_action(engine, action_id)
    assert settled.outcome_detail is not None
    assert "the deployer reports v1 live and healthy" in settled.outcome_detail
    assert target.served() == store_live(engine) == "v1"
    kinds = event_kinds(engine, action_id)
    assert kinds.count("action.executed") == 1 and kinds[-1] == "action.executed"


@pytest.fixture
def launchdarkly_target() -> Iterator[Target]:
    fake = FakeLaunchDarkly(token="api-kill-test-ld-token-0000")
    fake.add_flag("airline-prompt", variations=["v0", "v1", "v2"], serving="v2", env="production")
    with serve(fake.app) as url:
        yield Target(
            deployers_yaml=(
                f"agents:\n  airline:\n    kind: launchdarkly\n    url: {url}\n"
                "    token_env: LD_TOKEN\n    project: default\n    flag: airline-prompt\n"
            ),
            environ={"LD_TOKEN": fake.token},
            served=lambda: fake.serving("airline-prompt", "production"),
        )


@pytest.fixture
def langfuse_target() -> Iterator[Target]:
    fake = FakeLangfuse(public_key="pk-lf-kill", secret_key="sk-lf-kill-test-000000")
    fake.add_prompt("airline-system", versions=3, production=3)
    names = {1: "v0", 2: "v1", 3: "v2"}
    with serve(fake.app) as url:
        yield Target(
            deployers_yaml=(
                f"agents:\n  airline:\n    kind: langfuse\n    url: {url}\n"
                "    public_key_env: LF_PUBLIC\n    secret_key_env: LF_SECRET\n"
                "    prompt: airline-system\n"
                "    versions: {v0: '1', v1: '2', v2: '3'}\n"
            ),
            environ={"LF_PUBLIC": "pk-lf-kill", "LF_SECRET": "sk-lf-kill-test-000000"},
            served=lambda: names.get(fake.holder("airline-system") or 0),
        )


@pytest.mark.parametrize("which", ["launchdarkly_target", "langfuse_target"])
def test_flag_executor_killed_after_the_switch_is_reconciled_from_the_flag(
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    which: str,
    request: pytest.FixtureRequest,
) -> None:
    kill_after_switch_then_sweep(engine, database_url, tmp_path, request.getfixturevalue(which))
