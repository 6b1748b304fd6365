import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.agents.roles import NotAllowed, NotRegistered
from agentops.agents.service import ensure_person, ensure_version
from agentops.audit.service import iter_events, verify_chain
from agentops.errors import NotFoundError, RuleViolation
from agentops.review.queue import can_claim, is_violation, lease_until, validate_findings
from agentops.review.rubric import (
    RubricError,
    criteria_for,
    latest_rubric,
    parse_rubric,
    register_rubric,
)
from agentops.review.rules import NotesRequired
from agentops.review.service import (
    claim_next,
    item_details,
    queue_counts,
    release_claim,
    submit_review,
)
from agentops.sampling.service import sample_window
from agentops.store.models import (
    Agent,
    ItemStatus,
    Person,
    ReviewFinding,
    ReviewItem,
    Role,
    Rubric,
    Severity,
)
from factories import (
    REVIEW_RUBRIC,
    agent_named,
    calls_transfer,
    conversation,
    register_reviewers,
    reviewer_as,
)

EXAMPLE_RUBRIC = Path(__file__).resolve().parents[1] / "deployments" / "rubric.example.yaml"
RUBRIC = REVIEW_RUBRIC
T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)
ALL_PASS = {"confirm": True, "grounded": True, "tone": True}
ALICE, BOB = "alice@x.io", "bob@x.io"


# --- rubric ---------------------------------------------------------------------------------


def test_example_rubric_is_valid() -> None:
    spec = parse_rubric(EXAMPLE_RUBRIC.read_text(), source=str(EXAMPLE_RUBRIC))
    assert spec.name == "airline-policy"
    assert 5 <= len(spec.criteria) <= 7
    severities = {c.severity for c in spec.criteria}
    assert Severity.critical in severities and Severity.minor in severities


def test_rubric_errors_name_file_line_and_field() -> None:
    bad = RUBRIC.replace("severity: major", "severity: severe").replace("key: tone", "key: Tone!")
    with pytest.raises(RubricError) as caught:
        parse_rubric(bad, source="rubrics/support.yaml")
    message = str(caught.value)
    assert "rubrics/support.yaml:8: criteria[1].severity" in message
    assert "rubrics/support.yaml:10: criteria[2].key" in message
    assert len(caught.value.problems) == 2

    duplicate = RUBRIC.replace("key: tone", "key: confirm")
    with pytest.raises(RubricError, match=r"support.yaml:10: .*duplicate criterion key 'confirm'"):
        parse_rubric(duplicate, source="support.yaml")
    with pytest.raises(RubricError, match="at least 1 item"):
        parse_rubric("name: x\nversion: 1\ncriteria: []\n", source="x.yaml")
    with pytest.raises(RubricError, match=r"x.yaml:2: not valid YAML: mapping values"):
        parse_rubric("name: x\nversion: 1: 2\ncriteria: []\n", source="x.yaml")
    with pytest.raises(RubricError, match="expected a mapping"):
        parse_rubric("- just a list\n", source="x.yaml")
    with pytest.raises(RubricError, match="Extra inputs"):
        parse_rubric(RUBRIC + "owner: someone\n", source="x.yaml")


def test_register_rubric_is_idempotent_and_versions_are_immutable(session: Session) -> None:
    first = register_rubric(session, text=RUBRIC, source="a.yaml", actor="author")
    # A comment or layout change is the same content: no new version, no new event.
    recommented = "# support rubric\n" + RUBRIC.replace("name: support", "name:   support")
    again = register_rubric(session, text=recommented, source="b.yaml", actor="author")
    assert again.id == first.id
    assert [c.key for c in criteria_for(session, rubric=first)] == ["confirm", "grounded", "tone"]

    changed = RUBRIC.replace("Friendly tone.", "Polite tone.")
    with pytest.raises(RuleViolation, match=r"bump `version` in c\.yaml"):
        register_rubric(session, text=changed, source="c.yaml", actor="author")
    bumped = register_rubric(
        session, text=changed.replace("version: 1", "version: 2"), source="c.yaml", actor="author"
    )
    session.commit()

    assert bumped.version == 2
    assert latest_rubric(session, name="support") == bumped
    assert latest_rubric(session, name="nope") is None
    assert latest_rubric(session) == bumped
    events = list(iter_events(session, kind_prefix="rubric.registered"))
    assert [e.payload["version"] for e in events] == [1, 2]
    assert events[0].payload["criteria"] == {
        "confirm": "critical",
        "grounded": "major",
        "tone": "minor",
    }


