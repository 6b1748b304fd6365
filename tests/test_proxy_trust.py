"""The SSO header counts only from a configured proxy as seen on the socket, under real uvicorn."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.agents.signin import register_person
from agentops.store.models import Role

ADMIN = "admin@acme.com"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(trusted: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "AGENTOPS_WEB_TRUSTED_PROXIES": trusted}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from agentops.cli.app import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    why = process.stderr.read().decode() if process.stderr else ""
                    raise AssertionError(why) from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def admin(engine: Engine) -> str:
    with Session(engine) as session:
        register_person(session, email=ADMIN, role=Role.admin, actor="test")
        session.commit()
    return ADMIN


@pytest.fixture
def remote_proxy(admin: str) -> Iterator[str]:
    """`agentops serve` on loopback whose only trusted proxy is elsewhere (10.9.9.9)."""
    yield from _serve("10.9.9.9")


@pytest.fixture
def local_proxy(admin: str) -> Iterator[str]:
    """`agentops serve` whose trusted proxy runs on this host."""
    yield from _serve("127.0.0.1")


def test_a_forged_forwarded_chain_from_loopback_is_not_the_proxy(remote_proxy: str) -> None:
    forged = {"X-Forwarded-Email": ADMIN, "X-Forwarded-For": "10.9.9.9"}
    page = httpx.get(f"{remote_proxy}/admin/people", headers=forged, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/signin")
    added = httpx.post(
        f"{remote_proxy}/admin/people",
        headers=forged,
        data={"email": "evil@x.io", "role": "admin"},
        follow_redirects=False,
    )
    assert added.status_code == 303 and added.headers["location"].startswith("/signin")


def test_the_configured_proxy_on_the_socket_may_name_the_user(local_proxy: str) -> None:
    header = {"X-Forwarded-Email": ADMIN}
    assert httpx.get(f"{local_proxy}/admin/people", headers=header).status_code == 200
    # The chain a client sends through the proxy does not change who the proxy vouches for.
    chained = {**header, "X-Forwarded-For": "203.0.113.5, 127.0.0.1"}
    assert httpx.get(f"{local_proxy}/admin/people", headers=chained).status_code == 200
    assert httpx.get(f"{local_proxy}/admin/people", follow_redirects=False).status_code == 303
