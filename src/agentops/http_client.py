"""What the HTTP clients of outside services share: one httpx client, safe error text."""

from collections.abc import Iterable
from types import TracebackType
from typing import Self

import httpx

from agentops.redaction import redact

EXCERPT_LIMIT = 200


class ServiceClient:
    """An httpx client bound to one service's base URL; use it in a `with` block."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
        secrets: Iterable[str | None] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._secrets = [secret for secret in secrets if secret]
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def _excerpt(self, text: str) -> str:
        """A response body excerpt with this client's own credentials masked."""
        return excerpt(text, secrets=self._secrets)

    def close(self) -> None:
        """Release the underlying connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def display_url(url: httpx.URL | str) -> str:
    """The URL without any user:password part, fit for logs and error messages."""
    url = httpx.URL(url)
    return str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)


def excerpt(text: str, limit: int = EXCERPT_LIMIT, *, secrets: Iterable[str | None] = ()) -> str:
    """The start of a response body on one line, credentials masked, for an error message."""
    text = redact(" ".join(text.split()), secrets=secrets)
    return text if len(text) <= limit else text[:limit] + "..."
