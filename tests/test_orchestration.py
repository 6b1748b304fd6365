"""Prefect-side set-up: prefect.yaml, per-agent rollout limits, `agentops prefect setup`."""

import re
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.orchestration import (
    ensure_rollout_limit,
    flow_run_url,
    rollout_limit_name,
)
from agentops.packaged import example_text
from factories import degraded_fleet

ROOT = Path(__file__).resolve().parents[1]


def test_prefect_yaml_deploys_every_flow_from_the_installed_package() -> None:
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    assert spec["pull"] == []  # workers run the installed agentops; nothing to fetch
    by_flow = {d["entrypoint"].rsplit(".", 1)[-1]: d for d in spec["deployments"]}
    assert set(by_flow) == {
        "sample_conversations",
        "evaluate_triggers",
        "rollback_agent",
        "redeploy_agent",
        "sweep_actions",
        "seal_audit_trail",
        "checkpoint_audit_trail",
    }
    for deployment in spec["deployments"]:
        assert deployment["entrypoint"].startswith("agentops.flows.")
        assert deployment["work_pool"]["name"] == "agentops"
    crons = {name: [s["cron"] for s in d.get("schedules", [])] for name, d in by_flow.items()}
    assert crons == {
        "sample_conversations": ["5 * * * *"],
        "evaluate_triggers": ["*/15 * * * *"],
        "rollback_agent": [],
        "redeploy_agent": [],
        "sweep_actions": ["* * * * *"],
        "seal_audit_trail": ["* * * * *"],
        "checkpoint_audit_trail": ["15 0 * * *"],
    }
    # The scheduled flows never pile up after an outage: one runs, later ones are cancelled.
    for name in ("sweep_actions", "seal_audit_trail", "sample_conversations", "evaluate_triggers"):
        assert by_flow[name]["concurrency_limit"] == {
            "limit": 1,
            "collision_strategy": "CANCEL_NEW",
        }
    assert by_flow["evaluate_triggers"]["parameters"]["rollback_deployment"] == (
        "rollback-agent/on-demand"
    )
    # The wheel ships the same file for installs without a checkout.
    assert example_text("prefect.yaml") == (ROOT / "deployments" / "prefect.yaml").read_text()


@pytest.mark.flows
@pytest.mark.usefixtures("prefect_harness")
def test_one_rollout_per_agent_at_a_time() -> None:
    assert ensure_rollout_limit("limit-a") is True
    assert ensure_rollout_limit("limit-a") is False  # idempotent
    ensure_rollout_limit("limit-b")
    with concurrency(rollout_limit_name("limit-a"), occupy=1, strict=True):
        # A second deploy-and-verify of the same agent waits (here: gives up after 1 s) ...
        with (
            pytest.raises(TimeoutError),
            concurrency(rollout_limit_name("limit-a"), timeout_seconds=1, strict=True),
        ):
            pass
        # ... while another agent's goes ahead.
        with concurrency(rollout_limit_name("limit-b"), timeout_seconds=5, strict=True):
            pass
    # strict=True: a limit nobody created is an error, never a silent "no limit".
    with (
        pytest.raises(Exception, match="must be created before acquiring slots"),
        concurrency(rollout_limit_name("never-set-up"), timeout_seconds=1, strict=True),
    ):
        pass


@pytest.mark.flows
@pytest.mark.usefixtures("prefect_harness")
def test_prefect_setup_creates_the_pool_and_a_limit_per_agent(engine: Engine) -> None:
    with Session(engine) as session:
        degraded_fleet(session)
        session.commit()
    first = CliRunner().invoke(app, ["prefect", "setup"], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    # Another test's gate may have created the limit on first use in this Prefect session.
    assert re.search(
        r"concurrency limit agentops-rollout-airline: (created \(1 slot\)|already there)",
        first.output,
    ), first.output
    again = CliRunner().invoke(app, ["prefect", "setup"], env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "work pool agentops: already there" in again.output
    with get_client(sync_client=True) as client:
        assert client.read_work_pool("agentops").type == "process"
        limit = client.read_global_concurrency_limit_by_name("agentops-rollout-airline")
    assert limit.limit == 1
    # Another test in this Prefect session may have registered a "hotel" agent already.
    with get_client(sync_client=True) as client:
        names = {limit.name for limit in client.read_global_concurrency_limits(limit=200)}
    registered = CliRunner().invoke(
        app,
        ["agents", "register", "hotel", "--owner", "o@x.io", "--backup", "b@x.io"],
        env={"COLUMNS": "200"},
    )
    assert registered.exit_code == 0, registered.output
    if "agentops-rollout-hotel" not in names:
        assert "agentops-rollout-hotel created (1 slot)" in registered.output
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("agentops-rollout-hotel").limit == 1
    run_id = "0191f6c2-6c4e-7d5a-9b1e-3f2a1c0d4e5f"
    assert (flow_run_url(run_id) or "").endswith(f"/runs/flow-run/{run_id}")


@pytest.mark.flows
@pytest.mark.usefixtures("prefect_harness")
def test_prefect_deploy_takes_the_yaml_as_written_with_cancel_new(engine: Engine) -> None:
    """`prefect deploy --no-prompt` of deployments/prefect.yaml, against a real server."""
    import os
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    assert CliRunner().invoke(app, ["prefect", "setup"]).exit_code == 0
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    prefect = Path(sys.executable).with_name("prefect")
    deployed = subprocess.run(
        [
            str(prefect),
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            "deployments/prefect.yaml",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments()
        flows = {f.id: f.name for f in client.read_flows()}
    limited = {
        f"{flows[d.flow_id]}/{d.name}": (d.global_concurrency_limit.limit, d.concurrency_options)
        for d in deployments
        if d.global_concurrency_limit is not None
    }
    assert set(limited) >= {
        "sweep-actions/every-minute",
        "seal-audit-trail/every-minute",
        "sample-conversations/airline-assistant-hourly",
        "evaluate-triggers/airline-assistant-quarter-hourly",
    }
    for limit, options in limited.values():
        assert limit == 1
        assert options is not None and options.collision_strategy.value == "CANCEL_NEW"
