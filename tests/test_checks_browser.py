"""Blind, then shown: the review page hides the checks' flags until the verdict is saved."""

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.checks.service import register_check_set
from agentops.store.models import Agent, AuditEvent, Review, Role
from factories import review_queue
from test_web_browser import RITA, item_page_ready, page, sign_in, site  # noqa: F401

CHECKS = """\
version: 1
agent: airline
checks:
  - name: needs_yes
    kind: affirmation
    tools: [get_reservation_details]
"""


def test_flags_are_hidden_before_the_verdict_then_confirmed_or_disputed_in_one_key(
    page: object,  # noqa: F811
    site: str,  # noqa: F811
    engine: Engine,
) -> None:
    with Session(engine) as session:
        review_queue(session, count=2, turns=4)
        agent = session.exec(select(Agent).where(Agent.name == "airline")).one()
        _, checked = register_check_set(
            session, agent=agent, text=CHECKS, source="checks.yaml", actor="test"
        )
        session.commit()
    assert checked == 2
    sign_in(page, site, engine, RITA, Role.reviewer)
    p = page
    p.keyboard.press("Enter")  # type: ignore[attr-defined]  # start reviewing
    for key in ("y", "n"):
        item_page_ready(p)
        # Before the verdict: nothing of the check, its name or its evidence.
        assert "needs_yes" not in p.content()  # type: ignore[attr-defined]
        assert p.query_selector(".flag") is None  # type: ignore[attr-defined]
        p.keyboard.press("Enter")  # type: ignore[attr-defined]  # every criterion passes
        p.wait_for_url("**/flags")  # type: ignore[attr-defined]
        p.wait_for_load_state("load")  # type: ignore[attr-defined]
        flag = p.inner_text(".flag")  # type: ignore[attr-defined]
        assert "needs_yes" in flag and "turn 1" in flag and "get_reservation_details" in flag
        assert "Please change booking 0." in flag
        assert "pass" in p.inner_text("#your-verdict")  # type: ignore[attr-defined]
        flags_url = p.url  # type: ignore[attr-defined]
        p.keyboard.press(key)  # type: ignore[attr-defined]  # one keystroke answers
        p.wait_for_url(lambda url, before=flags_url: url != before)  # type: ignore[attr-defined]
    p.wait_for_url("**/review?notice=empty")  # type: ignore[attr-defined]
    with Session(engine) as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.kind.startswith("checks.flags_"))  # type: ignore[attr-defined]
        ).all()
        verdicts = session.exec(select(Review)).all()
    assert [event.kind for event in events] == ["checks.flags_confirmed", "checks.flags_disputed"]
    assert all(event.payload["checks"] == ["needs_yes"] for event in events)
    assert len(verdicts) == 2 and not any(v.violation for v in verdicts)


def test_the_agent_page_shows_the_checks_and_flags_stay_private(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from agentops.serve.app import create_app
    from agentops.settings import Settings
    from factories import OWNER, login_token

    with Session(engine) as session:
        review_queue(session, count=3, turns=4)
        agent = session.exec(select(Agent).where(Agent.name == "airline")).one()
        register_check_set(session, agent=agent, text=CHECKS, source="checks.yaml", actor="test")
        session.commit()
        owner_token = login_token(session, OWNER, role=Role.owner)
        session.commit()
    app = create_app(settings=Settings(database_url=str(engine.url)), engine=engine)
    with TestClient(app) as client:
        client.post("/signin", data={"token": owner_token})
        page = client.get("/agents/airline")
        assert page.status_code == 200 and 'id="checks"' in page.text
        assert "needs_yes" in page.text and "3 conversations checked" in page.text
        # Nobody sees an item's flags before their own verdict on it.
        assert client.get("/review/items/1/flags").status_code == 403
