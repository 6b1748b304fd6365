"""A fake Kubernetes API server on loopback: Deployments, Argo Rollouts and their ReplicaSets.

It follows the documented shapes and checks kubectl's request shapes: a JSON patch
(application/json-patch+json) replacing /spec/template (and /metadata/annotations for a
Deployment, as `kubectl rollout undo` sends), a merge patch (application/merge-patch+json)
of {"status": {"abort": true}} on a Rollout's status subresource, and a bearer token.
A tiny controller moves status on: by hand (settle, degrade) or after N reads.
"""

import hashlib
import json
import uuid
from copy import deepcopy
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

HASH_LABELS = ("pod-template-hash", "rollouts-pod-template-hash")


def template_for(version: str, *, app: str = "airline") -> dict[str, Any]:
    """A pod template running the agent image at a version tag, with a version label."""
    return {
        "metadata": {"labels": {"app": app, "app.kubernetes.io/version": version}},
        "spec": {
            "containers": [
                {"name": "agent", "image": f"registry.example.com/agents/{app}:{version}"},
                {"name": "sidecar", "image": "registry.example.com/proxy:1.4"},
            ]
        },
    }


def normalized(template: dict[str, Any]) -> dict[str, Any]:
    """The template as the API server stores it: no hash labels, no Go zero values
    (kubectl sends `creationTimestamp: null` and `resources: {}`)."""
    bare = deepcopy(template)
    metadata = bare.get("metadata", {})
    if metadata.get("creationTimestamp", "") is None:
        del metadata["creationTimestamp"]
    for label in HASH_LABELS:
        metadata.get("labels", {}).pop(label, None)
    for container in bare.get("spec", {}).get("containers", []):
        if container.get("resources") == {}:
            del container["resources"]
    return bare


def template_hash(template: dict[str, Any]) -> str:
    """A stable hash of a template without the controllers' hash labels."""
    bare = normalized(template)
    return hashlib.sha256(json.dumps(bare, sort_keys=True).encode()).hexdigest()[:10]


def _status_error(code: int, reason: str, message: str) -> JSONResponse:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return JSONResponse(body, status_code=code)


