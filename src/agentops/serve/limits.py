"""Bounded requests: a body over its route's limit is refused before it is read whole,
and an id in a path beyond what the store holds is a plain 404."""

import json
import re
from typing import Any

MAX_ID = 2_147_483_647  # PostgreSQL integer ids; SQLite overflows at 2**63
# Bytes a POST may carry, by path; anything else posted gets DEFAULT_LIMIT.
LIMITS = {"/slack/events": 512 * 1024, "/signin": 16 * 1024}
DEFAULT_LIMIT = 1024 * 1024
# The OTLP receiver streams its bodies against its own settings (AGENTOPS_OTLP_MAX_*), with
# OTLP's own error bodies; buffering them here would cap a normal export at DEFAULT_LIMIT.
SELF_BOUNDED = frozenset({"/v1/traces", "/v1/logs"})
_DIGITS = re.compile(r"/(\d+)(?=/|$)")


class BoundedRequests:
    """ASGI middleware: cap request bodies while streaming them; 404 for ids out of range."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if any(int(found) > MAX_ID for found in _DIGITS.findall(scope.get("path", ""))):
            await _answer(send, 404, "no such item")
            return
        if scope.get("path", "") in SELF_BOUNDED:
            await self.app(scope, receive, send)
            return
        limit = LIMITS.get(scope.get("path", ""), DEFAULT_LIMIT)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer(send, 413, "request body too large")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                # Stop reading here: the rest of the body is never buffered.
                await _answer(send, 413, "request body too large")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Any) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Any, status: int, message: str) -> None:
    body = json.dumps({"ok": False, "error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