# --- queue rules ----------------------------------------------------------------------------


def test_claim_rules() -> None:
    assert can_claim(ItemStatus.open, None, T0)
    assert not can_claim(ItemStatus.claimed, T0 + timedelta(seconds=1), T0)
    assert can_claim(ItemStatus.claimed, T0, T0)
    assert not can_claim(ItemStatus.reviewed, None, T0)
    assert lease_until(T0, 30) == T0 + timedelta(minutes=30)
    with pytest.raises(RuleViolation):
        lease_until(T0, 0)


def test_findings_must_cover_exactly_the_rubric() -> None:
    keys = {"confirm", "grounded", "tone"}
    validate_findings(keys, ALL_PASS)
    with pytest.raises(RuleViolation) as caught:
        validate_findings(keys, {"confirm": True, "extra": False})
    assert "missing judgements for: grounded, tone" in str(caught.value)
    assert "unknown criteria: extra" in str(caught.value)


def test_only_critical_and_major_failures_are_violations() -> None:
    severities = {"confirm": Severity.critical, "grounded": Severity.major, "tone": Severity.minor}
    assert not is_violation(ALL_PASS, severities)
    assert not is_violation({**ALL_PASS, "tone": False}, severities)
    assert is_violation({**ALL_PASS, "grounded": False}, severities)
    assert is_violation({**ALL_PASS, "confirm": False}, severities)


# --- queue service --------------------------------------------------------------------------


def _queue(session: Session, *, count: int = 3, name: str = "airline") -> tuple[Agent, Rubric]:
    """An agent with `count` conversations, all queued for review against RUBRIC."""
    agent = agent_named(session, name, owner=f"o@{name}.io", backup=f"b@{name}.io")
    version = ensure_version(session, agent=agent, version="v1", actor="t")
    rubric = register_rubric(session, text=RUBRIC, source="r.yaml", actor="t")
    session.add_all(
        conversation(
            agent, version, external_id=f"{name}-{i}", started_at=T0 + timedelta(minutes=i)
        )
        for i in range(count)
    )
    session.flush()
    result = sample_window(
        session,
        agent=agent,
        version=version,
        rubric=rubric,
        seed=1,
        window_start=T0,
        window_end=T0 + timedelta(days=1),
        actor="t",
    )
    assert len(result.items) == count
    register_reviewers(session, ALICE, BOB, "carol@x.io")
    session.commit()
    return agent, rubric


def test_claim_lease_expiry_and_takeover(session: Session) -> None:
    _queue(session)
    first = claim_next(session, reviewer=reviewer_as(session, ALICE), now=T0, lease_minutes=30)
    assert first is not None and first.status == ItemStatus.claimed
    assert first.lease_expires_at == T0 + timedelta(minutes=30)
    alice = session.exec(select(Person).where(Person.email == ALICE)).one()
    assert alice.role == Role.reviewer and first.claimed_by_id == alice.id

    # Asking again while the lease runs returns the same item, not a second one.
    assert (
        claim_next(session, reviewer=reviewer_as(session, ALICE), now=T0 + timedelta(minutes=5))
        == first
    )
    # Another reviewer gets the next item.
    second = claim_next(session, reviewer=reviewer_as(session, BOB), now=T0 + timedelta(minutes=5))
    assert second is not None and second.id != first.id
    session.commit()
    assert queue_counts(session) == {"open": 1, "claimed": 2, "reviewed": 0}

    # Once Alice's lease has run out, a reviewer without a claim of their own takes her item.
    later = T0 + timedelta(minutes=31)
    taken = claim_next(session, reviewer=reviewer_as(session, "carol@x.io"), now=later)
    assert taken is not None and taken.id == first.id
    assert taken.lease_expires_at == later + timedelta(minutes=30)
    session.commit()
    takeover = list(iter_events(session, kind_prefix="review.claimed"))[-1]
    assert takeover.actor == "carol@x.io"
    assert takeover.payload["took_over_from"] == ALICE

    with pytest.raises(RuleViolation, match=f"claimed by carol@x.io, not {ALICE}"):
        submit_review(
            session,
            item_id=first.id,
            reviewer=reviewer_as(session, ALICE),
            findings=ALL_PASS,
            now=later,
        )


