"""A real Unleash server (npm `unleash-server`) on a scratch PostgreSQL database, on loopback.

`.ci/install-unleash` installs the pinned package into UNLEASH_HOME (default
~/.cache/agentops-unleash, override with AGENTOPS_UNLEASH_HOME); `unleash()` skips the
calling test with the reason when node, the package or PostgreSQL is missing.
"""

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

UNLEASH_HOME = Path(
    os.environ.get("AGENTOPS_UNLEASH_HOME", Path.home() / ".cache" / "agentops-unleash")
)
SERVER_JS = UNLEASH_HOME / "node_modules" / "unleash-server" / "dist" / "server.js"
POSTGRES_ADMIN_URL = os.environ.get(
    "AGENTOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ADMIN_TOKEN = "*:*.agentops-admin-0123456789abcdef"
BACKEND_TOKEN = "default:development.agentops-backend-0123456789"
FRONTEND_TOKEN = "default:development.agentops-frontend-0123456789"
# A fresh database runs Unleash's migrations first: tens of seconds on a shared 2-core box.
START_TIMEOUT_S = 180


@dataclass(frozen=True)
class Unleash:
    """A running Unleash server and the tokens it was started with."""

    url: str
    admin_token: str = ADMIN_TOKEN
    backend_token: str = BACKEND_TOKEN
    frontend_token: str = FRONTEND_TOKEN

    def admin(self) -> httpx.Client:
        """An httpx client on the admin API."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": self.admin_token}, timeout=10
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def unleash() -> Iterator[Unleash]:
    """Start Unleash on a scratch database; stop it and drop the database afterwards."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the real Unleash server needs Node.js")
    if not SERVER_JS.exists():
        pytest.skip(f"unleash-server is not installed in {UNLEASH_HOME}: run .ci/install-unleash")
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"agentops_unleash_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable for Unleash's database: {exc.orig}")
    port = _free_port()
    database = admin.url.set(database=name, drivername="postgres")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "DATABASE_URL": database.render_as_string(hide_password=False),
        "DATABASE_SSL": "false",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "INIT_ADMIN_API_TOKENS": ADMIN_TOKEN,
        "INIT_BACKEND_API_TOKENS": BACKEND_TOKEN,
        "INIT_FRONTEND_API_TOKENS": FRONTEND_TOKEN,
        "LOG_LEVEL": "warn",
        "CHECK_VERSION": "false",
        "SEND_TELEMETRY": "false",
        "UNLEASH_DEFAULT_ADMIN_PASSWORD": f"pw-{uuid.uuid4().hex}",
    }
    log = UNLEASH_HOME / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["node", str(SERVER_JS)], env=env, cwd=UNLEASH_HOME, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield Unleash(url=url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        log.unlink(missing_ok=True)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"unleash-server exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"unleash-server did not start in {START_TIMEOUT_S}s:\n{log.read_text()}")


def create_feature(server: Unleash, feature: str, *, serving: str, environment: str) -> None:
    """A feature with one flexibleRollout strategy carrying one variant, switched on."""
    with server.admin() as client:
        base = "/api/admin/projects/default/features"
        client.post(base, json={"name": feature}).raise_for_status()
        client.post(
            f"{base}/{feature}/environments/{environment}/strategies",
            json={
                "name": "flexibleRollout",
                "constraints": [],
                "parameters": {"rollout": "100", "stickiness": "default", "groupId": feature},
                "variants": [
                    {
                        "name": serving,
                        "weight": 1000,
                        "weightType": "variable",
                        "stickiness": "default",
                    }
                ],
            },
        ).raise_for_status()
        client.post(f"{base}/{feature}/environments/{environment}/on").raise_for_status()


def client_api_variants(server: Unleash, feature: str) -> list[str]:
    """The variant names Unleash's client API hands SDKs for the feature (backend token)."""
    response = httpx.get(
        f"{server.url}/api/client/features/{feature}",
        headers={"Authorization": server.backend_token},
        timeout=10,
    )
    response.raise_for_status()
    data = response.json()
    if not data.get("enabled"):
        return []
    return [v["name"] for s in data.get("strategies", []) for v in s.get("variants") or []]


def frontend_variant(server: Unleash, feature: str, *, user_id: str) -> str | None:
    """The variant Unleash itself evaluates for one user (frontend API)."""
    response = httpx.get(
        f"{server.url}/api/frontend",
        params={"userId": user_id},
        headers={"Authorization": server.frontend_token},
        timeout=10,
    )
    response.raise_for_status()
    for toggle in response.json().get("toggles", []):
        if toggle.get("name") == feature and toggle.get("variant", {}).get("enabled"):
            return str(toggle["variant"]["name"])
    return None
