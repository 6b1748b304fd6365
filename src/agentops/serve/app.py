"""The one FastAPI app behind `agentops serve`; each channel adds its own router here."""

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Engine

from agentops.serve.otlp import mount_otlp
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

    mount_web(app)
    mount_slack(app, settings=settings, engine=engine)
    mount_otlp(app, settings=settings, engine=engine)
    return app