def test_queue_empties_and_release_returns_item(session: Session) -> None:
    _queue(session, count=1)
    item = claim_next(session, reviewer=reviewer_as(session, ALICE), now=T0)
    assert item is not None
    assert claim_next(session, reviewer=reviewer_as(session, BOB), now=T0) is None
    released = release_claim(session, item_id=item.id, reviewer=reviewer_as(session, ALICE), now=T0)  # type: ignore[arg-type]
    assert released.status == ItemStatus.open and released.claimed_by_id is None
    retaken = claim_next(session, reviewer=reviewer_as(session, BOB), now=T0)
    assert retaken is not None and retaken.id == item.id
    with pytest.raises(RuleViolation, match=r"claimed by bob@x\.io"):
        release_claim(session, item_id=item.id, reviewer=reviewer_as(session, ALICE))  # type: ignore[arg-type]
    session.commit()
    kinds = [e.kind for e in iter_events(session, kind_prefix="review.")]
    assert kinds == ["review.claimed", "review.released", "review.claimed"]


def test_claims_can_be_limited_to_one_agent(session: Session) -> None:
    _queue(session, count=2, name="airline")
    hotel, _ = _queue(session, count=1, name="hotel")
    item = claim_next(session, reviewer=reviewer_as(session, ALICE), agent=hotel, now=T0)
    assert item is not None
    assert item_details(session, item_id=item.id).conversation.agent_id == hotel.id  # type: ignore[arg-type]
    assert claim_next(session, reviewer=reviewer_as(session, BOB), agent=hotel, now=T0) is None
    assert queue_counts(session, agent=hotel) == {"open": 0, "claimed": 1, "reviewed": 0}
    assert queue_counts(session) == {"open": 2, "claimed": 1, "reviewed": 0}


def test_submit_validations(session: Session) -> None:
    _queue(session, count=2)
    item = claim_next(session, reviewer=reviewer_as(session, ALICE), now=T0, lease_minutes=10)
    assert item is not None
    item_id = item.id
    assert item_id is not None
    unclaimed = session.exec(select(ReviewItem).where(ReviewItem.id != item_id)).one()

    with pytest.raises(RuleViolation, match="missing judgements for: tone"):
        submit_review(
            session,
            item_id=item_id,
            reviewer=reviewer_as(session, ALICE),
            findings={"confirm": True, "grounded": True},
            now=T0,
        )
    with pytest.raises(RuleViolation, match="unknown criteria: politeness"):
        submit_review(
            session,
            item_id=item_id,
            reviewer=reviewer_as(session, ALICE),
            findings={**ALL_PASS, "politeness": True},
            now=T0,
        )
    with pytest.raises(RuleViolation, match="notes refer to unknown criteria: vibe"):
        submit_review(
            session,
            item_id=item_id,
            reviewer=reviewer_as(session, ALICE),
            findings=ALL_PASS,
            notes={"vibe": "meh"},
            now=T0,
        )
    with pytest.raises(RuleViolation, match=f"claimed by {ALICE}, not {BOB}"):
        submit_review(
            session, item_id=item_id, reviewer=reviewer_as(session, BOB), findings=ALL_PASS, now=T0
        )
    with pytest.raises(RuleViolation, match="not claimed: claim it first"):
        submit_review(
            session,
            item_id=unclaimed.id,  # type: ignore[arg-type]
            reviewer=reviewer_as(session, ALICE),
            findings=ALL_PASS,
            now=T0,
        )
    with pytest.raises(RuleViolation, match=r"expired at .*claim it again"):
        submit_review(
            session,
            item_id=item_id,
            reviewer=reviewer_as(session, ALICE),
            findings=ALL_PASS,
            now=T0 + timedelta(minutes=10),
        )
    with pytest.raises(NotFoundError):
        submit_review(
            session, item_id=9999, reviewer=reviewer_as(session, ALICE), findings=ALL_PASS, now=T0
        )

    review = submit_review(
        session,
        item_id=item_id,
        reviewer=reviewer_as(session, ALICE),
        findings=ALL_PASS,
        comment="clean",
        now=T0 + timedelta(minutes=9),
    )
    assert review.violation is False and review.notes == "clean"
    with pytest.raises(RuleViolation, match="already been reviewed"):
        submit_review(
            session,
            item_id=item_id,
            reviewer=reviewer_as(session, ALICE),
            findings=ALL_PASS,
            now=T0,
        )
    session.commit()
    assert queue_counts(session) == {"open": 1, "claimed": 0, "reviewed": 1}


