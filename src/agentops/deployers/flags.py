"""Flag deployers: a version names a flag variation or a prompt label, and a flip rolls it back.

One interface (`FlagDeployer`) over three backends, each speaking its documented admin API
with httpx: Unleash (strategy variants), LaunchDarkly (semantic patch) and Langfuse prompt
labels. Every deploy reads back what is served first, so a retried deploy changes nothing.
"""

import time
from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import quote

import httpx

from agentops.actions.deployer import DeployerError, HealthResult, LiveState, Rollout
from agentops.http_client import ServiceClient, display_url

LD_SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"


class FlagBackend(ServiceClient, ABC):
    """One flag service: reads which variation is served, and serves another."""

    kind: str = "flag"

    @abstractmethod
    def served(self) -> str | None:
        """The variation (or label holder) served now; None when nothing is."""

    @abstractmethod
    def serve(self, variation: str) -> None:
        """Make the service serve this variation."""

    def where(self) -> str:
        """What this backend switches, for messages."""
        return f"{self.kind} at {display_url(self.base_url)}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; non-2xx and transport errors become DeployerError with a safe excerpt."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DeployerError(
                f"{self.where()} is unreachable ({exc.__class__.__name__})"
            ) from exc
        if response.status_code in {401, 403}:
            raise DeployerError(
                f"{self.where()} refused the credentials for {method} {path}: "
                f"HTTP {response.status_code} {self._excerpt(response.text)}"
            )
        if not 200 <= response.status_code < 300:
            raise DeployerError(
                f"{self.where()}: {method} {path} answered HTTP {response.status_code} "
                f"{self._excerpt(response.text)}"
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise DeployerError(f"{self.where()}: {method} {path} did not answer JSON") from exc


class FlagDeployer:
    """The deployer port over a flag backend: a version maps to a variation (by default itself)."""

    def __init__(
        self, *, agent: str, backend: FlagBackend, versions: dict[str, str] | None = None
    ) -> None:
        self.agent = agent
        self.backend = backend
        self._to_variation = dict(versions or {})
        self._to_version = {variation: version for version, variation in self._to_variation.items()}

    def variation_for(self, version: str) -> str:
        """The variation that serves a version."""
        return self._to_variation.get(version, version)

    def version_for(self, variation: str | None) -> str | None:
        """The version a served variation stands for."""
        return None if variation is None else self._to_version.get(variation, variation)

    def deploy(self, *, agent: str, version: str, action_id: int, idempotency_key: str) -> str:
        """Serve the version's variation unless it already is (idempotent)."""
        self._own(agent)
        variation = self.variation_for(version)
        if self.backend.served() == variation:
            return f"{self.backend.kind}:{variation} (already served)"
        self.backend.serve(variation)
        return f"{self.backend.kind}:{variation}"

    def live(self, *, agent: str) -> LiveState:
        """What the flag serves now; a flip takes effect at once, so it is always settled."""
        self._own(agent)
        version = self.version_for(self.backend.served())
        return LiveState(
            version=version, healthy=version is not None, target=version, rollout=Rollout.settled
        )

    def wait_until_healthy(
        self, *, agent: str, version: str, timeout_s: float = 30, poll_s: float = 0.5
    ) -> HealthResult:
        """Read back until the flag serves the version, or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        checks = 0
        observed: str | None = None
        while True:
            checks += 1
            observed = self.live(agent=agent).version
            if observed == version:
                return HealthResult(
                    healthy=True,
                    observed_version=observed,
                    checks=checks,
                    detail=f"{self.backend.where()} serves {version} for {agent}",
                )
            if time.monotonic() + poll_s > deadline:
                return HealthResult(
                    healthy=False,
                    observed_version=observed,
                    checks=checks,
                    detail=(
                        f"{self.backend.where()} still serves {observed or 'nothing'} for "
                        f"{agent} after {timeout_s:g}s ({checks} checks)"
                    ),
                )
            time.sleep(poll_s)

    def close(self) -> None:
        """Release the backend's connections."""
        self.backend.close()

    def _own(self, agent: str) -> None:
        if agent != self.agent:
            raise DeployerError(
                f"{self.backend.where()} is configured for {self.agent}, not {agent}"
            )


class UnleashBackend(FlagBackend):
    """Unleash: the feature's strategy in one environment carries one variant, weight 1000.

    Admin API (token type admin, or a personal access token):
      GET  /api/admin/projects/{p}/features/{f}                       environments[].enabled
      GET  /api/admin/projects/{p}/features/{f}/environments/{e}/strategies
      PUT  /api/admin/projects/{p}/features/{f}/environments/{e}/strategies/{id}
      POST /api/admin/projects/{p}/features/{f}/environments/{e}/on
    """

    kind = "unleash"

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        feature: str,
        project: str = "default",
        environment: str = "production",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            timeout=timeout,
            transport=transport,
            headers={"Authorization": token},
            secrets=[token],
        )
        self.feature = feature
        self.project = project
        self.environment = environment
        self._feature_path = (
            f"/api/admin/projects/{quote(project, safe='')}/features/{quote(feature, safe='')}"
        )
        self._env_path = f"{self._feature_path}/environments/{quote(environment, safe='')}"

    def where(self) -> str:
        """The feature and environment this backend flips."""
        return (
            f"unleash at {display_url(self.base_url)} "
            f"({self.project}/{self.feature} in {self.environment})"
        )

    def served(self) -> str | None:
        """The variant every user gets, when the feature is on and one variant holds it all."""
        feature = self._call("GET", self._feature_path)
        enabled = any(
            env.get("name") == self.environment and env.get("enabled") is True
            for env in (feature or {}).get("environments", [])
        )
        if not enabled:
            return None
        strategy = self._strategy()
        if strategy is None:
            return None
        full = [v for v in strategy.get("variants") or [] if v.get("weight") == 1000]
        return full[0].get("name") if full else None

    def serve(self, variation: str) -> None:
        """Give the strategy the one variant, then switch the environment on."""
        strategy = self._strategy()
        if strategy is None:
            raise DeployerError(
                f"{self.where()} has no strategy to carry a variant; add one (e.g. flexibleRollout)"
            )
        body: dict[str, Any] = {
            key: strategy[key]
            for key in ("name", "title", "constraints", "parameters", "segments", "disabled")
            if key in strategy and strategy[key] is not None
        }
        body["variants"] = [
            {"name": variation, "weight": 1000, "weightType": "variable", "stickiness": "default"}
        ]
        self._call(
            "PUT", f"{self._env_path}/strategies/{quote(str(strategy['id']), safe='')}", json=body
        )
        self._call("POST", f"{self._env_path}/on")

    def _strategy(self) -> dict[str, Any] | None:
        strategies = self._call("GET", f"{self._env_path}/strategies")
        if not isinstance(strategies, list) or not strategies:
            return None
        first = strategies[0]
        return first if isinstance(first, dict) else None


