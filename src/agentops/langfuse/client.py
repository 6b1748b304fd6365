"""A small client for the Langfuse public API: observations (v2, by cursor) and scores."""

from typing import Any

import httpx

from agentops.errors import AgentOpsError

OBSERVATION_FIELDS = "core,basic,io,metadata"
PAGE_SIZE = 100
TIMEOUT_S = 30.0


class LangfuseError(AgentOpsError):
    """Langfuse refused a request or could not be reached."""


class LangfuseClient:
    """Basic auth with the project's public and secret keys."""

    def __init__(self, *, base_url: str, public_key: str, secret_key: str) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), auth=(public_key, secret_key), timeout=TIMEOUT_S
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def observations(
        self, *, cursor: str | None, from_start_time: str | None, limit: int = PAGE_SIZE
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of observations, oldest first, and the cursor of the next (None: done)."""
        params: dict[str, Any] = {"limit": limit, "fields": OBSERVATION_FIELDS}
        if cursor:
            params["cursor"] = cursor
        elif from_start_time:
            params["fromStartTime"] = from_start_time
        body = self._json("GET", "/api/public/v2/observations", params=params)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise LangfuseError("Langfuse answered observations without a 'data' array")
        meta = body.get("meta") or {}
        return [d for d in data if isinstance(d, dict)], meta.get("cursor") or None

    def create_score(self, score: dict[str, Any]) -> None:
        """POST a score; its `id` makes a repeat an update, not a second score."""
        self._json("POST", "/api/public/scores", json=score)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LangfuseError(f"Langfuse unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise LangfuseError(f"Langfuse answered {response.status_code} to {method} {path}")
        try:
            return response.json()
        except ValueError:
            raise LangfuseError(f"Langfuse answered {method} {path} with no JSON") from None
