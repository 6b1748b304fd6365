"""Web pages over HTTP: sign-in, roles, CSRF, the trusted SSO header and the review fencing."""

import re
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.agents.signin import register_person
from agentops.cli.app import run
from agentops.review import service as review
from agentops.serve.app import create_app
from agentops.settings import Settings
from agentops.store.models import (
    Action,
    ActionStatus,
    ItemStatus,
    Review,
    ReviewFinding,
    ReviewItem,
    Role,
    utcnow,
)
from factories import (
    OWNER,
    FakeDeployer,
    breach_rollback,
    degraded_fleet,
    login_token,
    review_queue,
    reviewer_as,
    serve,
)

RITA, MIA, ADA = "rita@x.io", "mia@x.io", "ada@x.io"


@pytest.fixture
def app_settings(engine: Engine) -> Settings:
    return Settings(database_url=str(engine.url), web_trusted_proxies="10.0.0.0/8")


@pytest.fixture
def client(engine: Engine, app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings=app_settings, engine=engine)) as client:
        yield client


def sign_in(client: TestClient, engine: Engine, email: str, role: Role = Role.reviewer) -> None:
    with Session(engine) as session:
        token = login_token(session, email, role=role)
    response = client.post("/signin", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text


def csrf_of(client: TestClient, path: str = "/queue") -> str:
    page = client.get(path).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_a_request_without_a_session_is_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/review", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/review"
    assert client.get("/signin").status_code == 200


def test_a_login_link_works_once_and_sets_a_safe_cookie(client: TestClient, engine: Engine) -> None:
    with Session(engine) as session:
        token = login_token(session, RITA)
    landing = client.get("/signin", params={"token": token})
    assert "Sign in (Enter)" in landing.text  # a link preview cannot sign in by fetching it
    response = client.post(
        "/signin", data={"token": token, "next": "//evil.example"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/review").status_code == 200
    client.cookies.clear()
    again = client.post("/signin", data={"token": token})
    assert again.status_code == 400 and "already used" in again.text
    forged = client.post("/signin", data={"token": token[:-2] + "xx"})
    assert forged.status_code == 400 and "not valid" in forged.text


def test_an_expired_link_is_refused(client: TestClient, engine: Engine) -> None:
    from agentops.store.models import LoginLink

    with Session(engine) as session:
        token = login_token(session, RITA)
        link = session.exec(select(LoginLink)).one()
        link.expires_at = utcnow() - timedelta(seconds=1)
        session.add(link)
        session.commit()
    response = client.post("/signin", data={"token": token})
    assert response.status_code == 400 and "expired" in response.text


def test_roles_are_enforced_with_a_403_page(client: TestClient, engine: Engine) -> None:
    sign_in(client, engine, RITA)
    page = client.get("/admin/people")
    assert page.status_code == 403
    assert "the people page is for admin" in page.text and "Traceback" not in page.text
    assert client.get("/actions").status_code == 403
    client.cookies.clear()
    sign_in(client, engine, MIA, Role.manager)
    assert client.get("/agents").status_code == 200
    refused = client.post("/review/next", data={"csrf": csrf_of(client)})
    assert refused.status_code == 403 and "reviewing is for" in refused.text


def test_admin_registers_people_on_the_web(client: TestClient, engine: Engine) -> None:
    sign_in(client, engine, ADA, Role.admin)
    response = client.post(
        "/admin/people", data={"csrf": csrf_of(client), "email": "New@X.io", "role": "manager"}
    )
    assert response.status_code == 200 and "new@x.io" in response.text
    bad = client.post(
        "/admin/people", data={"csrf": csrf_of(client), "email": "n@x.io", "role": "king"}
    )
    assert bad.status_code == 400
    form = {"csrf": csrf_of(client), "name": "helper", "owner": "o@x.io", "backup": "b@x.io"}
    registered = client.post("/agents", data=form)
    assert registered.status_code == 200 and "backup approver" in registered.text
    again = client.post("/agents", data=form)
    assert again.status_code == 400 and "already registered" in again.text
    client.cookies.clear()
    sign_in(client, engine, MIA, Role.manager)
    refused = client.post("/agents", data={**form, "csrf": csrf_of(client), "name": "x"})
    assert refused.status_code == 403


def test_a_form_without_the_csrf_token_is_refused(client: TestClient, engine: Engine) -> None:
    with Session(engine) as session:
        review_queue(session, count=1)
    sign_in(client, engine, RITA)
    for data in ({}, {"csrf": "guess"}):
        response = client.post("/review/next", data=data)
        assert response.status_code == 403 and "reload the page" in response.text
    with Session(engine) as session:
        assert session.exec(select(ReviewItem)).one().status == ItemStatus.open


def test_identity_header_counts_only_from_a_configured_proxy(
    engine: Engine, app_settings: Settings
) -> None:
    with Session(engine) as session:
        register_person(session, email=RITA, role=Role.reviewer, actor="test")
        session.commit()
    app = create_app(settings=app_settings, engine=engine)
    header = {"X-Forwarded-Email": RITA}
    with TestClient(app, client=("203.0.113.9", 5000)) as outsider:
        response = outsider.get("/review", headers=header, follow_redirects=False)
        assert response.status_code == 303  # ignored: anyone could send it
    with TestClient(app, client=("10.1.2.3", 5000)) as proxy:
        assert proxy.get("/review", headers=header).status_code == 200
        stranger = proxy.get("/review", headers={"X-Forwarded-Email": "who@x.io"})
        assert stranger.status_code == 403 and "not registered" in stranger.text


def _claim(client: TestClient) -> tuple[int, str, str]:
    response = client.post("/review/next", data={"csrf": csrf_of(client)})
    assert response.status_code == 200, response.text
    item_id = int(str(response.url).rsplit("/", 1)[1].split("?")[0])
    token = re.search(r'name="lease_token" value="(\d+)"', response.text)
    csrf = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert token and csrf
    return item_id, token.group(1), csrf.group(1)


def test_review_submit_needs_notes_and_a_live_lease(client: TestClient, engine: Engine) -> None:
    with Session(engine) as session:
        review_queue(session, count=2)
    sign_in(client, engine, RITA)
    item_id, token, csrf = _claim(client)
    url = f"/review/items/{item_id}"
    beat = client.post(f"{url}/heartbeat", data={"csrf": csrf, "lease_token": token})
    assert beat.status_code == 200 and beat.json()["ok"]
    form = {"csrf": csrf, "lease_token": token, "verdict-confirm": "fail", "verdict-tone": "na"}
    unexplained = client.post(f"{url}/submit", data=form)
    assert unexplained.status_code == 422 and "needs a note: confirm" in unexplained.text
    stale = client.post(
        f"{url}/submit", data={**form, "note-confirm": "no yes", "lease_token": "0"}
    )
    assert stale.status_code == 409 and "was not saved" in stale.text
    saved = client.post(f"{url}/submit", data={**form, "note-confirm": "changed without a yes"})
    assert saved.status_code == 200 and "Verdict saved" in saved.text
    with Session(engine) as session:
        verdict = session.exec(select(Review).where(Review.review_item_id == item_id)).one()
        findings = {
            f.criterion_key: (f.passed, f.not_applicable, f.note)
            for f in session.exec(
                select(ReviewFinding).where(ReviewFinding.review_id == verdict.id)
            )
        }
    assert verdict.violation
    assert findings == {
        "confirm": (False, False, "changed without a yes"),
        "grounded": (True, False, None),
        "tone": (True, True, None),
    }


def test_a_lease_taken_over_refuses_heartbeat_and_submit(
    client: TestClient, engine: Engine
) -> None:
    with Session(engine) as session:
        review_queue(session, count=1)
    sign_in(client, engine, RITA)
    item_id, token, csrf = _claim(client)
    with Session(engine) as session:
        item = session.get(ReviewItem, item_id)
        assert item is not None
        item.lease_expires_at = utcnow() - timedelta(seconds=1)
        session.add(item)
        session.commit()
        register_person(session, email="bob@x.io", role=Role.reviewer, actor="test")
        taken = review.claim_next(session, reviewer=reviewer_as(session, "bob@x.io"))
        assert taken is not None and taken.id == item_id
        session.commit()
    url = f"/review/items/{item_id}"
    beat = client.post(f"{url}/heartbeat", data={"csrf": csrf, "lease_token": token})
    assert beat.status_code == 409 and "lease" in beat.json()["message"]
    late = client.post(f"{url}/submit", data={"csrf": csrf, "lease_token": token})
    assert late.status_code == 409 and "your lease on review item" in late.text
    assert (
        client.post(f"{url}/release", data={"csrf": csrf, "lease_token": token}).status_code == 409
    )


def test_skip_needs_a_reason_and_is_not_offered_again(client: TestClient, engine: Engine) -> None:
    with Session(engine) as session:
        review_queue(session, count=2)
    sign_in(client, engine, RITA)
    first, token, csrf = _claim(client)
    url = f"/review/items/{first}/skip"
    assert (
        client.post(url, data={"csrf": csrf, "lease_token": token, "reason": " "}).status_code
        == 400
    )
    moved = client.post(url, data={"csrf": csrf, "lease_token": token, "reason": "French"})
    assert moved.status_code == 200 and "Item skipped" in moved.text
    assert not str(moved.url).split("?")[0].endswith(f"/{first}")


def test_release_hands_the_item_back(client: TestClient, engine: Engine) -> None:
    with Session(engine) as session:
        review_queue(session, count=1)
    sign_in(client, engine, RITA)
    item_id, token, csrf = _claim(client)
    released = client.post(
        f"/review/items/{item_id}/release", data={"csrf": csrf, "lease_token": token}
    )
    assert released.status_code == 204
    with Session(engine) as session:
        assert session.get(ReviewItem, item_id).status == ItemStatus.open  # type: ignore[union-attr]
    assert client.get(f"/review/items/{item_id}", follow_redirects=False).status_code == 303


def test_people_cli_registers_and_prints_a_working_link(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["people", "add", RITA, "--role", "reviewer"]) == 0
    assert run(["people", "login-link", RITA, "--base-url", "http://127.0.0.1:8123"]) == 0
    link = capsys.readouterr().out.split()[-1]
    assert link.startswith("http://127.0.0.1:8123/signin?token=")
    token = link.split("token=", 1)[1]
    assert client.post("/signin", data={"token": token}, follow_redirects=False).status_code == 303
    assert run(["people", "list"]) == 0
    assert RITA in capsys.readouterr().out


def test_owner_sees_estimates_and_disputes_a_verdict_on_the_agent_page(
    client: TestClient, engine: Engine
) -> None:
    from factories import OWNER

    with Session(engine) as session:
        review_queue(session, count=2)
    sign_in(client, engine, RITA)
    item_id, token, csrf = _claim(client)
    client.post(f"/review/items/{item_id}/submit", data={"csrf": csrf, "lease_token": token})
    client.cookies.clear()
    sign_in(client, engine, OWNER, Role.owner)
    page = client.get("/agents/airline")
    assert page.status_code == 200 and 'id="estimates"' in page.text and "100.0%" in page.text
    csrf = csrf_of(client, "/agents/airline")
    disputed = client.post(
        f"/review/items/{item_id}/dispute", data={"csrf": csrf, "reason": "it did not confirm"}
    )
    assert disputed.status_code == 200
    with Session(engine) as session:
        item = session.get(ReviewItem, item_id)
        assert item is not None and item.stage == "adjudication" and item.status == ItemStatus.open
    again = client.post(f"/review/items/{item_id}/dispute", data={"csrf": csrf, "reason": "x"})
    assert again.status_code == 409 and "no settled verdict" in again.text
    assert client.get("/agreement").status_code == 200


def test_a_browser_approval_executes_at_once_without_slack(engine: Engine) -> None:
    """Slack is not configured: the app's own waker runs the approval, no sweep needed."""
    deployer = FakeDeployer(serving={"airline": "v2"}, settle_checks=1)
    with Session(engine) as session:
        action_id = breach_rollback(session, degraded_fleet(session)).id
        session.commit()
    with serve(deployer.app) as deployer_url:
        settings = Settings(
            database_url=str(engine.url), deployer_url=deployer_url, health_timeout_s=10
        )
        assert not settings.slack_enabled
        with TestClient(create_app(settings=settings, engine=engine)) as client:
            assert client.app.state.slack is None  # type: ignore[attr-defined]
            sign_in(client, engine, OWNER, role=Role.owner)
            decided = client.post(
                f"/actions/{action_id}/decide",
                data={"csrf": csrf_of(client, "/actions"), "decision": "approve"},
                follow_redirects=False,
            )
            assert decided.status_code == 303, decided.text
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with Session(engine) as session:
                    status = session.get(Action, action_id).status  # type: ignore[union-attr]
                if status == ActionStatus.succeeded:
                    break
                time.sleep(0.05)
    assert status == ActionStatus.succeeded
    assert [(d["agent"], d["version"]) for d in deployer.deployments] == [("airline", "v1")]
