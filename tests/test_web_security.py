"""Web hardening: reading needs holding, bounded ids and bodies, sessions that end, login CSRF."""

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.agents.signin import register_person
from agentops.demo.fake_services import LoopbackServer
from agentops.demo.fake_slack import sign
from agentops.serve.app import create_app
from agentops.settings import Settings
from agentops.store.models import Conversation, ReviewItem, Role
from factories import login_token, review_queue

RITA, MIA = "rita@x.io", "mia@x.io"
SECRET = "s3cret-for-tests"


@pytest.fixture
def app_settings(engine: Engine) -> Settings:
    return Settings(
        database_url=str(engine.url),
        web_trusted_proxies="10.0.0.0/8",
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url="http://127.0.0.1:9/api/",
    )


def client_for(engine: Engine, settings: Settings, **kwargs: object) -> TestClient:
    return TestClient(create_app(settings=settings, engine=engine), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def rita(engine: Engine, app_settings: Settings) -> Iterator[TestClient]:
    with client_for(engine, app_settings) as client:
        sign_in(client, engine, RITA)
        yield client


@pytest.fixture
def mia(engine: Engine, app_settings: Settings) -> Iterator[TestClient]:
    with client_for(engine, app_settings) as client:
        sign_in(client, engine, MIA)
        yield client


def sign_in(client: TestClient, engine: Engine, email: str, role: Role = Role.reviewer) -> None:
    with Session(engine) as session:
        token = login_token(session, email, role=role)
    response = client.post("/signin", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text


def csrf_of(client: TestClient, path: str = "/queue") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_a_failed_submit_for_an_item_someone_else_holds_shows_nothing_of_it(
    engine: Engine, rita: TestClient, mia: TestClient
) -> None:
    with Session(engine) as session:
        review_queue(session, count=1)
    claimed = rita.post("/review/next", data={"csrf": csrf_of(rita)})
    item_id = int(str(claimed.url).rsplit("/", 1)[1].split("?")[0])
    with Session(engine) as session:
        item = session.get(ReviewItem, item_id)
        assert item is not None
        transcript = json.dumps(session.get(Conversation, item.conversation_id).transcript)  # type: ignore[union-attr]
        lease = str(item.lease_token)
    user_line = re.search(r"Please change booking \d", transcript)
    assert user_line
    form = {"csrf": csrf_of(mia), "lease_token": "1", "verdict-confirm": "fail"}
    page = mia.post(f"/review/items/{item_id}/submit", data=form)
    assert page.status_code == 409 and "was never yours" in page.text
    assert user_line.group(0) not in page.text
    assert f'value="{lease}"' not in page.text and "lease_token" not in page.text
    missing = mia.post("/review/items/987654/submit", data=form)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/review/items/{n}"),
        ("post", "/review/items/{n}/submit"),
        ("post", "/review/items/{n}/heartbeat"),
        ("post", "/review/items/{n}/skip"),
        ("get", "/actions/{n}"),
        ("post", "/actions/{n}/decide"),
    ],
)
def test_ids_beyond_the_store_are_not_found(rita: TestClient, method: str, path: str) -> None:
    for n in (2**63, 2**63 + 1, 2**31, 10**30):
        answer = getattr(rita, method)(path.format(n=n))
        assert answer.status_code == 404, (path, n, answer.status_code)


def test_sign_out_ends_the_saved_cookie_and_a_role_change_ends_it_too(
    engine: Engine, app_settings: Settings
) -> None:
    with client_for(engine, app_settings) as client:
        sign_in(client, engine, RITA)
        saved = client.cookies.get("agentops_session")
        assert client.get("/review").status_code == 200
        signed_out = client.post("/signout", data={"csrf": csrf_of(client)}, follow_redirects=False)
        assert signed_out.status_code == 303
        client.cookies.set("agentops_session", saved)  # replay the saved cookie
        assert client.get("/review", follow_redirects=False).status_code == 303
        sign_in(client, engine, RITA)
        assert client.get("/review").status_code == 200
        with Session(engine) as session:
            register_person(session, email=RITA, role=Role.manager, actor="test")
            session.commit()
        assert client.get("/review", follow_redirects=False).status_code == 303


def test_the_cookie_is_secure_behind_an_https_proxy(engine: Engine, app_settings: Settings) -> None:
    with Session(engine) as session:
        token = login_token(session, RITA)
    with client_for(engine, app_settings, client=("10.1.2.3", 5000)) as proxy:
        answer = proxy.post(
            "/signin",
            data={"token": token},
            headers={"X-Forwarded-Proto": "https"},
            follow_redirects=False,
        )
    assert answer.status_code == 303 and "secure" in answer.headers["set-cookie"].lower()


def test_a_cross_site_sign_in_form_is_refused(engine: Engine, app_settings: Settings) -> None:
    with Session(engine) as session:
        token = login_token(session, RITA)
    with client_for(engine, app_settings) as client:
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            answer = client.post(
                "/signin", data={"token": token}, headers=headers, follow_redirects=False
            )
            assert answer.status_code == 403 and "set-cookie" not in answer.headers
        same = client.post(
            "/signin",
            data={"token": token},
            headers={"Origin": "http://testserver"},
            follow_redirects=False,
        )
        assert same.status_code == 303  # the link still works once from the site itself


def signed(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    now = int(time.time())
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(now),
        "X-Slack-Signature": sign(SECRET, now, body),
    }


def test_signed_but_malformed_slack_payloads_are_400(
    engine: Engine, app_settings: Settings
) -> None:
    with client_for(engine, app_settings) as client:
        for payload in (
            '{"type": "block_actions", "user": "U1"}',
            '{"type": "block_actions", "user": {"id": "U1"}, "actions": "x"}',
            '{"type": "view_submission", "user": {"id": "U1"}, "view": []}',
            '{"type": "block_actions", "user": {"id": "U1"}, "channel": 5}',
            "[" * 20_000 + "]" * 20_000,
        ):
            body = b"payload=" + quote(payload).encode()
            answer = client.post("/slack/events", content=body, headers=signed(body))
            assert answer.status_code == 400, payload[:60]
        deep = b"[" * 100_000 + b"]" * 100_000
        answer = client.post(
            "/slack/events", content=deep, headers=signed(deep, "application/json")
        )
        assert answer.status_code == 400


@pytest.fixture
def served(engine: Engine, app_settings: Settings) -> Iterator[tuple[str, int]]:
    with LoopbackServer(create_app(settings=app_settings, engine=engine)) as server:
        host, port = server.url.removeprefix("http://").split(":")
        yield host, int(port)


@pytest.mark.parametrize("path", ["/slack/events", "/signin"])
def test_a_huge_body_is_refused_before_it_is_read(served: tuple[str, int], path: str) -> None:
    # Declared: 256 MB promised, one kilobyte sent; the answer comes without the rest.
    with socket.create_connection(served, timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {256 * 2**20}\r\n\r\n".encode()
            + b"x" * 1024
        )
        assert sock.recv(200).startswith(b"HTTP/1.1 413")
    # Streamed: chunks without a length; refused once past the limit, not at the end.
    with socket.create_connection(served, timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
        answer = b""
        for _ in range(4096):  # up to 256 MB if the server kept reading
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                answer = sock.recv(200)
            sock.setblocking(True)
            if answer:
                break
        if not answer:
            sock.settimeout(5)
            answer = sock.recv(200)
        assert answer.startswith(b"HTTP/1.1 413"), answer