def test_failed_critical_or_major_needs_a_note_in_the_service(session: Session) -> None:
    _queue(session, count=1)
    item = claim_next(session, reviewer=reviewer_as(session, ALICE), now=T0)
    assert item is not None and item.id is not None
    failing = {**ALL_PASS, "confirm": False, "grounded": False, "tone": False}
    with pytest.raises(NotesRequired, match="needs a note: confirm, grounded") as caught:
        submit_review(
            session, item_id=item.id, reviewer=reviewer_as(session, ALICE), findings=failing, now=T0
        )
    assert caught.value.criteria == ["confirm", "grounded"]  # a minor failure needs none
    assert session.exec(select(ReviewFinding)).all() == []
    # A blank note is no reason; a criterion judged not applicable needs none.
    with pytest.raises(NotesRequired, match="needs a note: grounded"):
        submit_review(
            session,
            item_id=item.id,
            reviewer=reviewer_as(session, ALICE),
            findings=failing,
            notes={"grounded": "  "},
            not_applicable=["confirm"],
            now=T0,
        )
    review = submit_review(
        session,
        item_id=item.id,
        reviewer=reviewer_as(session, ALICE),
        findings=failing,
        notes={"confirm": "booked without a yes", "grounded": "made up a fare"},
        now=T0,
    )
    assert review.violation is True


def test_claiming_needs_a_registered_reviewer(session: Session) -> None:
    _queue(session, count=1)
    people = len(session.exec(select(Person)).all())
    with pytest.raises(NotRegistered, match=r"stranger@x\.io is not registered"):
        claim_next(session, reviewer=reviewer_as(session, "Stranger@x.io"), now=T0)
    assert len(session.exec(select(Person)).all()) == people  # nobody was created
    ensure_person(session, email="mia@x.io", role=Role.manager)
    with pytest.raises(NotAllowed, match="reviewing is for admin, owner, reviewer"):
        claim_next(session, reviewer=reviewer_as(session, "mia@x.io"), now=T0)
    # An owner may review (as on the web): the agent's owner is one.
    assert claim_next(session, reviewer=reviewer_as(session, "o@airline.io"), now=T0) is not None


def test_submit_records_findings_verdict_and_audit(session: Session) -> None:
    _queue(session, count=2)
    verdicts = []
    for findings in ({**ALL_PASS, "tone": False}, {**ALL_PASS, "grounded": False}):
        item = claim_next(session, reviewer=reviewer_as(session, ALICE), now=T0)
        assert item is not None
        review = submit_review(
            session,
            item_id=item.id,  # type: ignore[arg-type]
            reviewer=reviewer_as(session, ALICE),
            findings=findings,
            notes={"grounded": "quoted a fare the tool never returned"},
            now=T0,
        )
        verdicts.append(review.violation)
    session.commit()

    # A minor failure is noted but is not a violation; a major one is.
    assert verdicts == [False, True]
    rows = session.exec(
        select(ReviewFinding).order_by(ReviewFinding.review_id, ReviewFinding.id)  # type: ignore[arg-type]
    ).all()
    assert [(r.criterion_key, r.passed) for r in rows[3:]] == [
        ("confirm", True),
        ("grounded", False),
        ("tone", True),
    ]
    assert rows[4].severity == Severity.major
    assert rows[4].note == "quoted a fare the tool never returned"
    events = list(iter_events(session, kind_prefix="review.submitted"))
    assert [e.payload["verdict"] for e in events] == ["pass", "violation"]
    assert events[1].payload["failed"] == ["grounded"]
    assert events[1].actor == ALICE
    assert verify_chain(session) == []


