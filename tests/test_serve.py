"""`agentops serve`'s app answers its health probe from the real store."""

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from agentops.serve.app import create_app


def test_healthz_reports_the_store(engine: Engine) -> None:
    with TestClient(create_app(engine=engine)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "store": "ok"}


def test_serving_freezes_what_start_up_loaded() -> None:
    """A full collection then walks only what requests allocated, not the loaded modules."""
    import gc

    from agentops.serve.memory import freeze_startup_objects

    before = gc.get_freeze_count()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > before + 10_000
    finally:
        gc.unfreeze()
