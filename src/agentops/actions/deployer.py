"""HTTP client for the deployer that switches an agent's serving version.

Contract (the demo's fake deployer implements the same):
  POST {base}/deployments  {"agent", "version", "action_id"}
       header Idempotency-Key: the same key on every retry of one action's deployment
       -> 202 {"deployment_id": str, "status": "accepted"}  (a replayed key may answer 200)
  GET  {base}/agents/{agent}/live
       -> 200 {"agent": str, "version": str | null, "healthy": bool}  what serves right now
          optional: "target_version": str | null  the version being rolled out (if any)
                    "rollout": "rolling_out" | "settled" | "failed"
          (a deployer that omits both is read as before: nothing said about a rollout)
  GET  {base}/agents/{agent}/health
       -> 200 {"agent": str, "version": str, "healthy": bool}

Authentication, from settings: a bearer token (`Authorization: Bearer …`), or HMAC-signed
requests (`X-Agentops-Timestamp` and `X-Agentops-Signature: v1=<hex>`, where the hex is
HMAC-SHA256 over `v1:{timestamp}:{METHOD}:{path}:{sha256 of the body}`), or both.
"""

import hashlib
import hmac
import time
from collections.abc import Generator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from agentops.errors import AgentOpsError
from agentops.http_client import ServiceClient, display_url

RETRY_STATUSES = frozenset({502, 503, 504})
SIGNATURE_VERSION = "v1"


class DeployerError(AgentOpsError):
    """The deployer could not be reached or did not honour its contract."""


class DeployerTimeout(DeployerError):
    """The deployer did not answer in time: whether it acted is unknown until asked."""


@dataclass(frozen=True)
class HealthResult:
    """Whether the expected version came up healthy, and what the checks saw."""

    healthy: bool
    observed_version: str | None
    checks: int
    detail: str


class Rollout(StrEnum):
    """Whether a deployer is still switching an agent to its target version."""

    rolling_out = "rolling_out"
    settled = "settled"
    failed = "failed"


@dataclass(frozen=True)
class LiveState:
    """What the deployer says is serving an agent right now, and what it is rolling out.

    `target` and `rollout` are None when the deployer does not say (the original contract).
    """

    version: str | None
    healthy: bool
    target: str | None = None
    rollout: Rollout | None = None

    @property
    def rolling_out(self) -> bool:
        """True while the deployer reports a rollout still under way."""
        return self.rollout == Rollout.rolling_out

    @property
    def serves_healthily(self) -> bool:
        """Healthy and not reported as a failed rollout."""
        return self.healthy and self.rollout != Rollout.failed

    def describe(self) -> str:
        """One line: what serves, and the rollout when the deployer says."""
        text = f"{self.version or 'no version'} (healthy={self.healthy})"
        if self.rollout is not None:
            towards = f" towards {self.target}" if self.target else ""
            text += f", rollout {self.rollout.value}{towards}"
        return text


def parse_live_state(data: dict[str, Any], *, source: str) -> LiveState:
    """Read a live-state JSON object; the rollout fields are optional (older deployers)."""
    version = data.get("version")
    target = data.get("target_version")
    raw_rollout = data.get("rollout")
    rollout: Rollout | None = None
    if raw_rollout is not None:
        try:
            rollout = Rollout(raw_rollout)
        except ValueError as exc:
            allowed = ", ".join(state.value for state in Rollout)
            raise DeployerError(
                f"{source} answered rollout={str(raw_rollout)[:40]!r}; expected one of {allowed}"
            ) from exc
    return LiveState(
        version=version if isinstance(version, str) else None,
        healthy=data.get("healthy") is True,
        target=target if isinstance(target, str) else None,
        rollout=rollout,
    )


class Deployer(Protocol):
    """The port the executor needs: deploy, watch health, and ask what is live."""

    def deploy(self, *, agent: str, version: str, action_id: int, idempotency_key: str) -> str:
        """Ask for the version to serve; returns the deployment id."""
        ...

    def wait_until_healthy(
        self, *, agent: str, version: str, timeout_s: float = 30, poll_s: float = 0.5
    ) -> HealthResult:
        """Poll until the version serves healthily or the timeout passes."""
        ...

    def live(self, *, agent: str) -> LiveState:
        """The version serving the agent now, and whether it is healthy."""
        ...


