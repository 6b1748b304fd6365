"""GitOps mode: when Argo CD or Flux owns the object, roll back by reverting the manifest change.

A patch to an object under auto-sync is undone at the next sync, so the deployer commits
instead: it finds the configuration-repository commit that moved the manifest off the
wanted version, reverts it with real git, and either pushes the revert to a branch and
opens a pull request through the GitHub API, or pushes it straight to the branch. What is
live still comes from the cluster; until the object converges on what git asks for, the
rollout is reported as under way.
"""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml

from agentops.actions.deployer import DeployerError, HealthResult, LiveState, Rollout
from agentops.deployers.kubernetes import KubernetesDeployer, poll_until_settled
from agentops.http_client import display_url, excerpt

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "agentops",
    "GIT_AUTHOR_EMAIL": "agentops@localhost",
    "GIT_COMMITTER_NAME": "agentops",
    "GIT_COMMITTER_EMAIL": "agentops@localhost",
}


@dataclass(frozen=True)
class GitOpsSettings:
    """Where the manifest lives and how a revert reaches the branch Argo CD or Flux syncs."""

    repo: str
    path: str
    branch: str = "main"
    mode: Literal["pull_request", "direct"] = "pull_request"
    github_api: str = "https://api.github.com"
    github_repo: str | None = None  # owner/name, for pull requests
    github_token: str | None = None


