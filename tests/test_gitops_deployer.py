"""GitOps mode: a real git revert in a local bare repository, a pull request on a fake GitHub
API, a fake Argo CD syncing into the fake Kubernetes API; the action waits for convergence."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.deployer import DeployerError
from agentops.actions.executor import execute_approved
from agentops.actions.sweeper import sweep
from agentops.audit.service import iter_events
from agentops.deployers.config import parse_deployers_text
from agentops.deployers.routing import RoutedDeployer
from agentops.store.models import ActionStatus
from factories import serve
from fake_gitops import MANIFEST, FakeArgoCD, FakeGitHub, git, make_config_repo, version_on
from fake_kubernetes import FakeKubernetes
from test_deployer_kill import Target, kill_after_switch_then_sweep
from test_kubernetes_deployer import TOKEN, write_kubeconfig
from test_recovery import approve, propose, read_action, store_live, two_good_fleet

GH_TOKEN = "ghp_fake0123456789abcdefghijklmnopqrstu"


@dataclass
class World:
    """The cluster, the configuration repository and GitHub, all on loopback or disk."""

    cluster: FakeKubernetes
    bare: Path
    releases: list[str]
    github: FakeGitHub
    argo: FakeArgoCD
    kubeconfig: Path
    github_url: str

    def config(self, mode: str) -> str:
        """A deployers file: airline's Deployment, rolled back through the repository."""
        return (
            "agents:\n  airline:\n    kind: kubernetes\n    object: Deployment\n"
            f"    namespace: agents\n    name: airline\n    kubeconfig: {self.kubeconfig}\n"
            "    gitops:\n"
            f"      repo: {self.bare}\n      path: {MANIFEST}\n      mode: {mode}\n"
            f"      github_api: {self.github_url}\n      github_repo: acme/cluster-config\n"
            "      token_env: GITHUB_TOKEN\n"
        )

    def deployer(self, mode: str) -> RoutedDeployer:
        """The routed deployer the executor and sweeper would get."""
        config = parse_deployers_text(self.config(mode), source="deployers.yaml")
        return RoutedDeployer(config, environ={"GITHUB_TOKEN": GH_TOKEN})


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    cluster = FakeKubernetes(token=TOKEN)
    cluster.add("Deployment", "airline", history=["v0", "v1", "v2"])
    obj = cluster.objects[("Deployment", "agents", "airline")]
    obj["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = (
        "airline:apps/Deployment:agents/airline"
    )
    bare, releases = make_config_repo(tmp_path, kind="Deployment", history=["v0", "v1", "v2"])
    github = FakeGitHub(bare=bare, token=GH_TOKEN)
    with (
        serve(cluster.app) as k8s_url,
        serve(github.app) as github_url,
        FakeArgoCD(cluster=cluster, bare=bare, kind="Deployment") as argo,
    ):
        assert argo.synced.wait(10)
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", k8s_url, TOKEN)
        yield World(cluster, bare, releases, github, argo, kubeconfig, github_url)


def _approved_rollback(engine: Engine) -> int:
    with Session(engine) as session:
        two_good_fleet(session)
    action_id = propose(engine)
    approve(engine, action_id)
    return action_id


def _change_events(engine: Engine, action_id: int) -> list[dict[str, object]]:
    with Session(engine) as session:
        return [
            event.payload
            for event in iter_events(session, entity=f"action:{action_id}")
            if event.kind == "action.change_committed"
        ]


