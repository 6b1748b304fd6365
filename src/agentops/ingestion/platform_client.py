"""HTTP client for the agent platform's paged conversations API."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from agentops.errors import AgentOpsError
from agentops.http_client import ServiceClient, display_url

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 5.0
MAX_PAGE_SIZE = 1000


class PlatformError(AgentOpsError):
    """The platform could not be reached or answered with something unusable."""


class PlatformClient(ServiceClient):
    """Reads conversations from `GET /api/agents/{agent}/conversations`, page by page."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 3,
        backoff_s: float = 0.25,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        super().__init__(
            base_url, timeout=timeout, transport=transport, headers=headers, secrets=[token]
        )
        self.max_retries = max_retries
        self.backoff_s = backoff_s

    def iter_conversations(
        self,
        *,
        agent: str,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 200,
    ) -> Iterator[dict[str, Any]]:
        """Yield the agent's conversations in platform order, following next_cursor."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise PlatformError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        params: dict[str, str | int] = {"limit": page_size}
        if since is not None:
            params["since"] = _iso_utc(since, name="since")
        if until is not None:
            params["until"] = _iso_utc(until, name="until")
        if since is not None and until is not None and since >= until:
            raise PlatformError("since must be earlier than until")
        path = f"/api/agents/{quote(agent, safe='')}/conversations"
        cursors_seen: set[str] = set()
        page = 1
        while True:
            body = self._get_json(path, params=params, agent=agent)
            items, next_cursor = _page_contents(body, page=page)
            yield from items
            if next_cursor is None:
                return
            if next_cursor in cursors_seen:
                raise PlatformError(
                    f"platform returned cursor {next_cursor!r} twice; stopping to avoid a loop"
                )
            cursors_seen.add(next_cursor)
            params["cursor"] = next_cursor
            page += 1

    def _get_json(self, path: str, *, params: dict[str, str | int], agent: str) -> object:
        response = self._get_with_retries(path, params=params)
        url = display_url(response.request.url)
        if response.status_code == 404:
            raise PlatformError(f"unknown agent {agent!r}: the platform answered 404 for {url}")
        if response.status_code in {401, 403}:
            raise PlatformError(
                f"the platform refused access (HTTP {response.status_code}) for {url}: "
                "check the platform token"
            )
        if response.status_code != 200:
            raise PlatformError(
                f"the platform answered HTTP {response.status_code} for {url}: "
                f"{self._excerpt(response.text)}"
            )
        try:
            return response.json()
        except ValueError:
            raise PlatformError(
                f"the platform sent a non-JSON response for {url}: {self._excerpt(response.text)}"
            ) from None

    def _get_with_retries(self, path: str, *, params: dict[str, str | int]) -> httpx.Response:
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            delay = self.backoff_s * 2 ** (attempt - 1)
            try:
                response = self._http.get(path, params=params)
            except httpx.UnsupportedProtocol as exc:
                raise PlatformError(
                    f"cannot use platform URL {display_url(self.base_url)!r}: {exc}"
                ) from exc
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__} ({exc or 'no detail'})"
                url = display_url(exc.request.url)
            else:
                if response.status_code not in RETRYABLE_STATUS:
                    return response
                problem = f"HTTP {response.status_code}"
                url = display_url(response.request.url)
                delay = max(delay, _retry_after(response))
            if attempt < attempts:
                time.sleep(delay)
        raise PlatformError(
            f"the platform request failed after {attempts} attempt"
            f"{'' if attempts == 1 else 's'}: {problem} for {url}"
        )


def _page_contents(body: object, *, page: int) -> tuple[list[dict[str, Any]], str | None]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise PlatformError(
            f"page {page} from the platform is not of the form "
            '{"items": [...], "next_cursor": ...}'
        )
    next_cursor = body.get("next_cursor")
    if next_cursor is not None and not isinstance(next_cursor, str):
        raise PlatformError(f"page {page}: next_cursor must be a string or null")
    items = body["items"]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PlatformError(f"page {page}: items[{index}] is not a JSON object")
    return items, next_cursor or None


def _iso_utc(moment: datetime, *, name: str) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PlatformError(f"{name} must be timezone-aware (UTC)")
    return moment.astimezone(UTC).isoformat()


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", "0"))
    except ValueError:
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
