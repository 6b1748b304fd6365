"""Readiness tells the truth: store, Slack outbox lag, Prefect and the last sweep's age."""

from datetime import timedelta

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.health.service import FLOW_SWEEP, beat, store_checks
from agentops.serve.app import create_app
from agentops.store.models import SlackOutbox, utcnow
from factories import breach_rollback, degraded_fleet, serve, unreachable_url

LAG = timedelta(seconds=120)
AGE = timedelta(seconds=300)


def fake_prefect() -> FastAPI:
    api = FastAPI()

    @api.get("/api/health")
    def health() -> JSONResponse:
        return JSONResponse(True)

    return api


def by_name(engine: Engine, *, slack: bool = True) -> dict[str, tuple[bool, str]]:
    checks = store_checks(engine, slack_enabled=slack, max_outbox_lag=LAG, max_sweep_age=AGE)
    return {check.name: (check.ok, check.detail) for check in checks}


def test_store_checks_follow_the_sweep_and_the_outbox(engine: Engine) -> None:
    found = by_name(engine)
    assert found["store"] == (True, "reachable")
    assert found["slack_outbox"] == (True, "nothing waiting")
    assert found["last_sweep"] == (False, "no sweep has run yet")

    beat(engine, name=FLOW_SWEEP, now=utcnow() - timedelta(seconds=30))
    ok, detail = by_name(engine)["last_sweep"]
    assert ok and detail.startswith("flow:sweep-actions, 3")
    beat(engine, name=FLOW_SWEEP, now=utcnow() - timedelta(seconds=900))  # the same row
    assert by_name(engine)["last_sweep"][0] is False

    with Session(engine) as session:
        action = breach_rollback(session, degraded_fleet(session))
        session.add(
            SlackOutbox(
                event_seq=10_000,
                action_id=action.id,  # type: ignore[arg-type]
                kind="action.proposed",
                created_at=utcnow() - timedelta(seconds=600),
            )
        )
        session.commit()
    ok, detail = by_name(engine)["slack_outbox"]
    assert not ok and "queued 600 s ago" in detail
    assert by_name(engine, slack=False)["slack_outbox"] == (True, "Slack not configured")


def test_readyz_and_status_report_every_check(engine: Engine) -> None:
    # Prefect's own settings context (a harness may have one open) outranks the environment.
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        serve(fake_prefect()) as prefect_url,
        temporary_settings({PREFECT_API_URL: f"{prefect_url}/api"}),
    ):
        with TestClient(create_app(engine=engine)) as client:
            not_yet = client.get("/readyz")
            assert not_yet.status_code == 503
            checks = not_yet.json()["checks"]
            assert checks["prefect"] == {"ok": True, "detail": "reachable"}
            assert checks["last_sweep"]["ok"] is False
            assert client.get("/healthz").status_code == 200  # alive all the same

            beat(engine, name=FLOW_SWEEP)
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True
        status = CliRunner().invoke(app, ["status"])
        assert status.exit_code == 0, status.output
        assert "prefect" in status.output and "NOT READY" not in status.output

    with temporary_settings({PREFECT_API_URL: f"{unreachable_url()}/api"}):
        down = CliRunner().invoke(app, ["status"])
    assert down.exit_code == 1
    assert "NOT READY" in down.output and "unreachable: ConnectError" in down.output
