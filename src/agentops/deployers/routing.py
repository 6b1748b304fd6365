"""One deployer per agent, chosen from the deployers file, behind the executor's single port."""

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from agentops.actions.deployer import (
    Deployer,
    DeployerError,
    HealthResult,
    HttpDeployer,
    LiveState,
)
from agentops.deployers.config import (
    DeployerEntry,
    DeployersFile,
    HttpEntry,
    KubernetesEntry,
    LangfuseEntry,
    LaunchDarklyEntry,
    UnleashEntry,
)
from agentops.deployers.flags import (
    FlagDeployer,
    LangfuseBackend,
    LaunchDarklyBackend,
    UnleashBackend,
)


def build_deployer(
    agent: str, entry: DeployerEntry, *, environ: Mapping[str, str] | None = None
) -> Deployer:
    """The deployer an entry describes; raises DeployerError when a credential is not set."""
    env = os.environ if environ is None else environ

    def secret(name: str | None, *, required: bool = True) -> str | None:
        if name is None:
            return None
        value = env.get(name)
        if not value and required:
            raise DeployerError(f"{agent}: the environment variable {name} is not set")
        return value or None

    if isinstance(entry, HttpEntry):
        return HttpDeployer(
            entry.url,
            token=secret(entry.token_env),
            hmac_secret=secret(entry.hmac_secret_env),
        )
    if isinstance(entry, KubernetesEntry):
        return _kubernetes(agent, entry, env)
    if isinstance(entry, UnleashEntry):
        backend: Any = UnleashBackend(
            entry.url,
            token=secret(entry.token_env) or "",
            feature=entry.feature,
            project=entry.project,
            environment=entry.environment,
        )
    elif isinstance(entry, LaunchDarklyEntry):
        backend = LaunchDarklyBackend(
            entry.url,
            token=secret(entry.token_env) or "",
            project=entry.project,
            flag=entry.flag,
            environment=entry.environment,
        )
    elif isinstance(entry, LangfuseEntry):
        backend = LangfuseBackend(
            entry.url,
            public_key=secret(entry.public_key_env) or "",
            secret_key=secret(entry.secret_key_env) or "",
            prompt=entry.prompt,
            label=entry.label,
        )
    else:  # pragma: no cover - the config's union is exhaustive
        raise DeployerError(f"{agent}: unsupported deployer kind {entry.kind}")
    return FlagDeployer(agent=agent, backend=backend, versions=entry.versions)


def _kubernetes(agent: str, entry: KubernetesEntry, env: Mapping[str, str]) -> Deployer:
    from pathlib import Path

    from agentops.deployers.kubernetes import (
        KubernetesDeployer,
        VersionSource,
        in_cluster_access,
        kubeconfig_access,
    )

    if entry.kubeconfig:
        access = kubeconfig_access(Path(entry.kubeconfig).expanduser(), context=entry.context)
    else:
        access = in_cluster_access(environ=dict(env))
    kube = KubernetesDeployer(
        agent=agent,
        access=access,
        namespace=entry.namespace,
        name=entry.name,
        kind=entry.object,
        version_source=VersionSource(
            source=entry.version_from, container=entry.container, label=entry.label
        ),
        versions=entry.versions,
        rollout_abort=entry.rollout_abort,
    )
    if entry.gitops is None:
        return kube
    from agentops.deployers.gitops import GitOpsDeployer, GitOpsSettings

    token = None
    if entry.gitops.token_env:
        token = env.get(entry.gitops.token_env)
        if not token:
            kube.close()
            raise DeployerError(
                f"{agent}: the environment variable {entry.gitops.token_env} is not set"
            )
    settings = GitOpsSettings(
        repo=entry.gitops.repo,
        path=entry.gitops.path,
        branch=entry.gitops.branch,
        mode=entry.gitops.mode,
        github_api=entry.gitops.github_api,
        github_repo=entry.gitops.github_repo,
        github_token=token,
    )
    return GitOpsDeployer(kube=kube, settings=settings)


def describe_entry(entry: DeployerEntry) -> str:
    """One line naming the deployer and what it switches (no credentials)."""
    if isinstance(entry, KubernetesEntry):
        where = f"kubeconfig {entry.kubeconfig}" if entry.kubeconfig else "in-cluster"
        gitops = f", GitOps via {entry.gitops.repo} ({entry.gitops.mode})" if entry.gitops else ""
        return f"kubernetes {entry.object} {entry.namespace}/{entry.name} ({where}{gitops})"
    if isinstance(entry, HttpEntry):
        return f"http at {entry.url}"
    if isinstance(entry, UnleashEntry):
        return f"unleash at {entry.url}: {entry.project}/{entry.feature} in {entry.environment}"
    if isinstance(entry, LaunchDarklyEntry):
        return f"launchdarkly at {entry.url}: {entry.project}/{entry.flag} in {entry.environment}"
    return f"langfuse at {entry.url}: prompt {entry.prompt}, label {entry.label}"


class RoutedDeployer:
    """Sends each agent's calls to the deployer its entry names, else to the default."""

    def __init__(
        self,
        config: DeployersFile,
        *,
        default: Deployer | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.default = default
        self._environ = environ
        self._built: dict[str, Deployer] = {}

    def describe(self, agent: str) -> str:
        """Which deployer serves the agent, in one line."""
        entry = self.config.agents.get(agent)
        if entry is not None:
            return describe_entry(entry)
        if isinstance(self.default, HttpDeployer):
            return f"http at {self.default.base_url} (AGENTOPS_DEPLOYER_URL)"
        return "none configured"

    def for_agent(self, agent: str) -> Deployer:
        """The agent's deployer, built once."""
        if agent in self._built:
            return self._built[agent]
        entry = self.config.agents.get(agent)
        if entry is None:
            if self.default is None:
                raise DeployerError(
                    f"no deployer configured for {agent}: add it to the deployers file "
                    "or set AGENTOPS_DEPLOYER_URL"
                )
            return self.default
        self._built[agent] = build_deployer(agent, entry, environ=self._environ)
        return self._built[agent]

    def deploy(self, *, agent: str, version: str, action_id: int, idempotency_key: str) -> str:
        """Deploy through the agent's deployer."""
        return self.for_agent(agent).deploy(
            agent=agent, version=version, action_id=action_id, idempotency_key=idempotency_key
        )

    def wait_until_healthy(
        self, *, agent: str, version: str, timeout_s: float = 30, poll_s: float = 0.5
    ) -> HealthResult:
        """Wait through the agent's deployer."""
        return self.for_agent(agent).wait_until_healthy(
            agent=agent, version=version, timeout_s=timeout_s, poll_s=poll_s
        )

    def live(self, *, agent: str) -> LiveState:
        """Read what is live through the agent's deployer."""
        return self.for_agent(agent).live(agent=agent)

    def change_record(self, *, agent: str) -> dict[str, str] | None:
        """The agent's deployer's record of its last committed change (GitOps), if any."""
        record = getattr(self.for_agent(agent), "change_record", None)
        return record(agent=agent) if record is not None else None

    def close(self) -> None:
        """Close every deployer built so far, and the default."""
        for deployer in [*self._built.values(), self.default]:
            close = getattr(deployer, "close", None)
            if close is not None:
                close()
        self._built.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