def test_a_rollback_is_a_reverted_commit_in_a_pull_request_and_waits_for_the_merge(
    engine: Engine, world: World
) -> None:
    action_id = _approved_rollback(engine)
    with world.deployer("pull_request") as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=0.5
        )
        assert action.status == ActionStatus.executing, action.outcome_detail
        [pull] = world.github.pulls
        branch = pull["head"]["ref"]
        assert branch == f"agentops/airline-v1-action-{action_id}" and pull["base"]["ref"] == "main"
        # A real revert of v2's release, on a branch off main; main and the cluster unchanged.
        head = git("--git-dir", str(world.bare), "rev-parse", branch, cwd=world.bare)
        parent = git("--git-dir", str(world.bare), "rev-parse", f"{branch}^", cwd=world.bare)
        assert parent == git("--git-dir", str(world.bare), "rev-parse", "main", cwd=world.bare)
        message = git(
            "--git-dir", str(world.bare), "log", "-1", "--format=%B", branch, cwd=world.bare
        )
        assert f"This reverts commit {world.releases[2]}." in message
        assert version_on(world.bare, branch) == "v1" and version_on(world.bare, "main") == "v2"
        assert world.cluster.patches == []
        # The commit and the pull request are on the action and in the trail.
        assert action.deployment_ref is not None
        assert head[:12] in action.deployment_ref and pull["html_url"] in action.deployment_ref
        assert _change_events(engine, action_id) == [
            {
                "agent": "airline",
                "commit": head,
                "branch": branch,
                "pull_request": pull["html_url"],
                "mode": "pull_request",
            }
        ]
        # Until the pull request is merged and synced, the sweeper waits.
        started = read_action(engine, action_id).execution_started_at
        assert started is not None
        late = started + timedelta(seconds=601)
        waiting = sweep(engine, deployer=deployer, deploy_timeout_s=600, now=late)
        assert (
            "still rolling out: v2 (healthy=True), rollout rolling_out towards v1"
            in (waiting.unsettled[action_id])
        )
        assert store_live(engine) == "v2"
        # A repeat (the same action) finds the branch and the open pull request: no new ones.
        again = deployer.deploy(
            agent="airline", version="v1", action_id=action_id, idempotency_key="k"
        )
        assert pull["html_url"] in again and len(world.github.pulls) == 1

        world.github.merge(pull["number"])
        world.argo.wait_for_sync()
        done = sweep(engine, deployer=deployer, deploy_timeout_s=600, now=late)
    assert done.reconciled == {action_id: "succeeded"}
    assert world.cluster.serving("Deployment", "airline") == store_live(engine) == "v1"
    assert version_on(world.bare, "main") == "v1"


def test_direct_mode_pushes_the_revert_to_the_branch_and_succeeds_once_synced(
    engine: Engine, world: World
) -> None:
    action_id = _approved_rollback(engine)
    with world.deployer("direct") as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=15
        )
    assert action.status == ActionStatus.succeeded, action.outcome_detail
    assert world.github.pulls == []
    assert version_on(world.bare, "main") == "v1"
    [change] = _change_events(engine, action_id)
    assert change["mode"] == "direct" and change["branch"] == "main"
    assert change["commit"] == git(
        "--git-dir", str(world.bare), "rev-parse", "main", cwd=world.bare
    )
    assert world.cluster.serving("Deployment", "airline") == store_live(engine) == "v1"
    assert world.cluster.patches == []


def test_an_argo_managed_object_is_never_patched_without_gitops(world: World) -> None:
    config = parse_deployers_text(
        "agents:\n  airline:\n    kind: kubernetes\n    namespace: agents\n    name: airline\n"
        f"    kubeconfig: {world.kubeconfig}\n",
        source="deployers.yaml",
    )
    with (
        RoutedDeployer(config) as deployer,
        pytest.raises(DeployerError, match="is managed by Argo CD: a patch would be undone"),
    ):
        deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
    assert world.cluster.patches == []


def test_gitops_executor_killed_after_the_commit_is_reconciled(
    engine: Engine, database_url: str, tmp_path: Path, world: World
) -> None:
    def served() -> str | None:
        world.argo.wait_for_sync()  # Argo CD has synced what main says by now
        return world.cluster.serving("Deployment", "airline")

    target = Target(
        deployers_yaml=world.config("direct"),
        environ={"GITHUB_TOKEN": GH_TOKEN},
        served=served,
        deployer_class="agentops.deployers.gitops.GitOpsDeployer",
    )
    kill_after_switch_then_sweep(engine, database_url, tmp_path, target)
    assert version_on(world.bare, "main") == "v1"