class LaunchDarklyBackend(FlagBackend):
    """LaunchDarkly: the flag's fallthrough in one environment serves one variation.

      GET   /api/v2/flags/{project}/{flag}?env={env}
      PATCH /api/v2/flags/{project}/{flag}   (semantic patch, updateFallthroughVariationOrRollout)
    Variations are matched by name, then by a string value.
    """

    kind = "launchdarkly"

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        project: str,
        flag: str,
        environment: str = "production",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            timeout=timeout,
            transport=transport,
            headers={"Authorization": token},
            secrets=[token],
        )
        self.project = project
        self.flag = flag
        self.environment = environment
        self._path = f"/api/v2/flags/{quote(project, safe='')}/{quote(flag, safe='')}"

    def where(self) -> str:
        """The flag and environment this backend flips."""
        return (
            f"launchdarkly at {display_url(self.base_url)} "
            f"({self.project}/{self.flag} in {self.environment})"
        )

    def served(self) -> str | None:
        """The variation the fallthrough serves (the off variation when the flag is off)."""
        flag = self._read()
        variations = flag.get("variations") or []
        env = (flag.get("environments") or {}).get(self.environment)
        if not isinstance(env, dict):
            raise DeployerError(f"{self.where()}: the flag has no environment {self.environment}")
        if env.get("on") is True:
            index = (env.get("fallthrough") or {}).get("variation")
        else:
            index = env.get("offVariation")
        if not isinstance(index, int) or not 0 <= index < len(variations):
            return None  # a percentage rollout, or no variation: no single version serves
        return _variation_label(variations[index])

    def serve(self, variation: str) -> None:
        """Point the fallthrough at the variation with one semantic-patch instruction."""
        flag = self._read()
        matches = [v for v in flag.get("variations") or [] if _variation_label(v) == variation]
        if not matches:
            raise DeployerError(f"{self.where()} has no variation named {variation!r}")
        instruction = {
            "kind": "updateFallthroughVariationOrRollout",
            "variationId": matches[0]["_id"],
        }
        body = {
            "environmentKey": self.environment,
            "comment": "agentops rollback",
            "instructions": [instruction],
        }
        self._call("PATCH", self._path, json=body, headers={"Content-Type": LD_SEMANTIC_PATCH})

    def _read(self) -> dict[str, Any]:
        flag = self._call("GET", self._path, params={"env": self.environment})
        if not isinstance(flag, dict):
            raise DeployerError(f"{self.where()} answered a flag that is not an object")
        return flag


def _variation_label(variation: dict[str, Any]) -> str | None:
    name = variation.get("name")
    if isinstance(name, str) and name:
        return name
    value = variation.get("value")
    return value if isinstance(value, str) else None


class LangfuseBackend(FlagBackend):
    """Langfuse prompt labels: the version holding the label (e.g. production) is served.

      GET   /api/public/v2/prompts/{name}?label={label}
      PATCH /api/public/v2/prompts/{name}/versions/{version}   {"newLabels": [label]}
    Basic auth with the project's public and secret keys. Variations are prompt version numbers.
    """

    kind = "langfuse"

    def __init__(
        self,
        base_url: str,
        *,
        public_key: str,
        secret_key: str,
        prompt: str,
        label: str = "production",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout=timeout, transport=transport, secrets=[secret_key])
        self._http.auth = httpx.BasicAuth(public_key, secret_key)
        self.prompt = prompt
        self.label = label
        self._path = f"/api/public/v2/prompts/{quote(prompt, safe='')}"

    def where(self) -> str:
        """The prompt and label this backend moves."""
        return (
            f"langfuse at {display_url(self.base_url)} (prompt {self.prompt}, label {self.label})"
        )

    def served(self) -> str | None:
        """The prompt version that holds the label now."""
        try:
            prompt = self._call("GET", self._path, params={"label": self.label})
        except DeployerError as exc:
            if "HTTP 404" in str(exc):
                return None  # no version holds the label
            raise
        version = (prompt or {}).get("version")
        return str(version) if isinstance(version, int) else None

    def serve(self, variation: str) -> None:
        """Move the label to the prompt version (Langfuse takes it off the previous holder)."""
        if not variation.isdigit():
            raise DeployerError(
                f"{self.where()}: {variation!r} is not a prompt version number; "
                "map agent versions to prompt versions with `versions:`"
            )
        self._call("PATCH", f"{self._path}/versions/{variation}", json={"newLabels": [self.label]})
