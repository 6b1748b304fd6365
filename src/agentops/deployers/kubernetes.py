"""The Kubernetes deployer: a Deployment or an Argo Rollout, over the API server with httpx.

Deploying a version puts back the pod template of the newest ReplicaSet that ran it, as
`kubectl rollout undo` does (a JSON patch replacing /spec/template); for a Rollout whose
stable ReplicaSet already runs the version while a rollout is under way, it can abort
instead (merge patch {"status": {"abort": true}} on the status subresource).

What is live comes from the object's status: a Deployment's observedGeneration,
updatedReplicas, availableReplicas and Progressing/Available conditions; a Rollout's
phase, stableRS and currentPodHash. A version is read from a container's image tag or a
pod-template label.
"""

import base64
import json
import os
import ssl
import time
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import yaml

from agentops.actions.deployer import DeployerError, HealthResult, LiveState, Rollout
from agentops.http_client import ServiceClient, display_url

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
ROLLOUT_REVISION = "rollout.argoproj.io/revision"
# Labels the controllers add to a ReplicaSet's template; they must not go back into the spec.
HASH_LABELS = ("pod-template-hash", "rollouts-pod-template-hash")
# Annotations a Deployment keeps its own on rollback; the others come from the ReplicaSet
# (the same set `kubectl rollout undo` skips).
KEEP_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        DEPLOYMENT_REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
# Annotations and labels by which Argo CD and Flux mark the objects they manage.
OWNER_MARKS = {
    "argocd.argoproj.io/tracking-id": "Argo CD",
    "argocd.argoproj.io/instance": "Argo CD",
    "kustomize.toolkit.fluxcd.io/name": "Flux",
    "helm.toolkit.fluxcd.io/name": "Flux",
}


def gitops_owner(obj: dict[str, Any]) -> str | None:
    """'Argo CD' or 'Flux' when the object's annotations or labels say it manages it."""
    metadata = obj.get("metadata") or {}
    marks = {**(metadata.get("labels") or {}), **(metadata.get("annotations") or {})}
    for key, owner in OWNER_MARKS.items():
        if key in marks:
            return owner
    return None


@dataclass(frozen=True)
class ClusterAccess:
    """Where the API server is and how to authenticate (token and/or client certificate)."""

    server: str
    token: str | None = None
    verify: ssl.SSLContext | bool = True
    cert: tuple[str, str] | None = None


def in_cluster_access(
    *, environ: dict[str, str] | None = None, account_dir: Path = SERVICE_ACCOUNT_DIR
) -> ClusterAccess:
    """The pod's service-account credentials (KUBERNETES_SERVICE_HOST/PORT and its token)."""
    env = dict(os.environ) if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    token_file = account_dir / "token"
    if not host or not token_file.exists():
        raise DeployerError(
            "not running in a cluster (no KUBERNETES_SERVICE_HOST or service-account token); "
            "set kubeconfig in the deployers file"
        )
    ca = account_dir / "ca.crt"
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca)) if ca.exists() else True
    )
    scheme = env.get("KUBERNETES_SERVICE_SCHEME", "https")
    return ClusterAccess(
        server=f"{scheme}://{host}:{port}", token=token_file.read_text().strip(), verify=verify
    )