def test_item_details_for_display(session: Session) -> None:
    _queue(session, count=1)
    item = session.exec(select(ReviewItem)).one()
    details = item_details(session, item_id=item.id)  # type: ignore[arg-type]
    assert details.rubric.name == "support"
    assert [c.key for c in details.criteria] == ["confirm", "grounded", "tone"]
    assert details.conversation.transcript == [{"role": "user", "content": "hi"}]
    with pytest.raises(NotFoundError):
        item_details(session, item_id=12345)


def test_two_reviewers_claiming_at_once_get_different_items(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks (SKIP LOCKED) only exist on PostgreSQL")
    with Session(engine) as setup:
        _queue(setup, count=3)
        for email in (ALICE, BOB):
            ensure_person(setup, email=email, role=Role.reviewer)
        setup.commit()

    claimed: dict[str, int | None] = {}

    def bob_claims() -> None:
        with Session(engine) as bob_session:
            item = claim_next(bob_session, reviewer=reviewer_as(bob_session, BOB), now=T0)
            claimed[BOB] = item.id if item else None
            bob_session.commit()

    with Session(engine) as alice_session:
        item = claim_next(alice_session, reviewer=reviewer_as(alice_session, ALICE), now=T0)
        claimed[ALICE] = item.id if item else None
        # Bob queries while Alice's transaction still holds her row.
        bob = threading.Thread(target=bob_claims)
        bob.start()
        time.sleep(0.3)
        alice_session.commit()
    bob.join(timeout=10)

    assert claimed[ALICE] is not None and claimed[BOB] is not None
    assert claimed[ALICE] != claimed[BOB]


# --- real data ------------------------------------------------------------------------------


def test_tau_airline_conversations_sampled_and_reviewed(
    session: Session, tau_airline: Path
) -> None:
    records = json.loads((tau_airline / "conversations.json").read_text())
    agent = agent_named(session, "tau-airline")
    version = ensure_version(session, agent=agent, version="gpt-4o", actor="t")
    rubric = register_rubric(
        session, text=EXAMPLE_RUBRIC.read_text(), source=str(EXAMPLE_RUBRIC), actor="t"
    )
    conversations = [
        conversation(
            agent,
            version,
            external_id=f"{record['task_id']}-{record['trial']}",
            started_at=T0 + timedelta(minutes=index),
            transcript=record["traj"],
            escalated=calls_transfer(record["traj"]),
            task_success=record["reward"],
        )
        for index, record in enumerate(records)
    ]
    session.add_all(conversations)
    session.flush()
    escalations = sum(c.escalated for c in conversations)
    assert 0 < escalations < len(records)

    result = sample_window(
        session,
        agent=agent,
        version=version,
        rubric=rubric,
        seed=2024,
        max_size=12,
        window_start=T0,
        window_end=T0 + timedelta(days=1),
        actor="sampler",
    )
    session.commit()
    assert result.sample.population == len(records)
    assert len(result.items) == 12
    assert result.snapshot.escalation_rate == pytest.approx(escalations / len(records))
    assert result.snapshot.p95_latency_ms is None

    # A reviewer works the queue; unsolved tasks (reward 0) are judged as rule breaches.
    keys = [c.key for c in criteria_for(session, rubric=rubric)]
    expected_violations = 0
    register_reviewers(session, ALICE)
    while (item := claim_next(session, reviewer=reviewer_as(session, ALICE))) is not None:
        details = item_details(session, item_id=item.id)  # type: ignore[arg-type]
        assert details.conversation.transcript[0]["role"] == "system"
        solved = details.conversation.task_success == 1.0
        expected_violations += not solved
        findings = {key: solved or key != "booking-rule-eligibility" for key in keys}
        notes = {} if solved else {"booking-rule-eligibility": "the task was not solved"}
        submit_review(
            session,
            item_id=item.id,  # type: ignore[arg-type]
            reviewer=reviewer_as(session, ALICE),
            findings=findings,
            notes=notes,
        )
        session.commit()

    assert queue_counts(session, agent=agent) == {"open": 0, "claimed": 0, "reviewed": 12}
    verdicts = [e.payload["verdict"] for e in iter_events(session, kind_prefix="review.submitted")]
    assert len(verdicts) == 12
    assert verdicts.count("violation") == expected_violations
    assert verify_chain(session) == []
