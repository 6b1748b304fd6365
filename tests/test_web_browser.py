"""The web pages in a real browser: Playwright drives Debian's Chromium, never a downloaded one.

One browser per test session, a fresh context per test. Set AGENTOPS_SCREENSHOTS=DIR to save
the review page and agent page screenshots (the README's come from `docs/`).
"""

import os
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.actions.service import open_approval
from agentops.review import service as review
from agentops.serve.app import create_app
from agentops.settings import Settings
from agentops.store.models import (
    Action,
    ActionStatus,
    Approval,
    ItemStatus,
    Review,
    ReviewItem,
    Role,
    utcnow,
)
from factories import (
    OWNER,
    breach_rollback,
    degraded_fleet,
    login_token,
    review_queue,
    reviewer_as,
    serve,
)

RITA = "rita@x.io"
SCREENSHOTS = os.environ.get("AGENTOPS_SCREENSHOTS")


@pytest.fixture
def site(engine: Engine) -> Iterator[str]:
    """The agentops app on a loopback port, on the test database."""
    settings = Settings(database_url=str(engine.url), review_lease_minutes=5)
    with serve(create_app(settings=settings, engine=engine)) as url:
        yield url


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def item_page_ready(page: object) -> None:
    """Wait for the review item page and its script: keys pressed before it runs are lost."""
    page.wait_for_selector("#verdict")  # type: ignore[attr-defined]
    page.wait_for_load_state("load")  # type: ignore[attr-defined]


def sign_in(page: object, site: str, engine: Engine, email: str, role: Role) -> None:
    """Open a fresh sign-in link and press Enter, as a person would."""
    with Session(engine) as session:
        token = login_token(session, email, role=role)
    page.goto(f"{site}/signin?token={token}")  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    page.wait_for_url(lambda url: "/signin" not in url)  # type: ignore[attr-defined]


def test_sign_in_by_link_and_review_three_items_by_keyboard_alone(
    page: object, site: str, engine: Engine
) -> None:
    with Session(engine) as session:
        review_queue(session, count=3, turns=12)
    sign_in(page, site, engine, RITA, Role.reviewer)
    p = page  # type: ignore[assignment]
    assert p.url.endswith("/review")  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]  # Start reviewing
    item_page_ready(p)
    if SCREENSHOTS:
        p.screenshot(path=f"{SCREENSHOTS}/review-page.png")  # type: ignore[attr-defined]
    first = p.url  # type: ignore[attr-defined]
    # Item 1: criterion 2 (major) fails, which asks for a note; Enter in the note submits.
    p.keyboard.press("2")  # type: ignore[attr-defined]
    p.keyboard.press("f")  # type: ignore[attr-defined]
    p.keyboard.type("It invented a fare.")  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    p.wait_for_url(lambda url: url != first and "notice=reviewed" in url)  # type: ignore[attr-defined]
    second = p.url  # type: ignore[attr-defined]
    # Item 2: everything passes.
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    p.wait_for_url(lambda url: url != second and "/review/items/" in url)  # type: ignore[attr-defined]
    # Item 3: criterion 3 does not apply.
    p.keyboard.press("3")  # type: ignore[attr-defined]
    p.keyboard.press("n")  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    p.wait_for_url("**/review?notice=empty")  # type: ignore[attr-defined]
    assert "You reviewed 3 today" in p.inner_text("#progress")  # type: ignore[attr-defined]
    with Session(engine) as session:
        verdicts = list(session.exec(select(Review).order_by(Review.id)))
    assert [v.violation for v in verdicts] == [True, False, False]


def test_a_submit_after_the_lease_was_lost_is_refused(
    page: object, site: str, engine: Engine
) -> None:
    with Session(engine) as session:
        review_queue(session, count=1)
    sign_in(page, site, engine, RITA, Role.reviewer)
    p = page  # type: ignore[assignment]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    item_page_ready(p)
    with Session(engine) as session:
        item = session.exec(select(ReviewItem)).one()
        item.lease_expires_at = utcnow()
        session.add(item)
        session.commit()
        login_token(session, "bob@x.io")  # registers bob
        assert review.claim_next(session, reviewer=reviewer_as(session, "bob@x.io")) is not None
        session.commit()
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    message = p.inner_text("#error-message")  # type: ignore[attr-defined]
    assert "lease" in message and "was not saved" in message
    with Session(engine) as session:
        item = session.exec(select(ReviewItem)).one()
        assert item.status == ItemStatus.claimed and session.exec(select(Review)).first() is None


def test_a_reviewer_is_blocked_from_the_admin_page(page: object, site: str, engine: Engine) -> None:
    sign_in(page, site, engine, RITA, Role.reviewer)
    response = page.goto(f"{site}/admin/people")  # type: ignore[attr-defined]
    assert response.status == 403
    assert "the people page is for admin" in page.inner_text("#error-message")  # type: ignore[attr-defined]


def test_an_owner_approves_a_rollback_on_the_web(page: object, site: str, engine: Engine) -> None:
    with Session(engine) as session:
        fleet = degraded_fleet(session)
        action = breach_rollback(session, fleet, reason="policy adherence breached")
        open_approval(
            session,
            action_id=action.id,
            flow_run_id=None,
            owner_timeout_s=3600,
            backup_timeout_s=3600,
        )
        review_queue(session, count=4, agent=fleet.agent, version=fleet.bad, reviewers=[RITA])
        for number in range(3):  # reviewed evidence for the agent page's estimate
            item = review.claim_next(session, reviewer=reviewer_as(session, RITA))
            assert item is not None and item.id is not None
            review.submit_review(
                session,
                item_id=item.id,
                reviewer=reviewer_as(session, RITA),
                findings={"confirm": number != 0, "grounded": True, "tone": True},
                notes={} if number else {"confirm": "booked without a yes"},
            )
        session.commit()
        action_id = action.id
    sign_in(page, site, engine, OWNER, Role.owner)
    p = page  # type: ignore[assignment]
    if SCREENSHOTS:
        p.goto(f"{site}/agents/airline")  # type: ignore[attr-defined]
        p.screenshot(path=f"{SCREENSHOTS}/agent-page.png", full_page=True)  # type: ignore[attr-defined]
    p.goto(f"{site}/actions")  # type: ignore[attr-defined]
    p.click(f"a[href='/actions/{action_id}']")  # type: ignore[attr-defined]
    p.fill("#reason", "v2 skips the confirmation step")  # type: ignore[attr-defined]
    p.click("#approve")  # type: ignore[attr-defined]
    p.wait_for_selector("#decision")  # type: ignore[attr-defined]
    assert p.inner_text("#status") == "approved"  # type: ignore[attr-defined]
    with Session(engine) as session:
        approval = session.exec(select(Approval)).one()
        stored = session.get(Action, action_id)
    assert approval.channel == "web" and stored is not None
    assert stored.status == ActionStatus.approved