def kubeconfig_access(path: Path, *, context: str | None = None) -> ClusterAccess:
    """Credentials from a kubeconfig: its current (or named) context's cluster and user."""
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DeployerError(f"cannot read kubeconfig {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise DeployerError(f"kubeconfig {path} is not a mapping")
    name = context or config.get("current-context")
    ctx = _named(config.get("contexts"), name, "context", path)
    cluster = _named(config.get("clusters"), ctx.get("cluster"), "cluster", path)
    user = _named(config.get("users"), ctx.get("user"), "user", path) if ctx.get("user") else {}
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise DeployerError(f"kubeconfig {path}: cluster {ctx.get('cluster')} has no server")
    verify: ssl.SSLContext | bool = not cluster.get("insecure-skip-tls-verify", False)
    if cluster.get("certificate-authority-data"):
        verify = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    elif cluster.get("certificate-authority"):
        verify = ssl.create_default_context(
            cafile=_relative(path, cluster["certificate-authority"])
        )
    token = user.get("token")
    if user.get("tokenFile"):
        token = Path(_relative(path, user["tokenFile"])).read_text().strip()
    cert = None
    if user.get("client-certificate") and user.get("client-key"):
        cert = (_relative(path, user["client-certificate"]), _relative(path, user["client-key"]))
    return ClusterAccess(server=server, token=token, verify=verify, cert=cert)


def _named(items: Any, name: Any, what: str, path: Path) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return dict(item.get(what) or {})
    raise DeployerError(f"kubeconfig {path} has no {what} named {name!r}")


def _relative(config: Path, file: str) -> str:
    return str((config.parent / file) if not Path(file).is_absolute() else Path(file))


@dataclass(frozen=True)
class VersionSource:
    """How a pod template names its version: a container's image tag, or a label."""

    source: Literal["image", "label"] = "image"
    container: str | None = None
    label: str = "app.kubernetes.io/version"

    def read(self, template: dict[str, Any]) -> str | None:
        """The version a pod template runs."""
        if self.source == "label":
            value = ((template.get("metadata") or {}).get("labels") or {}).get(self.label)
            return value if isinstance(value, str) else None
        containers = (template.get("spec") or {}).get("containers") or []
        chosen = [c for c in containers if self.container in (None, c.get("name"))]
        if not chosen:
            return None
        image = str(chosen[0].get("image", ""))
        tail = image.split("@", 1)[0].rsplit("/", 1)[-1]
        return tail.split(":", 1)[1] if ":" in tail else None


class KubernetesDeployer(ServiceClient):
    """One agent's Deployment or Argo Rollout."""

    def __init__(
        self,
        *,
        agent: str,
        access: ClusterAccess,
        namespace: str,
        name: str,
        kind: Literal["Deployment", "Rollout"] = "Deployment",
        version_source: VersionSource | None = None,
        versions: dict[str, str] | None = None,
        rollout_abort: bool = True,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {access.token}"} if access.token else None
        super().__init__(
            access.server,
            timeout=timeout,
            transport=transport,
            headers=headers,
            secrets=[access.token],
        )
        if transport is None:
            self._http.close()
            self._http = httpx.Client(
                base_url=self.base_url,
                headers=headers,
                timeout=timeout,
                verify=access.verify,
                cert=access.cert,
            )
        self.agent = agent
        self.namespace = namespace
        self.name = name
        self.kind = kind
        self.source = version_source or VersionSource()
        self._to_tag = dict(versions or {})
        self._to_version = {tag: version for version, tag in self._to_tag.items()}
        self.rollout_abort = rollout_abort
        ns = quote(namespace, safe="")
        if kind == "Deployment":
            self._path = f"/apis/apps/v1/namespaces/{ns}/deployments/{quote(name, safe='')}"
            self._revision = DEPLOYMENT_REVISION
        else:
            self._path = (
                f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts/{quote(name, safe='')}"
            )
            self._revision = ROLLOUT_REVISION
        self._replicasets = f"/apis/apps/v1/namespaces/{ns}/replicasets"

    def describe(self, agent: str) -> str:
        """The object this deployer switches."""
        return (
            f"kubernetes {self.kind} {self.namespace}/{self.name} at {display_url(self.base_url)}"
        )

    # --- the deployer port -------------------------------------------------------------

    def deploy(self, *, agent: str, version: str, action_id: int, idempotency_key: str) -> str:
        """Put back the pod template that ran the version (or abort back to stable)."""
        self._own(agent)
        tag = self._to_tag.get(version, version)
        obj = self._get(self._path)
        if self.source.read(obj["spec"]["template"]) == tag:
            return f"{self.kind} {self.name} already runs {version}"
        owner = gitops_owner(obj)
        if owner is not None:
            # Under auto-sync a patch is reverted at the next sync: the change must go to git.
            raise DeployerError(
                f"{self.kind} {self.namespace}/{self.name} is managed by {owner}: a patch would be "
                "undone at the next sync; configure gitops: for this agent in the deployers file"
            )
        sets = self._owned_replicasets(obj)
        if self.kind == "Rollout" and self.rollout_abort:
            stable = _by_hash(sets, (obj.get("status") or {}).get("stableRS"))
            if stable is not None and self.source.read(stable["spec"]["template"]) == tag:
                self._patch(f"{self._path}/status", {"status": {"abort": True}}, MERGE_PATCH)
                return f"Rollout {self.name} aborted back to stable {version}"
        ran = [rs for rs in sets if self.source.read(rs["spec"]["template"]) == tag]
        if not ran:
            raise DeployerError(
                f"no ReplicaSet of {self.kind} {self.namespace}/{self.name} ran {version}; "
                "it may be past revisionHistoryLimit"
            )
        newest = max(ran, key=lambda rs: _revision(rs, self._revision))
        template = deepcopy(newest["spec"]["template"])
        labels = (template.get("metadata") or {}).get("labels") or {}
        for label in HASH_LABELS:
            labels.pop(label, None)
        operations: list[dict[str, Any]] = [
            {"op": "replace", "path": "/spec/template", "value": template}
        ]
        if self.kind == "Deployment":
            # As kubectl rollout undo: the Deployment keeps its bookkeeping annotations and
            # takes the rest from the ReplicaSet that ran the version.
            own = (obj.get("metadata") or {}).get("annotations") or {}
            annotations = {k: v for k, v in own.items() if k in KEEP_ANNOTATIONS}
            rs_annotations = (newest.get("metadata") or {}).get("annotations") or {}
            annotations.update(
                {k: v for k, v in rs_annotations.items() if k not in KEEP_ANNOTATIONS}
            )
            operations.append(
                {"op": "replace", "path": "/metadata/annotations", "value": annotations}
            )
        self._patch(self._path, operations, JSON_PATCH)
        revision = _revision(newest, self._revision)
        return f"{self.kind} {self.name} back to revision {revision} ({version})"

    def live(self, *, agent: str) -> LiveState:
        """What serves, what is being rolled out, and whether the rollout settled or failed."""
        self._own(agent)
        obj = self._get(self._path)
        if self.kind == "Deployment":
            return self._deployment_state(obj)
        return self._rollout_state(obj)

    def wait_until_healthy(
        self, *, agent: str, version: str, timeout_s: float = 30, poll_s: float = 0.5
    ) -> HealthResult:
        """Poll the status until the version serves, settled and available (or it failed)."""
        return poll_until_settled(
            lambda: self.live(agent=agent),
            version=version,
            timeout_s=timeout_s,
            poll_s=poll_s,
            settled=f"{self.kind} {self.name} serves {version}, available",
            unsettled=f"{self.kind} {self.name}: ",
        )

    # --- status ------------------------------------------------------------------------

    def _deployment_state(self, obj: dict[str, Any]) -> LiveState:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        target = self._version(self.source.read(spec["template"]))
        wanted = spec.get("replicas", 1)
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        available = (conditions.get("Available") or {}).get("status") == "True"
        progressing = conditions.get("Progressing") or {}
        observed = status.get("observedGeneration", 0) >= (obj.get("metadata") or {}).get(
            "generation", 0
        )
        updated = status.get("updatedReplicas", 0)
        done = (
            observed
            and updated == wanted
            and status.get("replicas", 0) == wanted
            and status.get("availableReplicas", 0) == wanted
        )
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            rollout = Rollout.failed
        elif done:
            rollout = Rollout.settled
        else:
            rollout = Rollout.rolling_out
        if rollout == Rollout.settled:
            return LiveState(version=target, healthy=available, target=target, rollout=rollout)
        serving = self._older_serving(obj)
        return LiveState(version=serving, healthy=available, target=target, rollout=rollout)

    def _older_serving(self, obj: dict[str, Any]) -> str | None:
        """While a Deployment rolls out, the newest older ReplicaSet with pods available."""
        current_revision = int(
            ((obj.get("metadata") or {}).get("annotations") or {}).get(self._revision, "0")
        )
        older = [
            rs
            for rs in self._owned_replicasets(obj)
            if _revision(rs, self._revision) < current_revision
            and (rs.get("status") or {}).get("availableReplicas", 0) > 0
        ]
        if not older:
            return None
        newest = max(older, key=lambda rs: _revision(rs, self._revision))
        return self._version(self.source.read(newest["spec"]["template"]))

    def _rollout_state(self, obj: dict[str, Any]) -> LiveState:
        status = obj.get("status") or {}
        phase = status.get("phase")
        sets = self._owned_replicasets(obj)
        stable = _by_hash(sets, status.get("stableRS"))
        stable_version = (
            self._version(self.source.read(stable["spec"]["template"])) if stable else None
        )
        target = self._version(self.source.read(obj["spec"]["template"]))
        if status.get("abort"):
            # Aborted: traffic is back on the stable ReplicaSet; that is the settled state.
            healthy = (
                stable is not None and (stable.get("status") or {}).get("availableReplicas", 0) > 0
            )
            return LiveState(
                version=stable_version,
                healthy=healthy,
                target=stable_version,
                rollout=Rollout.settled,
            )
        if phase == "Healthy" and status.get("stableRS") == status.get("currentPodHash"):
            return LiveState(version=target, healthy=True, target=target, rollout=Rollout.settled)
        rollout = Rollout.failed if phase == "Degraded" else Rollout.rolling_out
        return LiveState(
            version=stable_version, healthy=phase != "Degraded", target=target, rollout=rollout
        )

    # --- API ---------------------------------------------------------------------------

    def _owned_replicasets(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        uid = (obj.get("metadata") or {}).get("uid")
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        params = {"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}
        items = self._get(self._replicasets, params=params).get("items") or []
        return [
            rs
            for rs in items
            if any(
                ref.get("uid") == uid
                for ref in (rs.get("metadata") or {}).get("ownerReferences") or []
            )
        ]

    def _get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send("GET", path, **kwargs)
        return self._object(response, "GET", path)

    def _patch(self, path: str, body: Any, content_type: str) -> dict[str, Any]:
        response = self._send(
            "PATCH", path, content=json.dumps(body), headers={"Content-Type": content_type}
        )
        return self._object(response, "PATCH", path)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DeployerError(
                f"the Kubernetes API at {display_url(self.base_url)} is unreachable "
                f"({exc.__class__.__name__})"
            ) from exc
        if response.status_code in {401, 403}:
            raise DeployerError(
                f"the Kubernetes API refused the credentials for {method} {path}: "
                f"HTTP {response.status_code} {self._excerpt(response.text)}"
            )
        if not 200 <= response.status_code < 300:
            raise DeployerError(
                f"the Kubernetes API answered {method} {path} with HTTP {response.status_code} "
                f"{self._excerpt(response.text)}"
            )
        return response

    def _object(self, response: httpx.Response, method: str, path: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise DeployerError(
                f"the Kubernetes API answered {method} {path} without JSON"
            ) from exc
        if not isinstance(data, dict):
            raise DeployerError(f"the Kubernetes API answered {method} {path} with a non-object")
        return data

    def _version(self, tag: str | None) -> str | None:
        return None if tag is None else self._to_version.get(tag, tag)

    def _own(self, agent: str) -> None:
        if agent != self.agent:
            raise DeployerError(
                f"{self.describe(agent)} is configured for {self.agent}, not {agent}"
            )


def poll_until_settled(
    live: Callable[[], LiveState],
    *,
    version: str,
    timeout_s: float,
    poll_s: float,
    settled: str,
    unsettled: str,
) -> HealthResult:
    """Read live() until the version serves, settled and healthy; stop on a failed rollout.

    settled is the detail on success; a failure's detail is unsettled followed by the state
    and the number of checks.
    """
    deadline = time.monotonic() + timeout_s
    checks = 0
    while True:
        checks += 1
        state = live()
        if state.version == version and state.rollout == Rollout.settled and state.healthy:
            return HealthResult(
                healthy=True, observed_version=version, checks=checks, detail=settled
            )
        if state.rollout == Rollout.failed or time.monotonic() + poll_s > deadline:
            return HealthResult(
                healthy=False,
                observed_version=state.version,
                checks=checks,
                detail=f"{unsettled}{state.describe()} ({checks} checks)",
            )
        time.sleep(poll_s)


def _revision(rs: dict[str, Any], annotation: str) -> int:
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(annotation, "0")
    return int(value) if str(value).isdigit() else 0


def _by_hash(sets: list[dict[str, Any]], pod_hash: Any) -> dict[str, Any] | None:
    if not pod_hash:
        return None
    for rs in sets:
        labels = (rs.get("metadata") or {}).get("labels") or {}
        if pod_hash in (labels.get("rollouts-pod-template-hash"), labels.get("pod-template-hash")):
            return rs
    return None
