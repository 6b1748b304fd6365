"""HTTP client for the deployer that switches an agent's serving version.

Contract (the demo's fake deployer implements the same):
  POST {base}/deployments  {"agent", "version", "action_id"}
       -> 202 {"deployment_id": str, "status": "accepted"}
  GET  {base}/agents/{agent}/health
       -> 200 {"agent": str, "version": str, "healthy": bool}
"""

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from agentops.errors import AgentOpsError
from agentops.http_client import ServiceClient, display_url, excerpt


class DeployerError(AgentOpsError):
    """The deployer could not be reached or did not honour its contract."""


@dataclass(frozen=True)
class HealthResult:
    """Whether the expected version came up healthy, and what the checks saw."""

    healthy: bool
    observed_version: str | None
    checks: int
    detail: str


class HttpDeployer(ServiceClient):
    """Talks to a deployer service over HTTP."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout=timeout, transport=transport)
        self._name = f"deployer at {display_url(self.base_url)}"

    def deploy(self, *, agent: str, version: str, action_id: int) -> str:
        """Ask the deployer to serve this version; returns its deployment id."""
        body = {"agent": agent, "version": version, "action_id": action_id}
        response = self._request("POST", "/deployments", json=body)
        if response.status_code != 202:
            raise DeployerError(
                f"{self._name} refused to deploy {agent} {version}: "
                f"HTTP {response.status_code} {excerpt(response.text)}"
            )
        deployment_id = self._json(response).get("deployment_id")
        if not isinstance(deployment_id, str) or not deployment_id:
            raise DeployerError(f"{self._name} accepted the deployment without a deployment_id")
        return deployment_id

    def check_health(self, *, agent: str) -> tuple[bool, str | None]:
        """One health probe: (healthy, version currently served)."""
        response = self._request("GET", f"/agents/{quote(agent, safe='')}/health")
        if response.status_code != 200:
            raise DeployerError(
                f"{self._name} health check for {agent} failed: "
                f"HTTP {response.status_code} {excerpt(response.text)}"
            )
        data = self._json(response)
        version = data.get("version")
        return data.get("healthy") is True, version if isinstance(version, str) else None

    def wait_until_healthy(
        self, *, agent: str, version: str, timeout_s: float = 30, poll_s: float = 0.5
    ) -> HealthResult:
        """Poll until the agent serves this version healthily, or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        checks = 0
        observed: str | None = None
        last_problem = "no health check completed"
        while True:
            checks += 1
            try:
                healthy, observed = self.check_health(agent=agent)
            except DeployerError as exc:
                # Health endpoints flap while a deployment rolls out: keep polling.
                last_problem = str(exc)
            else:
                if healthy and observed == version:
                    return HealthResult(
                        healthy=True,
                        observed_version=observed,
                        checks=checks,
                        detail=f"{agent} is serving {version} and healthy",
                    )
                last_problem = f"{agent} serves {observed or 'no version'}, healthy={healthy}"
            if time.monotonic() + poll_s > deadline:
                return HealthResult(
                    healthy=False,
                    observed_version=observed,
                    checks=checks,
                    detail=(
                        f"{agent} did not become healthy on {version} within {timeout_s:g}s "
                        f"({checks} checks; last: {last_problem})"
                    ),
                )
            time.sleep(poll_s)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise DeployerError(f"{self._name} is unreachable ({exc})") from exc
        except httpx.TimeoutException as exc:
            raise DeployerError(f"{self._name} did not answer {method} {path} in time") from exc
        except httpx.HTTPError as exc:
            raise DeployerError(f"{self._name} failed: {exc}") from exc

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise DeployerError(
                f"{self._name} answered with something that is not JSON: {excerpt(response.text)}"
            ) from exc
        if not isinstance(data, dict):
            raise DeployerError(f"{self._name} answered with {type(data).__name__}, not an object")
        return data
