"""Who is on the other end of the socket, and who the trusted proxies say the client is.

uvicorn's own proxy handling trusts loopback by default and overwrites the socket peer,
so any local process could pose as the SSO proxy. `agentops serve` turns it off; the app
records the real peer first, then evaluates X-Forwarded-For against the configured
proxies only (the rightmost address that is not a trusted proxy is the client).
"""

import ipaddress
from typing import Any, cast

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

PEER_KEY = "agentops.peer"


def trusted_networks(configured: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The configured proxy addresses or networks (AGENTOPS_WEB_TRUSTED_PROXIES)."""
    return [
        ipaddress.ip_network(entry.strip(), strict=False)
        for entry in configured.split(",")
        if entry.strip()
    ]


def is_trusted(host: str | None, networks: list[Any]) -> bool:
    """Whether this address is one of the configured proxies."""
    if not host or not networks:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def uvicorn_options(configured: str) -> dict[str, Any]:
    """uvicorn settings for `agentops serve`: no proxy trust of its own (the app decides)."""
    hosts = [str(network) for network in trusted_networks(configured)]
    return {"proxy_headers": False, "forwarded_allow_ips": hosts}


class ForwardedFor:
    """ASGI middleware: keep the socket peer, then apply X-Forwarded-For from trusted proxies."""

    def __init__(self, app: Any, *, trusted: str) -> None:
        hosts = [str(network) for network in trusted_networks(trusted)]
        # uvicorn's middleware walks the chain right to left and stops at the first address
        # that is not a trusted proxy; with no proxies configured it trusts nobody.
        self.app = app
        self.forwarded = ProxyHeadersMiddleware(app, trusted_hosts=hosts) if hosts else app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            scope[PEER_KEY] = client[0] if client else None
        await self.forwarded(scope, receive, send)


def socket_peer(scope: Any) -> str | None:
    """The address on the other end of the TCP connection (never a forwarded one)."""
    if PEER_KEY in scope:
        return cast("str | None", scope[PEER_KEY])
    client = scope.get("client")
    return client[0] if client else None
