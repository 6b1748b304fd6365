"""The one FastAPI app behind `agentops serve`; each channel adds its own router here."""

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Engine

from agentops.bootstrap import make_server_waker
from agentops.health.readiness import readiness
from agentops.serve.limits import BoundedRequests
from agentops.serve.otlp import mount_otlp
from agentops.serve.proxy import ForwardedFor
from agentops.settings import Settings, get_settings
from agentops.slack import mount_slack
from agentops.store.db import make_engine
from agentops.store.migrate import ensure_schema
from agentops.web.routes import mount_web


def create_app(*, settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app on one engine; channels (Slack, web) mount their routers on it."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    ensure_schema(engine)
    app = FastAPI(title="agentops", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.state.settings = settings

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Liveness and store reachability, for load balancers and probes."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # report, never crash the probe
            return JSONResponse({"ok": False, "store": exc.__class__.__name__}, status_code=503)
        return JSONResponse({"ok": True, "store": "ok"})

    # One waker for every channel: a decision from the browser executes at once with or
    # without Slack, and Slack (when configured) adds its follow-ups to the same pool.
    waker = make_server_waker(engine, settings=settings)
    app.state.waker = waker
    # The socket peer is recorded before X-Forwarded-For (from configured proxies only) is
    # applied, so the SSO header can be tied to the proxy itself (web/auth.py).
    app.add_middleware(BoundedRequests)
    app.add_middleware(ForwardedFor, trusted=settings.web_trusted_proxies)

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Readiness: the store, the Slack outbox's lag, Prefect, and the last sweep's age."""
        checks = readiness(engine, settings=settings)
        ready = all(check.ok for check in checks)
        return JSONResponse(
            {
                "ready": ready,
                "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
            },
            status_code=200 if ready else 503,
        )

    mount_web(app)
    mount_slack(app, settings=settings, engine=engine, waker=waker)
    mount_otlp(app, settings=settings, engine=engine)
    app.router.add_event_handler("shutdown", waker.close)
    return app
