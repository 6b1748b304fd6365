"""The Kubernetes deployer against a fake API server on loopback (tests/fake_kubernetes.py):
a Deployment rollback as `kubectl rollout undo` sends it, a Rollout abort and undo, a rollout
still in progress that the sweeper waits for, a degraded Rollout, credentials, and a kill test.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.actions.deployer import DeployerError, Rollout
from agentops.actions.executor import execute_approved
from agentops.actions.sweeper import sweep
from agentops.deployers.config import parse_deployers_text
from agentops.deployers.kubernetes import in_cluster_access
from agentops.deployers.routing import RoutedDeployer
from agentops.store.models import ActionStatus
from factories import serve
from fake_kubernetes import FakeKubernetes, normalized, template_for
from test_deployer_kill import Target, kill_after_switch_then_sweep
from test_recovery import approve, event_kinds, propose, read_action, store_live, two_good_fleet

TOKEN = "k8s-sa-token-0123456789abcdef"


@dataclass
class Cluster:
    """The fake API server, its URL and a kubeconfig pointing at it."""

    fake: FakeKubernetes
    url: str
    kubeconfig: Path

    def config(self, obj: str, **options: str) -> str:
        """A deployers file putting agent 'airline' on one object of the fake cluster."""
        extra = "".join(f"    {key}: {value}\n" for key, value in options.items())
        return (
            f"agents:\n  airline:\n    kind: kubernetes\n    object: {obj}\n"
            f"    namespace: agents\n    name: airline\n    container: agent\n"
            f"    kubeconfig: {self.kubeconfig}\n{extra}"
        )

    def deployer(self, obj: str, **options: str) -> RoutedDeployer:
        """The routed deployer the executor and sweeper would get."""
        return RoutedDeployer(parse_deployers_text(self.config(obj, **options), source="t"))


def write_kubeconfig(path: Path, url: str, token: str) -> Path:
    """A kubeconfig with one context: the fake server and a bearer token."""
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters:\n- name: fake\n  cluster:\n    server: {url}\n"
        f"users:\n- name: agentops\n  user:\n    token: {token}\n"
        "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: agentops\n"
    )
    return path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    fake = FakeKubernetes(token=TOKEN)
    with serve(fake.app) as url:
        yield Cluster(fake, url, write_kubeconfig(tmp_path / "kubeconfig", url, TOKEN))


def _approved_rollback(engine: Engine) -> int:
    """airline: v0 and v1 proved good, v2 is live; the rollback to v1 is approved."""
    with Session(engine) as session:
        two_good_fleet(session)
    action_id = propose(engine)
    approve(engine, action_id)
    return action_id


def test_a_deployment_is_rolled_back_as_kubectl_rollout_undo_does(
    engine: Engine, cluster: Cluster
) -> None:
    fake = cluster.fake
    fake.add("Deployment", "airline", history=["v0", "v1", "v2"])
    fake.settle_after = 2
    action_id = _approved_rollback(engine)
    with cluster.deployer("Deployment") as deployer:
        before = deployer.live(agent="airline")
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=10
        )
        again = deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
    assert (before.version, before.rollout) == ("v2", Rollout.settled)
    assert action.status == ActionStatus.succeeded, action.outcome_detail
    [(path, content_type, operations)] = fake.patches  # the repeat changed nothing
    assert path == "/apis/apps/v1/namespaces/agents/deployments/airline"
    assert content_type == "application/json-patch+json"
    assert operations[0] == {"op": "replace", "path": "/spec/template", "value": template_for("v1")}
    assert operations[1]["path"] == "/metadata/annotations"
    assert "already runs v1" in again
    assert fake.serving("Deployment", "airline") == store_live(engine) == "v1"
    revisions = {
        rs["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]: rs["metadata"][
            "annotations"
        ]["deployment.kubernetes.io/revision"]
        for rs in fake.replicasets
    }
    assert revisions == {"v0": "1", "v1": "4", "v2": "3"}  # v1's ReplicaSet came back as 4


def test_a_deployment_still_rolling_out_is_waited_for_by_the_sweeper(
    engine: Engine, cluster: Cluster
) -> None:
    fake = cluster.fake
    fake.add("Deployment", "airline", history=["v0", "v1", "v2"])
    action_id = _approved_rollback(engine)
    with cluster.deployer("Deployment") as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=0.3
        )
        assert action.status == ActionStatus.executing, action.outcome_detail
        state = deployer.live(agent="airline")
        assert (state.version, state.target, state.rollout) == ("v2", "v1", Rollout.rolling_out)
        started = read_action(engine, action_id).execution_started_at
        assert started is not None
        late = started + timedelta(seconds=601)
        waiting = sweep(engine, deployer=deployer, deploy_timeout_s=600, now=late)
        assert waiting.reconciled == {}
        assert (
            "still rolling out: v2 (healthy=True), rollout rolling_out towards v1"
            in (waiting.unsettled[action_id])
        )
        fake.settle("Deployment", "airline")
        done = sweep(engine, deployer=deployer, deploy_timeout_s=600, now=late)
    assert done.reconciled == {action_id: "succeeded"}
    assert fake.serving("Deployment", "airline") == store_live(engine) == "v1"
    assert len(fake.patches) == 1


def test_a_rollout_under_way_is_aborted_back_to_its_stable_version(
    engine: Engine, cluster: Cluster
) -> None:
    fake = cluster.fake
    fake.add("Rollout", "airline", history=["v0", "v1"])
    fake.start("Rollout", "airline", "v2")  # v2's canary is out; v1 is stable
    action_id = _approved_rollback(engine)
    with cluster.deployer("Rollout") as deployer:
        during = deployer.live(agent="airline")
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=10
        )
        after = deployer.live(agent="airline")
    assert (during.version, during.target, during.rollout) == ("v1", "v2", Rollout.rolling_out)
    assert action.status == ActionStatus.succeeded, action.outcome_detail
    assert fake.patches == [
        (
            "/apis/argoproj.io/v1alpha1/namespaces/agents/rollouts/airline/status",
            "application/merge-patch+json",
            {"status": {"abort": True}},
        )
    ]
    assert (after.version, after.rollout) == ("v1", Rollout.settled)
    assert fake.serving("Rollout", "airline") == store_live(engine) == "v1"


def test_a_healthy_rollout_is_undone_to_the_revision_that_ran_the_version(
    engine: Engine, cluster: Cluster
) -> None:
    fake = cluster.fake
    fake.add("Rollout", "airline", history=["v0", "v1", "v2"])
    fake.settle_after = 2
    action_id = _approved_rollback(engine)
    with cluster.deployer("Rollout") as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=10
        )
    assert action.status == ActionStatus.succeeded, action.outcome_detail
    [(path, content_type, operations)] = fake.patches
    assert path == "/apis/argoproj.io/v1alpha1/namespaces/agents/rollouts/airline"
    assert content_type == "application/json-patch+json"
    assert operations == [{"op": "replace", "path": "/spec/template", "value": template_for("v1")}]
    assert fake.serving("Rollout", "airline") == store_live(engine) == "v1"


def test_a_degraded_rollout_fails_the_action_and_the_store_keeps_what_serves(
    engine: Engine, cluster: Cluster
) -> None:
    fake = cluster.fake
    fake.add("Rollout", "airline", history=["v0", "v1", "v2"])
    action_id = _approved_rollback(engine)
    with cluster.deployer("Rollout", version_from="label") as deployer:
        action = execute_approved(
            engine, action_id=action_id, deployer=deployer, health_timeout_s=0.3
        )
        assert action.status == ActionStatus.executing  # still progressing: it waits
        fake.degrade("Rollout", "airline")
        state = deployer.live(agent="airline")
        assert (state.version, state.target, state.rollout) == ("v2", "v1", Rollout.failed)
        started = read_action(engine, action_id).execution_started_at
        assert started is not None
        report = sweep(
            engine, deployer=deployer, deploy_timeout_s=600, now=started + timedelta(seconds=601)
        )
    assert report.reconciled == {action_id: "failed"}
    settled = read_action(engine, action_id)
    assert settled.outcome_detail is not None
    assert "serves v2; the rollout failed, so v1 is not live" in settled.outcome_detail
    assert fake.serving("Rollout", "airline") == store_live(engine) == "v2"
    assert event_kinds(engine, action_id)[-1] == "action.executed"


def test_a_wrong_token_is_refused_and_a_version_no_replicaset_ran_is_an_error(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.fake.add("Deployment", "airline", history=["v1", "v2"])
    write_kubeconfig(cluster.kubeconfig, cluster.url, "wrong-token-0000000000")
    with (
        cluster.deployer("Deployment") as deployer,
        pytest.raises(DeployerError, match="refused the credentials"),
    ):
        deployer.live(agent="airline")
    write_kubeconfig(cluster.kubeconfig, cluster.url, TOKEN)
    with (
        cluster.deployer("Deployment") as deployer,
        pytest.raises(DeployerError, match="no ReplicaSet of Deployment agents/airline ran v0"),
    ):
        deployer.deploy(agent="airline", version="v0", action_id=1, idempotency_key="k")
    assert cluster.fake.patches == []


def test_in_cluster_credentials_come_from_the_service_account(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.fake.add("Deployment", "airline", history=["v1", "v2"])
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(TOKEN + "\n")
    host, port = cluster.url.removeprefix("http://").split(":")
    environ = {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "KUBERNETES_SERVICE_SCHEME": "http",
    }
    access = in_cluster_access(environ=environ, account_dir=account)
    assert access.server == cluster.url and access.token == TOKEN
    with pytest.raises(DeployerError, match="not running in a cluster"):
        in_cluster_access(environ={}, account_dir=account)


def test_kubernetes_executor_killed_after_the_patch_is_reconciled(
    engine: Engine, database_url: str, tmp_path: Path, cluster: Cluster
) -> None:
    fake = cluster.fake
    fake.add("Deployment", "airline", history=["v0", "v1", "v2"])
    fake.settle_after = 1

    def served() -> str | None:
        fake.settle_pending()  # the controller finishes the rollout after the executor died
        return fake.serving("Deployment", "airline")

    target = Target(
        deployers_yaml=cluster.config("Deployment"),
        environ={},
        served=served,
        deployer_class="agentops.deployers.kubernetes.KubernetesDeployer",
    )
    kill_after_switch_then_sweep(engine, database_url, tmp_path, target)
    assert len(fake.patches) == 1


def anonymous_kubeconfig(path: Path, url: str) -> Path:
    """A kubeconfig with no credentials (kubectl sends no bearer token to a plain-http server)."""
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters:\n- name: fake\n  cluster:\n    server: {url}\n"
        "users:\n- name: anonymous\n  user: {}\n"
        "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: anonymous\n"
    )
    return path


def test_our_rollback_patch_is_the_one_kubectl_rollout_undo_sends(tmp_path: Path) -> None:
    """Run the real `kubectl rollout undo` against one fake and our deployer against a twin."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    by_kubectl, by_agentops = FakeKubernetes(token=None), FakeKubernetes(token=None)
    for fake in (by_kubectl, by_agentops):
        fake.add("Deployment", "airline", history=["v0", "v1", "v2"])
        obj = fake.objects[("Deployment", "agents", "airline")]
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
        [v1_set] = [
            rs
            for rs in fake.replicasets
            if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        ]
        v1_set["metadata"]["annotations"]["team.example.com/change"] = "CHG-1"
    with serve(by_kubectl.app) as url:
        kubeconfig = anonymous_kubeconfig(tmp_path / "kubectl.kubeconfig", url)
        ran = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(kubeconfig),
                "-n",
                "agents",
                "rollout",
                "undo",
                "deployment/airline",
                "--to-revision=2",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": str(tmp_path)},
        )
    assert ran.returncode == 0, ran.stderr
    assert "rolled back" in ran.stdout
    with serve(by_agentops.app) as url:
        kubeconfig = anonymous_kubeconfig(tmp_path / "agentops.kubeconfig", url)
        config = (
            "agents:\n  airline:\n    kind: kubernetes\n    namespace: agents\n"
            f"    name: airline\n    kubeconfig: {kubeconfig}\n"
        )
        with RoutedDeployer(parse_deployers_text(config, source="t")) as deployer:
            deployer.deploy(agent="airline", version="v1", action_id=1, idempotency_key="k")
    [(kubectl_path, kubectl_type, kubectl_ops)] = by_kubectl.patches
    [(our_path, our_type, our_ops)] = by_agentops.patches
    assert (our_path, our_type) == (kubectl_path, kubectl_type)
    assert [op["path"] for op in our_ops] == [op["path"] for op in kubectl_ops]
    # kubectl serialises Go zero values (creationTimestamp: null, resources: {}); same template.
    assert normalized(our_ops[0]["value"]) == normalized(kubectl_ops[0]["value"])
    assert (
        our_ops[1]["value"]
        == kubectl_ops[1]["value"]
        == {
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "deployment.kubernetes.io/revision": "3",
            "team.example.com/change": "CHG-1",
        }
    )
    for fake in (by_kubectl, by_agentops):
        assert fake.serving("Deployment", "airline") == "v2"  # rolling out: v2 still serves
        fake.settle("Deployment", "airline")
        assert fake.serving("Deployment", "airline") == "v1"