class GitRepo:
    """A working clone of the configuration repository, driven with the git CLI."""

    def __init__(self, url: str, *, secrets: list[str | None]) -> None:
        self.url = url
        self._secrets = secrets
        self.dir = Path(tempfile.mkdtemp(prefix="agentops-gitops-"))
        self._cloned = False

    def git(self, *args: str) -> str:
        """Run git in the clone; a failure is a DeployerError with git's message."""
        env = {**os.environ, **GIT_IDENTITY, "GIT_TERMINAL_PROMPT": "0"}
        result = subprocess.run(
            ["git", "-C", str(self.dir), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            message = excerpt(result.stderr or result.stdout, secrets=self._secrets)
            raise DeployerError(f"git {args[0]} failed in the configuration repository: {message}")
        return result.stdout.strip()

    def sync(self) -> None:
        """Clone on first use, fetch (pruning deleted branches) afterwards."""
        if not self._cloned:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
            self.git("clone", "--quiet", "--no-checkout", self.url, ".")
            self._cloned = True
        else:
            self.git("fetch", "--quiet", "--prune", "origin")

    def show(self, ref: str, path: str) -> str | None:
        """A file's text at a ref, or None when it does not exist there."""
        try:
            return self.git("show", f"{ref}:{path}")
        except DeployerError:
            return None

    def close(self) -> None:
        """Remove the clone."""
        shutil.rmtree(self.dir, ignore_errors=True)


class GitOpsDeployer:
    """Rolls an Argo CD- or Flux-managed object back through its configuration repository."""

    def __init__(self, *, kube: KubernetesDeployer, settings: GitOpsSettings) -> None:
        self.kube = kube
        self.agent = kube.agent
        self.settings = settings
        self.repo = GitRepo(settings.repo, secrets=[settings.github_token])
        self._github = httpx.Client(
            base_url=settings.github_api.rstrip("/"),
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                **(
                    {"Authorization": f"Bearer {settings.github_token}"}
                    if settings.github_token
                    else {}
                ),
            },
            timeout=10,
        )
        self._changes: dict[str, dict[str, str]] = {}

    def describe(self, agent: str) -> str:
        """The object and the repository that drives it."""
        where = (
            f"PR to {self.settings.branch}"
            if self.settings.mode == "pull_request"
            else (f"straight to {self.settings.branch}")
        )
        return (
            f"{self.kube.describe(agent)} via GitOps: {self.settings.path} in "
            f"{display_url(self.settings.repo)} ({where})"
        )

    # --- versions in git -----------------------------------------------------------------

    def _version_at(self, ref: str) -> str | None:
        text = self.repo.show(ref, self.settings.path)
        if text is None:
            return None
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            return None
        for doc in documents:
            if (
                isinstance(doc, dict)
                and doc.get("kind") == self.kube.kind
                and (doc.get("metadata") or {}).get("name") == self.kube.name
            ):
                template = (doc.get("spec") or {}).get("template") or {}
                return self.kube._version(self.kube.source.read(template))
        return None

    def _pending_branches(self) -> list[str]:
        """Unmerged agentops branches for this agent, newest commit first."""
        base = f"origin/{self.settings.branch}"
        out = self.repo.git(
            "for-each-ref",
            "--sort=-committerdate",
            "--format=%(refname:short)",
            "--no-merged",
            base,
            f"refs/remotes/origin/agentops/{self.agent}-*",
        )
        return [line for line in out.splitlines() if line]

    def desired_version(self) -> str | None:
        """What git asks the cluster to run: a pending revert's version, else the branch's."""
        self.repo.sync()
        pending = self._pending_branches()
        if pending:
            return self._version_at(pending[0])
        return self._version_at(f"origin/{self.settings.branch}")

    # --- the deployer port -----------------------------------------------------------------

    def deploy(self, *, agent: str, version: str, action_id: int, idempotency_key: str) -> str:
        """Commit the revert of the change that moved the manifest off `version`."""
        self.kube._own(agent)
        self.repo.sync()
        base = f"origin/{self.settings.branch}"
        if self._version_at(base) == version:
            return f"{self.settings.path} on {self.settings.branch} already asks for {version}"
        branch = f"agentops/{agent}-{version}-action-{action_id}"
        if self._version_at(f"origin/{branch}") == version:
            commit = self.repo.git("rev-parse", f"origin/{branch}")
            return self._publish(agent, version, action_id, branch, commit, reused=True)
        reverted = self._change_to_revert(base, version)
        self.repo.git("checkout", "--quiet", "-B", branch, base)
        self.repo.git("revert", "--no-commit", reverted)
        message = (
            f"agentops: roll {agent} back to {version} (action #{action_id})\n\n"
            f"This reverts commit {reverted}.\nIdempotency-Key: {idempotency_key}"
        )
        self.repo.git("commit", "--quiet", "-m", message)
        if self._version_at("HEAD") != version:
            raise DeployerError(
                f"reverting {reverted[:12]} does not put {version} back in {self.settings.path}"
            )
        commit = self.repo.git("rev-parse", "HEAD")
        return self._publish(agent, version, action_id, branch, commit, reused=False)

    def _change_to_revert(self, base: str, version: str) -> str:
        """The newest commit whose parent asked for `version` and which asked for another."""
        commits = self.repo.git("rev-list", base, "--", self.settings.path).splitlines()
        for commit in commits:
            if self._version_at(commit) != version and self._version_at(f"{commit}^") == version:
                return commit
        raise DeployerError(
            f"no commit in {self.settings.branch} moved {self.settings.path} off {version}: "
            "nothing to revert"
        )

    def _publish(
        self, agent: str, version: str, action_id: int, branch: str, commit: str, *, reused: bool
    ) -> str:
        if self.settings.mode == "direct":
            self.repo.git(
                "push", "--quiet", "origin", f"{commit}:refs/heads/{self.settings.branch}"
            )
            self._changes[agent] = {
                "commit": commit,
                "branch": self.settings.branch,
                "pull_request": "",
                "mode": "direct",
            }
            return f"gitops commit {commit[:12]} pushed to {self.settings.branch}"
        if not reused:
            self.repo.git("push", "--quiet", "origin", f"{commit}:refs/heads/{branch}")
        pull = self._pull_request(agent, version, action_id, branch)
        self._changes[agent] = {
            "commit": commit,
            "branch": branch,
            "pull_request": pull,
            "mode": "pull_request",
        }
        return f"gitops commit {commit[:12]} on {branch}, pull request {pull}"

    def _pull_request(self, agent: str, version: str, action_id: int, branch: str) -> str:
        """The open pull request for the branch: found, or opened now (idempotent)."""
        if not self.settings.github_repo:
            raise DeployerError("gitops pull_request mode needs github_repo (owner/name)")
        owner = self.settings.github_repo.split("/", 1)[0]
        path = f"/repos/{self.settings.github_repo}/pulls"
        found = self._github_call(
            "GET", path, params={"head": f"{owner}:{branch}", "state": "open"}
        )
        if isinstance(found, list) and found:
            return str(found[0].get("html_url"))
        created = self._github_call(
            "POST",
            path,
            json={
                "title": f"Roll {agent} back to {version} (agentops action #{action_id})",
                "head": branch,
                "base": self.settings.branch,
                "body": f"Approved rollback of {agent} to {version}, action #{action_id}.",
            },
        )
        return str((created or {}).get("html_url"))

    def _github_call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._github.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DeployerError(
                f"the GitHub API is unreachable ({exc.__class__.__name__})"
            ) from exc
        if not 200 <= response.status_code < 300:
            raise DeployerError(
                f"the GitHub API answered {method} {path} with HTTP {response.status_code} "
                f"{excerpt(response.text, secrets=[self.settings.github_token])}"
            )
        return response.json()

    def change_record(self, *, agent: str) -> dict[str, str] | None:
        """The last commit (and pull request) this deployer made for the agent."""
        return self._changes.get(agent)

    def live(self, *, agent: str) -> LiveState:
        """The cluster's state; rolling out while it has not converged on what git asks for."""
        state = self.kube.live(agent=agent)
        desired = self.desired_version()
        if desired is None or state.rollout == Rollout.failed:
            return state
        if state.version != desired or state.rollout != Rollout.settled:
            return LiveState(
                version=state.version,
                healthy=state.healthy,
                target=desired,
                rollout=Rollout.rolling_out,
            )
        return state

    def wait_until_healthy(
        self, *, agent: str, version: str, timeout_s: float = 30, poll_s: float = 0.5
    ) -> HealthResult:
        """Poll until the object converges on the version (or the timeout passes)."""
        return poll_until_settled(
            lambda: self.live(agent=agent),
            version=version,
            timeout_s=timeout_s,
            poll_s=poll_s,
            settled=f"{self.kube.kind} {self.kube.name} converged on {version}",
            unsettled="not converged: ",
        )

    def close(self) -> None:
        """Release the cluster and GitHub connections and remove the clone."""
        self.kube.close()
        self._github.close()
        self.repo.close()
