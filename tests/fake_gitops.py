"""A configuration repository (real git, a local bare repository), a fake GitHub pulls API,
and a fake Argo CD that syncs the repository's manifest into the fake Kubernetes API."""

import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fake_kubernetes import FakeKubernetes, template_for

MANIFEST = "apps/airline/deployment.yaml"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Release Bot",
    "GIT_AUTHOR_EMAIL": "release@example.com",
    "GIT_COMMITTER_NAME": "Release Bot",
    "GIT_COMMITTER_EMAIL": "release@example.com",
}


def git(*args: str, cwd: Path) -> str:
    """Run git; raise with its output on failure."""
    import os

    result = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **IDENTITY}, capture_output=True, text=True
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def manifest(kind: str, version: str) -> str:
    """The object's manifest as the configuration repository holds it."""
    doc = {
        "apiVersion": "apps/v1" if kind == "Deployment" else "argoproj.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "airline", "namespace": "agents"},
        "spec": {"replicas": 2, "template": template_for(version)},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def make_config_repo(root: Path, *, kind: str, history: list[str]) -> tuple[Path, list[str]]:
    """A bare repository whose main branch released each version in turn; (path, commits)."""
    bare = root / "config.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=root)
    work = root / "config-work"
    git("clone", "--quiet", str(bare), str(work), cwd=root)
    (work / "README.md").write_text("cluster configuration\n")
    git("add", "README.md", cwd=work)
    git("commit", "--quiet", "-m", "init", cwd=work)
    commits = []
    for version in history:
        path = work / MANIFEST
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(manifest(kind, version))
        git("add", MANIFEST, cwd=work)
        git("commit", "--quiet", "-m", f"release airline {version}", cwd=work)
        commits.append(git("rev-parse", "HEAD", cwd=work))
        (work / "README.md").write_text(f"cluster configuration ({version})\n")
        git("commit", "--quiet", "-am", "docs", cwd=work)  # an unrelated change in between
    git("push", "--quiet", "origin", "main", cwd=work)
    return bare, commits


def version_on(bare: Path, ref: str) -> str | None:
    """The version the manifest asks for at a ref of the bare repository."""
    try:
        text = git("--git-dir", str(bare), "show", f"{ref}:{MANIFEST}", cwd=bare)
    except AssertionError:
        return None
    labels = yaml.safe_load(text)["spec"]["template"]["metadata"]["labels"]
    return str(labels["app.kubernetes.io/version"])


class FakeGitHub:
    """POST/GET /repos/{owner}/{repo}/pulls over the bare repository; merge() as the button."""

    def __init__(self, *, bare: Path, token: str) -> None:
        self.bare = bare
        self.token = token
        self.pulls: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/repos/{owner}/{repo}/pulls")(self._create)
        self.app.get("/repos/{owner}/{repo}/pulls")(self._list)

    def _denied(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"message": "Bad credentials"}, 401)
        return None

    async def _create(self, owner: str, repo: str, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied:
            return denied
        body = await request.json()
        missing = [key for key in ("title", "head", "base") if not body.get(key)]
        if missing:
            return JSONResponse({"message": "Validation Failed", "missing": missing}, 422)
        branches = git("--git-dir", str(self.bare), "branch", "--list", cwd=self.bare)
        if body["head"] not in branches.replace("*", "").split():
            return JSONResponse({"message": "Validation Failed", "field": "head"}, 422)
        number = len(self.pulls) + 1
        pull = {
            "number": number,
            "state": "open",
            "title": body["title"],
            "body": body.get("body"),
            "head": {"ref": body["head"], "label": f"{owner}:{body['head']}"},
            "base": {"ref": body["base"]},
            "html_url": f"https://github.example.com/{owner}/{repo}/pull/{number}",
        }
        self.pulls.append(pull)
        return JSONResponse(pull, 201)

    def _list(self, owner: str, repo: str, request: Request) -> JSONResponse:
        denied = self._denied(request)
        if denied:
            return denied
        head = request.query_params.get("head")
        state = request.query_params.get("state", "open")
        found = [
            p
            for p in self.pulls
            if (head is None or p["head"]["label"] == head) and (state in ("all", p["state"]))
        ]
        return JSONResponse(found)

    def merge(self, number: int) -> None:
        """Merge the pull request into its base, as the merge button does."""
        pull = self.pulls[number - 1]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            git("clone", "--quiet", str(self.bare), str(work), cwd=work)
            git("checkout", "--quiet", pull["base"]["ref"], cwd=work)
            git(
                "merge",
                "--quiet",
                "--no-ff",
                "-m",
                f"Merge pull request #{number}",
                f"origin/{pull['head']['ref']}",
                cwd=work,
            )
            git("push", "--quiet", "origin", pull["base"]["ref"], cwd=work)
        pull["state"] = "closed"


class FakeArgoCD:
    """Auto-sync: applies the manifest on main to the fake cluster whenever it changes."""

    def __init__(self, *, cluster: FakeKubernetes, bare: Path, kind: str) -> None:
        self.cluster = cluster
        self.bare = bare
        self.kind = kind
        self.synced = threading.Event()
        self._rounds = 0
        self._round_done = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-argocd", daemon=True)

    def __enter__(self) -> "FakeArgoCD":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            text = git("--git-dir", str(self.bare), "show", f"main:{MANIFEST}", cwd=self.bare)
            template = yaml.safe_load(text)["spec"]["template"]
            obj = self.cluster.objects[(self.kind, "agents", "airline")]
            if obj["spec"]["template"] != template:
                obj["spec"]["template"] = template
                self.cluster._start_rollout(obj, (self.kind, "agents", "airline"))
                self.cluster.settle(self.kind, "airline")
            self.synced.set()
            with self._round_done:
                self._rounds += 1
                self._round_done.notify_all()

    def wait_for_sync(self, timeout: float = 10) -> None:
        """Block until a sync that started after this call has finished."""
        with self._round_done:
            target = self._rounds + 2  # the round under way may have read the old main
            if not self._round_done.wait_for(lambda: self._rounds >= target, timeout=timeout):
                raise AssertionError("the fake Argo CD did not sync in time")
