"""A real `agentops serve` app under uvicorn on a free loopback port, for OTLP tests."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from sqlalchemy.engine import Engine

from agentops.serve.app import create_app
from agentops.settings import Settings

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(engine: Engine, **settings: Any) -> Iterator[tuple[str, Any]]:
    """(base URL, app) of a running server; stopped on exit."""
    options: dict[str, Any] = {
        "database_url": str(engine.url.render_as_string(hide_password=False)),
        "otlp_tokens": f"ci={TOKEN},other=another-token-xyz",
        "otlp_idle_close_s": 0.4,
    }
    options.update(settings)
    app = create_app(settings=Settings(**options), engine=engine)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for(check: Any, *, timeout: float = 10.0) -> Any:
    """Poll check() until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