def request_signature(secret: str, *, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The HMAC signature header value for one request (the deployer recomputes it)."""
    message = ":".join(
        [SIGNATURE_VERSION, timestamp, method.upper(), path, hashlib.sha256(body).hexdigest()]
    )
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


class DeployerAuth(httpx.Auth):
    """Adds the bearer token and/or the HMAC signature to every deployer request."""

    requires_request_body = True

    def __init__(self, *, token: str | None, hmac_secret: str | None) -> None:
        self._token = token
        self._hmac_secret = hmac_secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign the request just before it is sent (again on each retry)."""
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        if self._hmac_secret:
            timestamp = str(int(time.time()))
            request.headers["X-Agentops-Timestamp"] = timestamp
            request.headers["X-Agentops-Signature"] = request_signature(
                self._hmac_secret,
                timestamp=timestamp,
                method=request.method,
                path=request.url.raw_path.decode(),
                body=request.content,
            )
        yield request


class HttpDeployer(ServiceClient):
    """Talks to a deployer service over HTTP."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        hmac_secret: str | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, timeout=timeout, transport=transport, secrets=[token, hmac_secret]
        )
        self._http.auth = DeployerAuth(token=token, hmac_secret=hmac_secret)
        self._name = f"deployer at {display_url(self.base_url)}"
        self._retries = retries
        self._backoff_s = backoff_s

    def deploy(self, *, agent: str, version: str, action_id: int, idempotency_key: str) -> str:
        """Ask the deployer to serve this version; returns its deployment id.

        Only refused connections and 502/503/504 are retried, with the same key. A timeout is
        not: the deployer may have acted, so the caller asks `live` instead of posting again.
        """
        body = {"agent": agent, "version": version, "action_id": action_id}
        headers = {"Idempotency-Key": idempotency_key}
        for attempt in range(self._retries + 1):
            response = self._post_once(body, headers=headers, last=attempt == self._retries)
            if response is not None:
                break
            time.sleep(self._backoff_s * 2**attempt)
        assert response is not None
        if response.status_code not in {200, 202}:
            raise DeployerError(
                f"{self._name} refused to deploy {agent} {version}: "
                f"HTTP {response.status_code} {self._excerpt(response.text)}"
            )
        deployment_id = self._json(response).get("deployment_id")
        if not isinstance(deployment_id, str) or not deployment_id:
            raise DeployerError(f"{self._name} accepted the deployment without a deployment_id")
        return deployment_id

    def live(self, *, agent: str) -> LiveState:
        """What the deployer serves for the agent right now."""
        response = self._request("GET", f"/agents/{quote(agent, safe='')}/live")
        if response.status_code != 200:
            raise DeployerError(
                f"{self._name} could not say what serves {agent}: "
                f"HTTP {response.status_code} {self._excerpt(response.text)}"
            )
        return parse_live_state(self._json(response), source=self._name)

    def check_health(self, *, agent: str) -> tuple[bool, str | None]:
        """One health probe: (healthy, version currently served)."""
        response = self._request("GET", f"/agents/{quote(agent, safe='')}/health")
        if response.status_code != 200:
            raise DeployerError(
                f"{self._name} health check for {agent} failed: "
                f"HTTP {response.status_code} {self._excerpt(response.text)}"
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

    def _post_once(
        self, body: dict[str, Any], *, headers: dict[str, str], last: bool
    ) -> httpx.Response | None:
        """One POST; None means 'retry' (refused connection or a gateway error)."""
        try:
            response = self._http.post("/deployments", json=body, headers=headers)
        except httpx.ConnectError as exc:
            if last:
                raise DeployerError(f"{self._name} is unreachable ({exc})") from exc
            return None
        except httpx.TimeoutException as exc:
            raise DeployerTimeout(f"{self._name} did not answer POST /deployments in time") from exc
        except httpx.HTTPError as exc:
            raise DeployerError(f"{self._name} failed: {exc.__class__.__name__}") from exc
        if response.status_code in RETRY_STATUSES and not last:
            return None
        return response

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise DeployerError(f"{self._name} is unreachable ({exc})") from exc
        except httpx.TimeoutException as exc:
            raise DeployerTimeout(f"{self._name} did not answer {method} {path} in time") from exc
        except httpx.HTTPError as exc:
            raise DeployerError(f"{self._name} failed: {exc.__class__.__name__}") from exc

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise DeployerError(
                f"{self._name} answered with something that is not JSON: "
                f"{self._excerpt(response.text)}"
            ) from exc
        if not isinstance(data, dict):
            raise DeployerError(f"{self._name} answered with {type(data).__name__}, not an object")
        return data
