import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import Session

from agentops.agents.service import list_versions
from agentops.ingestion.platform_client import PlatformClient, PlatformError
from agentops.ingestion.service import import_conversations, records_from_platform
from factories import agent_named, unreachable_url

TOKEN = "s3cret-token"


def conversation(number: int) -> dict[str, Any]:
    return {
        "id": f"conv-{number}",
        "started_at": f"2024-05-15T15:{number:02d}:00Z",
        "channel": "chat",
        "latency_ms": 900 + number,
        "agent_version": "v2",
        "messages": [
            {"role": "user", "content": "Hi, I need to change my flight."},
            {"role": "assistant", "content": "Sure, what is your user id?"},
        ],
    }


class FakePlatform:
    """Pages 5 conversations of agent 'airline' 2 at a time; fails on cue."""

    def __init__(self) -> None:
        self.items = [conversation(n) for n in range(5)]
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []  # statuses to answer before serving normally
        self.raw_body: bytes | None = None

    def handle(self, handler: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        url = urlsplit(handler.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        self.requests.append({"path": url.path, "query": query})
        if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, b'{"detail": "bad token"}'
        if self.fail_next:
            return self.fail_next.pop(0), self.raw_body or b'{"detail": "try later"}'
        if self.raw_body is not None:
            return 200, self.raw_body
        if url.path != "/api/agents/airline/conversations":
            return 404, b'{"detail": "unknown agent"}'
        offset = int(query.get("cursor", "0"))
        limit = int(query["limit"])
        page = self.items[offset : offset + limit]
        more = offset + limit < len(self.items)
        body = {"items": page, "next_cursor": str(offset + limit) if more else None}
        return 200, json.dumps(body).encode()


@pytest.fixture
def platform() -> Iterator[tuple[FakePlatform, str]]:
    fake = FakePlatform()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = fake.handle(self)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def client(base_url: str, **options: Any) -> PlatformClient:
    return PlatformClient(base_url, token=TOKEN, backoff_s=0.01, **options)


def test_pages_arrive_in_order_with_one_retry(platform: tuple[FakePlatform, str]) -> None:
    fake, base_url = platform
    since = datetime(2024, 5, 15, 10, 0, tzinfo=UTC)
    until = datetime(2024, 5, 16, 10, 0, tzinfo=UTC)
    with client(base_url) as api:
        items = api.iter_conversations(agent="airline", since=since, until=until, page_size=2)
        first = next(items)
        fake.fail_next = [503]  # the second page fails once, then succeeds
        rest = list(items)

    assert [item["id"] for item in [first, *rest]] == [f"conv-{n}" for n in range(5)]
    assert [r["query"].get("cursor") for r in fake.requests] == [None, "2", "2", "4"]
    assert fake.requests[0]["query"] == {
        "since": "2024-05-15T10:00:00+00:00",
        "until": "2024-05-16T10:00:00+00:00",
        "limit": "2",
    }


def test_platform_items_import_into_the_store(
    platform: tuple[FakePlatform, str], session: Session
) -> None:
    _, base_url = platform
    agent = agent_named(session)
    with client(base_url) as api:
        items = api.iter_conversations(agent="airline", page_size=3)
        report = import_conversations(
            session,
            agent=agent,
            version=None,
            records=records_from_platform(items),
            actor="sync",
            source=base_url,
        )
    session.commit()
    assert (report.imported, report.versions) == (5, {"v2": 5})
    assert [v.version for v in list_versions(session, agent=agent)] == ["v2"]


def test_unknown_agent_is_a_clear_error(platform: tuple[FakePlatform, str]) -> None:
    _, base_url = platform
    with client(base_url) as api, pytest.raises(PlatformError, match="unknown agent 'ghost'"):
        list(api.iter_conversations(agent="ghost"))


def test_missing_token_is_refused(platform: tuple[FakePlatform, str]) -> None:
    _, base_url = platform
    with PlatformClient(base_url) as api, pytest.raises(PlatformError, match="HTTP 401"):
        list(api.iter_conversations(agent="airline"))


def test_persistent_failure_gives_up_with_status_and_url(
    platform: tuple[FakePlatform, str],
) -> None:
    fake, base_url = platform
    fake.fail_next = [503, 429, 502]
    with client(base_url, max_retries=2) as api, pytest.raises(PlatformError) as caught:
        list(api.iter_conversations(agent="airline"))
    message = str(caught.value)
    assert "after 3 attempts: HTTP 502" in message
    assert f"{base_url}/api/agents/airline/conversations?limit=200" in message
    assert TOKEN not in message
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "non-JSON response"),
        (b'{"conversations": []}', "is not of the form"),
        (b'{"items": [1], "next_cursor": null}', r"items\[0\] is not a JSON object"),
    ],
)
def test_malformed_pages_are_platform_errors(
    platform: tuple[FakePlatform, str], body: bytes, message: str
) -> None:
    fake, base_url = platform
    fake.raw_body = body
    with client(base_url) as api, pytest.raises(PlatformError, match=message):
        list(api.iter_conversations(agent="airline"))


def test_unreachable_platform_is_retried_then_reported() -> None:
    api = client(unreachable_url(), max_retries=1)
    with api, pytest.raises(PlatformError, match="after 2 attempts: ConnectError"):
        list(api.iter_conversations(agent="airline"))


def test_naive_window_bounds_are_refused(platform: tuple[FakePlatform, str]) -> None:
    _, base_url = platform
    with client(base_url) as api, pytest.raises(PlatformError, match="timezone-aware"):
        list(api.iter_conversations(agent="airline", since=datetime(2024, 5, 15)))


@pytest.mark.parametrize(
    "echo",
    [
        f"upstream said: bad request from Bearer {TOKEN}",
        json.dumps({"detail": "invalid", "access_token": TOKEN}),
        f"token={TOKEN}&retry=false",
    ],
)
def test_a_token_echoed_by_the_platform_never_reaches_errors_or_logs(
    platform: tuple[FakePlatform, str], echo: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake, base_url = platform
    fake.raw_body = echo.encode()
    fake.fail_next = [400]
    with client(base_url) as api, pytest.raises(PlatformError) as failed:
        list(api.iter_conversations(agent="airline"))
    assert "HTTP 400" in str(failed.value)
    assert TOKEN not in str(failed.value) and "***" in str(failed.value)
    assert TOKEN not in caplog.text