class FakeKubernetes:
    """Objects in memory, served under the real API paths."""

    def __init__(self, *, token: str | None, replicas: int = 2) -> None:
        self.token = token
        self.replicas = replicas
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, ns, name)
        self.replicasets: list[dict[str, Any]] = []
        self.patches: list[tuple[str, str, Any]] = []  # (path, content type, body)
        self.settle_after: int | None = None  # reads of a rolling object before it settles
        self._reads_left: dict[tuple[str, str, str], int] = {}
        self.app = FastAPI()
        base = "/apis/apps/v1/namespaces/{ns}"
        argo = "/apis/argoproj.io/v1alpha1/namespaces/{ns}"
        self.app.get(base + "/deployments/{name}")(self._getter("Deployment"))
        self.app.patch(base + "/deployments/{name}")(self._patcher("Deployment"))
        self.app.get(argo + "/rollouts/{name}")(self._getter("Rollout"))
        self.app.patch(argo + "/rollouts/{name}")(self._patcher("Rollout"))
        self.app.patch(argo + "/rollouts/{name}/status")(self._abort)
        self.app.get(base + "/replicasets")(self._list_replicasets)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for kubectl
        self.headers_seen: list[dict[str, str]] = []
        self._discovery()

    def _discovery(self) -> None:
        """The discovery documents kubectl reads before it acts."""

        @self.app.middleware("http")
        async def remember(request: Request, call_next: Any) -> Any:
            self.requests.append((request.method, str(request.url)))
            self.headers_seen.append(dict(request.headers))
            return await call_next(request)

        def resource(name: str, kind: str, verbs: list[str]) -> dict[str, Any]:
            return {
                "name": name,
                "singularName": kind.lower(),
                "namespaced": True,
                "kind": kind,
                "verbs": verbs,
            }

        groups = {
            "apps": (
                "v1",
                [
                    resource("deployments", "Deployment", ["get", "list", "patch"]),
                    resource("replicasets", "ReplicaSet", ["get", "list"]),
                ],
            ),
            "argoproj.io": (
                "v1alpha1",
                [
                    resource("rollouts", "Rollout", ["get", "list", "patch"]),
                    resource("rollouts/status", "Rollout", ["patch"]),
                ],
            ),
        }

        @self.app.get("/api")
        def core_versions() -> dict[str, Any]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}

        @self.app.get("/api/v1")
        def core_resources() -> dict[str, Any]:
            return {"kind": "APIResourceList", "groupVersion": "v1", "resources": []}

        @self.app.get("/apis")
        def group_list() -> dict[str, Any]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": name,
                        "versions": [{"groupVersion": f"{name}/{v}", "version": v}],
                        "preferredVersion": {"groupVersion": f"{name}/{v}", "version": v},
                    }
                    for name, (v, _) in groups.items()
                ],
            }

        for name, (version, resources) in groups.items():

            def resource_list(gv: str = f"{name}/{version}", rs: Any = resources) -> dict[str, Any]:
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": gv,
                    "resources": rs,
                }

            self.app.get(f"/apis/{name}/{version}")(resource_list)

        @self.app.get("/version")
        def server_version() -> dict[str, Any]:
            return {"major": "1", "minor": "32", "gitVersion": "v1.32.0"}

    # --- building the world ----------------------------------------------------------

    def add(self, kind: str, name: str, *, history: list[str], ns: str = "agents") -> None:
        """An object whose ReplicaSets ran `history` in order, settled on the last version."""
        uid = str(uuid.uuid4())
        revision_key = _revision_key(kind)
        obj: dict[str, Any] = {
            "apiVersion": "apps/v1" if kind == "Deployment" else "argoproj.io/v1alpha1",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": uid,
                "generation": 1,
                "annotations": {revision_key: str(len(history))},
            },
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": "airline"}},
                "template": template_for(history[-1]),
            },
            "status": {},
        }
        self.objects[(kind, ns, name)] = obj
        for revision, version in enumerate(history, start=1):
            self._replicaset(obj, template_for(version), revision)
        self.settle(kind, name, ns=ns)

    def _replicaset(
        self, obj: dict[str, Any], template: dict[str, Any], revision: int
    ) -> dict[str, Any]:
        pod_hash = template_hash(template)
        label = "pod-template-hash" if obj["kind"] == "Deployment" else "rollouts-pod-template-hash"
        rs_template = deepcopy(template)
        rs_template["metadata"]["labels"][label] = pod_hash
        rs = {
            "metadata": {
                "name": f"{obj['metadata']['name']}-{pod_hash}",
                "namespace": obj["metadata"]["namespace"],
                "uid": str(uuid.uuid4()),
                "labels": {**template["metadata"]["labels"], label: pod_hash},
                "annotations": {_revision_key(obj["kind"]): str(revision)},
                "ownerReferences": [
                    {
                        "kind": obj["kind"],
                        "name": obj["metadata"]["name"],
                        "uid": obj["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {"replicas": 0, "template": rs_template},
            "status": {"replicas": 0, "availableReplicas": 0},
            "_hash": pod_hash,
        }
        self.replicasets.append(rs)
        return rs

    def _owned(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        uid = obj["metadata"]["uid"]
        return [rs for rs in self.replicasets if rs["metadata"]["ownerReferences"][0]["uid"] == uid]

    def _current_rs(self, obj: dict[str, Any]) -> dict[str, Any]:
        pod_hash = template_hash(obj["spec"]["template"])
        return next(rs for rs in self._owned(obj) if rs["_hash"] == pod_hash)

    def _scale(self, obj: dict[str, Any], serving: dict[str, Any] | None) -> None:
        for rs in self._owned(obj):
            count = self.replicas if rs is serving else 0
            rs["spec"]["replicas"] = rs["status"]["replicas"] = count
            rs["status"]["availableReplicas"] = count

    # --- the controller --------------------------------------------------------------

    def settle(self, kind: str, name: str, *, ns: str = "agents") -> None:
        """The rollout finishes: the current template serves, all replicas available."""
        obj = self.objects[(kind, ns, name)]
        current = self._current_rs(obj)
        self._scale(obj, current)
        self._reads_left.pop((kind, ns, name), None)
        if kind == "Deployment":
            obj["status"] = {
                "observedGeneration": obj["metadata"]["generation"],
                "replicas": self.replicas,
                "updatedReplicas": self.replicas,
                "readyReplicas": self.replicas,
                "availableReplicas": self.replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            }
        else:
            obj["status"] = {
                "phase": "Healthy",
                "stableRS": current["_hash"],
                "currentPodHash": current["_hash"],
                "observedGeneration": str(obj["metadata"]["generation"]),
                "availableReplicas": self.replicas,
            }

    def start(self, kind: str, name: str, version: str, *, ns: str = "agents") -> None:
        """Someone applies a new version: its rollout starts (and does not finish by itself)."""
        obj = self.objects[(kind, ns, name)]
        obj["spec"]["template"] = template_for(version)
        self._start_rollout(obj, (kind, ns, name))
        self._reads_left.pop((kind, ns, name), None)

    def settle_pending(self) -> None:
        """Every rollout started by a patch finishes now (the controller caught up)."""
        for kind, ns, name in list(self._reads_left):
            self.settle(kind, name, ns=ns)

    def degrade(self, kind: str, name: str, *, ns: str = "agents") -> None:
        """The rollout fails: a Deployment passes its progress deadline, a Rollout degrades."""
        obj = self.objects[(kind, ns, name)]
        self._reads_left.pop((kind, ns, name), None)
        if kind == "Deployment":
            obj["status"]["conditions"] = [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"},
            ]
        else:
            obj["status"]["phase"] = "Degraded"
            obj["status"]["message"] = "ProgressDeadlineExceeded"

    def _start_rollout(self, obj: dict[str, Any], key: tuple[str, str, str]) -> None:
        """The template changed: bump the generation and start moving replicas."""
        obj["metadata"]["generation"] += 1
        owned = self._owned(obj)
        revision = (
            max(int(rs["metadata"]["annotations"][_revision_key(obj["kind"])]) for rs in owned) + 1
        )
        pod_hash = template_hash(obj["spec"]["template"])
        existing = next((rs for rs in owned if rs["_hash"] == pod_hash), None)
        if existing is None:
            existing = self._replicaset(obj, obj["spec"]["template"], revision)
        existing["metadata"]["annotations"][_revision_key(obj["kind"])] = str(revision)
        obj["metadata"]["annotations"][_revision_key(obj["kind"])] = str(revision)
        if obj["kind"] == "Deployment":
            status = obj["status"]
            status.update(
                observedGeneration=obj["metadata"]["generation"],
                updatedReplicas=0,
                replicas=self.replicas * 2,
            )
            status["conditions"][1] = {
                "type": "Progressing",
                "status": "True",
                "reason": "ReplicaSetUpdated",
            }
        else:
            obj["status"].update(phase="Progressing", currentPodHash=pod_hash, abort=False)
        if self.settle_after is not None:
            self._reads_left[key] = self.settle_after

    # --- HTTP ------------------------------------------------------------------------

    def _denied(self, request: Request) -> JSONResponse | None:
        # token None: no authentication (kubectl sends no bearer token to a plain-http server).
        if (
            self.token is not None
            and request.headers.get("authorization") != f"Bearer {self.token}"
        ):
            return _status_error(401, "Unauthorized", "Unauthorized")
        return None

    def _getter(self, kind: str) -> Any:
        def get(ns: str, name: str, request: Request) -> JSONResponse:
            denied = self._denied(request)
            if denied:
                return denied
            key = (kind, ns, name)
            if key not in self.objects:
                return _status_error(404, "NotFound", f'{kind.lower()}s "{name}" not found')
            if key in self._reads_left:
                self._reads_left[key] -= 1
                if self._reads_left[key] <= 0:
                    self.settle(kind, name, ns=ns)
            return JSONResponse(self.objects[key])

        return get

    def _patcher(self, kind: str) -> Any:
        async def patch(ns: str, name: str, request: Request) -> JSONResponse:
            denied = self._denied(request)
            if denied:
                return denied
            key = (kind, ns, name)
            if key not in self.objects:
                return _status_error(404, "NotFound", f'{kind.lower()}s "{name}" not found')
            content_type = request.headers.get("content-type", "")
            if content_type != "application/json-patch+json":
                return _status_error(415, "UnsupportedMediaType", f"unexpected {content_type}")
            operations = await request.json()
            allowed = {"/spec/template"} | (
                {"/metadata/annotations"} if kind == "Deployment" else set()
            )
            if not isinstance(operations, list) or not all(
                isinstance(op, dict)
                and op.get("op") == "replace"
                and op.get("path") in allowed
                and isinstance(op.get("value"), dict)
                for op in operations
            ):
                return _status_error(422, "Invalid", "only replace of /spec/template is expected")
            self.patches.append((request.url.path, content_type, deepcopy(operations)))
            obj = self.objects[key]
            before = template_hash(obj["spec"]["template"])
            for op in operations:
                if op["path"] == "/spec/template":
                    if any(
                        label in op["value"].get("metadata", {}).get("labels", {})
                        for label in HASH_LABELS
                    ):
                        return _status_error(422, "Invalid", "template carries a hash label")
                    obj["spec"]["template"] = normalized(op["value"])
                else:
                    obj["metadata"]["annotations"] = deepcopy(op["value"])
            if template_hash(obj["spec"]["template"]) != before:
                self._start_rollout(obj, key)
            return JSONResponse(obj)

        return patch

    async def _abort(self, ns: str, name: str, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied:
            return denied
        key = ("Rollout", ns, name)
        if key not in self.objects:
            return _status_error(404, "NotFound", f'rollouts "{name}" not found')
        content_type = request.headers.get("content-type", "")
        body = await request.json()
        if content_type != "application/merge-patch+json" or body != {"status": {"abort": True}}:
            return _status_error(422, "Invalid", f"unexpected status patch {content_type} {body}")
        self.patches.append((request.url.path, content_type, body))
        obj = self.objects[key]
        obj["status"].update(abort=True, phase="Degraded", message="RolloutAborted")
        stable = next(rs for rs in self._owned(obj) if rs["_hash"] == obj["status"]["stableRS"])
        self._scale(obj, stable)
        self._reads_left.pop(key, None)
        return JSONResponse(obj)

    def _list_replicasets(self, ns: str, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied:
            return denied
        wanted = dict(
            part.split("=", 1)
            for part in request.query_params.get("labelSelector", "").split(",")
            if part
        )
        items = [
            {k: v for k, v in rs.items() if k != "_hash"}
            for rs in self.replicasets
            if rs["metadata"]["namespace"] == ns
            and all(rs["metadata"]["labels"].get(k) == v for k, v in wanted.items())
        ]
        return JSONResponse({"kind": "ReplicaSetList", "apiVersion": "apps/v1", "items": items})

    # --- reading back ------------------------------------------------------------------

    def serving(self, kind: str, name: str, *, ns: str = "agents") -> str | None:
        """The version of the ReplicaSet whose pods are available (what actually serves)."""
        obj = self.objects[(kind, ns, name)]
        live = [rs for rs in self._owned(obj) if rs["status"]["availableReplicas"] > 0]
        if len(live) != 1:
            return None
        return live[0]["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]


def _revision_key(kind: str) -> str:
    return (
        "deployment.kubernetes.io/revision"
        if kind == "Deployment"
        else "rollout.argoproj.io/revision"
    )
