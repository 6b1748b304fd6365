"""A fake agent platform and a fake deployer, served together over real HTTP on loopback.

The demo (and tests) talk to these exactly as they would to the real systems: the
platform's paged conversations API and the deployer's deploy/health API.
"""

import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from agentops.store.models import utcnow

DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 1000
STARTUP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Deployment:
    """One deployment the fake deployer accepted."""

    deployment_id: str
    agent: str
    version: str
    action_id: int
    requested_at: datetime
    visible_after: float


def _parse_timestamp(value: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime; naive values are taken as UTC."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


class LoopbackServer:
    """Serves an ASGI app with uvicorn on 127.0.0.1, on a free port, from a daemon thread."""

    def __init__(
        self, app: FastAPI, *, thread_name: str = "agentops-loopback", port: int = 0
    ) -> None:
        self.app = app
        self.port = port
        self.thread_name = thread_name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL while running, e.g. http://127.0.0.1:54321."""
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return self._url

    def start(self) -> str:
        """Start serving; returns the base URL once requests are answered."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        host, port = sock.getsockname()
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, log_config=None, lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.thread_name
        )
        thread.daemon = True
        thread.start()
        self._server, self._thread = server, thread
        self._wait_until_serving(host, port, sock)
        self._url = f"http://{host}:{port}"
        return self._url

    def _wait_until_serving(self, host: str, port: int, sock: socket.socket) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        assert self._server is not None and self._thread is not None
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                sock.close()
                self._server, self._thread = None, None
                raise RuntimeError(f"{self.thread_name} failed to start")
            time.sleep(0.01)
        # started means the socket listens; one connection proves it accepts requests.
        with socket.create_connection((host, port), timeout=STARTUP_TIMEOUT_S):
            pass

    def stop(self) -> None:
        """Stop serving and wait for the server thread to finish."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._server, self._thread, self._url = None, None, None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class FakeServices(LoopbackServer):
    """The fake platform and deployer: one FastAPI app in a background uvicorn thread."""

    def __init__(
        self, *, token: str | None = None, rollout_delay_s: float = 0.3, port: int = 0
    ) -> None:
        if rollout_delay_s < 0:
            raise ValueError("rollout_delay_s must not be negative")
        self.token = token
        self.rollout_delay_s = rollout_delay_s
        self._lock = threading.Lock()
        # agent -> list of (started_at, id, record); kept unsorted, sorted per request.
        self._conversations: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = {}
        self._initial_versions: dict[str, str] = {}
        self._deployments: list[Deployment] = []
        self._by_key: dict[str, Deployment] = {}
        super().__init__(self._build_app(), thread_name="agentops-fake-services", port=port)

    # --- platform state ----------------------------------------------------------------

    def add_conversations(self, agent: str, records: list[dict[str, Any]]) -> None:
        """Publish conversations for an agent (an empty list just makes the agent known)."""
        parsed = []
        for position, record in enumerate(records):
            if not isinstance(record.get("id"), str) or not isinstance(
                record.get("started_at"), str
            ):
                raise ValueError(f"record {position} needs a string 'id' and 'started_at'")
            parsed.append((_parse_timestamp(record["started_at"]), record["id"], dict(record)))
        with self._lock:
            self._conversations.setdefault(agent, []).extend(parsed)

    def conversation_count(self, agent: str) -> int:
        """How many conversations the platform holds for an agent."""
        with self._lock:
            return len(self._conversations.get(agent, []))

    # --- deployer state ----------------------------------------------------------------

    def set_live_version(self, agent: str, version: str) -> None:
        """Set which version serves an agent before any deployment happens."""
        with self._lock:
            self._initial_versions[agent] = version
            # One fake world: an agent that is deployed is also known to the platform.
            self._conversations.setdefault(agent, [])

    def live_version(self, agent: str) -> str | None:
        """The version serving the agent now: the latest deployment whose rollout finished."""
        with self._lock:
            return self._live_version_locked(agent, time.monotonic())

    def _live_version_locked(self, agent: str, now: float) -> str | None:
        for deployment in reversed(self._deployments):
            if deployment.agent == agent and deployment.visible_after <= now:
                return deployment.version
        return self._initial_versions.get(agent)

    def rollout_target(self, agent: str) -> str | None:
        """The version still rolling out for the agent, or None when its rollout settled."""
        now = time.monotonic()
        with self._lock:
            for deployment in reversed(self._deployments):
                if deployment.agent == agent:
                    return deployment.version if deployment.visible_after > now else None
        return None

    @property
    def deployments(self) -> list[Deployment]:
        """Every deployment accepted so far, oldest first."""
        with self._lock:
            return list(self._deployments)

    def _record_deployment(
        self, *, agent: str, version: str, action_id: int, key: str | None
    ) -> Deployment:
        with self._lock:
            if key is not None and key in self._by_key:
                return self._by_key[key]  # a retried request: the same deployment, once
        deployment = Deployment(
            deployment_id=f"dep-{uuid.uuid4().hex[:12]}",
            agent=agent,
            version=version,
            action_id=action_id,
            requested_at=utcnow(),
            visible_after=time.monotonic() + self.rollout_delay_s,
        )
        with self._lock:
            self._deployments.append(deployment)
            if key is not None:
                self._by_key[key] = deployment
        return deployment

    def _page(
        self, agent: str, *, since: datetime | None, until: datetime | None, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int] | None:
        with self._lock:
            stored = self._conversations.get(agent)
            if stored is None:
                return None
            selected = [
                (started_at, conversation_id, record)
                for started_at, conversation_id, record in stored
                if (since is None or started_at >= since) and (until is None or started_at < until)
            ]
        selected.sort(key=lambda entry: (entry[0], entry[1]))
        page = [record for _, _, record in selected[offset : offset + limit]]
        return page, len(selected)

    def _is_authorized(self, request: Request) -> bool:
        if self.token is None:
            return True
        return request.headers.get("authorization") == f"Bearer {self.token}"

    # --- HTTP --------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="agentops fake platform and deployer", docs_url=None, redoc_url=None)

        @app.get("/api/agents/{agent}/conversations")
        def list_conversations(
            agent: str,
            request: Request,
            since: str | None = None,
            until: str | None = None,
            limit: int = Query(default=DEFAULT_PAGE_LIMIT),
            cursor: str | None = None,
        ) -> JSONResponse:
            """One page of an agent's conversations in a started_at window."""
            if not self._is_authorized(request):
                return _error(401, "missing or invalid bearer token")
            if not 1 <= limit <= MAX_PAGE_LIMIT:
                return _error(400, f"limit must be between 1 and {MAX_PAGE_LIMIT}")
            try:
                since_at = _parse_timestamp(since) if since else None
                until_at = _parse_timestamp(until) if until else None
            except ValueError:
                return _error(400, "since and until must be ISO-8601 timestamps")
            if cursor is not None and not cursor.isdigit():
                return _error(400, f"invalid cursor {cursor!r}")
            offset = int(cursor) if cursor else 0
            result = self._page(agent, since=since_at, until=until_at, offset=offset, limit=limit)
            if result is None:
                return _error(404, f"unknown agent {agent!r}")
            items, total = result
            next_offset = offset + len(items)
            next_cursor = str(next_offset) if items and next_offset < total else None
            return JSONResponse({"items": items, "next_cursor": next_cursor})

        @app.post("/deployments")
        async def create_deployment(request: Request) -> JSONResponse:
            """Accept a deployment; it goes live after the rollout delay."""
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "body must be a JSON object")
            problem = _deployment_body_problem(body)
            if problem is not None:
                return _error(400, problem)
            deployment = self._record_deployment(
                agent=body["agent"],
                version=body["version"],
                action_id=body["action_id"],
                key=request.headers.get("idempotency-key"),
            )
            return JSONResponse(
                status_code=202,
                content={"deployment_id": deployment.deployment_id, "status": "accepted"},
            )

        @app.get("/agents/{agent}/health")
        def health(agent: str) -> JSONResponse:
            """The version an agent serves now, always healthy."""
            version = self.live_version(agent)
            if version is None:
                return _error(404, f"unknown agent {agent!r}")
            return JSONResponse({"agent": agent, "version": version, "healthy": True})

        @app.get("/agents/{agent}/live")
        def live(agent: str) -> JSONResponse:
            """The version an agent serves now (always healthy) and any rollout under way."""
            target = self.rollout_target(agent)
            version = self.live_version(agent)
            if version is None:
                return _error(404, f"unknown agent {agent!r}")
            return JSONResponse(
                {
                    "agent": agent,
                    "version": version,
                    "healthy": True,
                    "target_version": target or version,
                    "rollout": "rolling_out" if target else "settled",
                }
            )

        return app


def _deployment_body_problem(body: object) -> str | None:
    """Why a deployment request body is unacceptable, or None when it is fine."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    missing = [field for field in ("agent", "version", "action_id") if field not in body]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    for field in ("agent", "version"):
        if not isinstance(body[field], str) or not body[field].strip():
            return f"'{field}' must be a non-empty string"
    if isinstance(body["action_id"], bool) or not isinstance(body["action_id"], int):
        return "'action_id' must be an integer"
    return None
