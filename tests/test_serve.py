"""`agentops serve`'s app answers its health probe from the real store."""

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from agentops.serve.app import create_app


def test_healthz_reports_the_store(engine: Engine) -> None:
    with TestClient(create_app(engine=engine)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "store": "ok"}
