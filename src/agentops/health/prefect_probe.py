"""Is the Prefect API answering? An HTTP edge for the readiness checks."""

import httpx

from agentops.health.service import Check


def prefect_check(api_url: str | None, *, timeout_s: float = 3.0) -> Check:
    """GET {PREFECT_API_URL}/health; unset means flows cannot be started from here."""
    if not api_url:
        return Check("prefect", False, "PREFECT_API_URL is not set")
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return Check("prefect", False, f"unreachable: {exc.__class__.__name__}")
    if response.status_code != 200:
        return Check("prefect", False, f"answered HTTP {response.status_code}")
    return Check("prefect", True, "reachable")
