"""Double review: blind second reviews, adjudication, disputes, and agreement figures."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from agentops.agents.actors import Channel, person_actor
from agentops.audit.service import iter_events
from agentops.cli.app import run
from agentops.errors import RuleViolation
from agentops.review import service as review
from agentops.review.agreement import agreement, cohen_kappa, gwet_ac1, raw_agreement
from agentops.review.queries import adherence_estimate, agreement_report, earlier_verdicts
from agentops.settings import get_settings
from agentops.store.models import AgentVersion, ItemStatus, ReviewItem, utcnow
from agentops.triggers.service import settled_reviews
from factories import OWNER, register_reviewers, review_queue, reviewer_as

RITA, RAJ, SAM = "rita@x.io", "raj@x.io", "sam@x.io"
PASS = {"confirm": True, "grounded": True, "tone": True}
FAIL = {"confirm": False, "grounded": True, "tone": True}


@pytest.fixture
def doubled(monkeypatch: pytest.MonkeyPatch, session: Session) -> Iterator[Session]:
    """Every sampled item gets a second review; sam adjudicates."""
    monkeypatch.setenv("AGENTOPS_REVIEW_DOUBLE_SHARE", "1")
    monkeypatch.setenv("AGENTOPS_REVIEW_SENIORS", SAM)
    get_settings.cache_clear()
    register_reviewers(session, RITA, RAJ, SAM, "other@x.io")
    session.commit()
    yield session
    get_settings.cache_clear()


def judge(session: Session, email: str, findings: dict[str, bool]) -> int:
    item = review.claim_next(session, reviewer=reviewer_as(session, email))
    assert item is not None and item.id is not None
    notes = {key: "fails the rule" for key, passed in findings.items() if not passed}
    review.submit_review(
        session,
        item_id=item.id,
        reviewer=reviewer_as(session, email),
        findings=findings,
        notes=notes,
    )
    session.commit()
    return item.id


def test_kappa_and_ac1_match_gwets_worked_example() -> None:
    # Gwet (2008): 125 items, 118 both "yes", 5 A-yes/B-no, 2 A-no/B-yes, none both "no".
    pairs = [("y", "y")] * 118 + [("y", "n")] * 5 + [("n", "y")] * 2
    assert raw_agreement(pairs) == pytest.approx(0.944)
    assert cohen_kappa(pairs) == pytest.approx(-0.0234, abs=1e-4)  # the kappa paradox
    assert gwet_ac1(pairs) == pytest.approx(0.9408, abs=1e-4)
    result = agreement(pairs, resamples=300)
    assert result.ac1.low is not None and result.ac1.high is not None
    assert result.ac1.low <= 0.9408 <= result.ac1.high
    assert cohen_kappa([("y", "y")] * 3) is None and agreement([]).raw.value is None


def test_second_review_is_blind_and_by_someone_else(doubled: Session) -> None:
    review_queue(doubled, count=1)
    item_id = judge(doubled, RITA, PASS)
    item = doubled.get(ReviewItem, item_id)
    assert item is not None and item.stage == "second" and item.status == ItemStatus.open
    assert (
        review.claim_next(doubled, reviewer=reviewer_as(doubled, RITA)) is None
    )  # not her own again
    version = doubled.exec(select(AgentVersion)).one()
    assert settled_reviews(doubled, version=version) == []  # counts nowhere yet
    assert judge(doubled, RAJ, PASS) == item_id
    doubled.refresh(item)
    assert item.stage == "done" and item.final_violation is False
    assert len(settled_reviews(doubled, version=version)) == 1
    assert adherence_estimate(doubled, version=version).n == 1


def test_disagreement_waits_for_a_senior_then_counts_as_adjudicated(doubled: Session) -> None:
    review_queue(doubled, count=1)
    item_id = judge(doubled, RITA, PASS)
    judge(doubled, RAJ, FAIL)
    item = doubled.get(ReviewItem, item_id)
    assert item is not None and item.stage == "adjudication"
    assert (
        review.claim_next(doubled, reviewer=reviewer_as(doubled, "other@x.io")) is None
    )  # not a senior
    verdicts = earlier_verdicts(doubled, item_id=item_id)
    assert [(v.round, v.violation) for v in verdicts] == [("first", False), ("second", True)]
    judge(doubled, SAM, FAIL)
    doubled.refresh(item)
    assert item.stage == "done" and item.final_violation is True
    version = doubled.exec(select(AgentVersion)).one()
    assert [r.event for r in settled_reviews(doubled, version=version)] == [True]
    kinds = [e.kind for e in iter_events(doubled, kind_prefix="review.")]
    assert "review.second_submitted" in kinds and "review.adjudicated" in kinds
    criteria, pairs = agreement_report(doubled, resamples=50)
    assert [row.label for row in criteria] == ["confirm", "grounded", "tone"]
    assert criteria[0].result.raw.value == 0.0 and criteria[1].result.raw.value == 1.0
    assert [row.label for row in pairs] == [f"{RAJ} & {RITA}"]


def test_owner_disputes_within_the_window_and_the_trail_shows_the_path(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTOPS_REVIEW_SENIORS", SAM)
    get_settings.cache_clear()
    review_queue(session, count=1, reviewers=[RITA, RAJ, SAM])
    item_id = judge(session, RITA, FAIL)
    owner = person_actor(session, email=OWNER, channel=Channel.web)
    stranger = person_actor(session, email=RITA, channel=Channel.web)
    with pytest.raises(RuleViolation, match="owner or backup"):
        review.dispute_verdict(session, item_id=item_id, actor=stranger, reason="no")
    with pytest.raises(RuleViolation, match="needs a reason"):
        review.dispute_verdict(session, item_id=item_id, actor=owner, reason=" ")
    late = utcnow() + timedelta(hours=get_settings().dispute_window_hours + 1)
    with pytest.raises(RuleViolation, match="window"):
        review.dispute_verdict(session, item_id=item_id, actor=owner, reason="x", now=late)
    review.dispute_verdict(session, item_id=item_id, actor=owner, reason="it did confirm")
    session.commit()
    version = session.exec(select(AgentVersion)).one()
    assert settled_reviews(session, version=version) == []
    judge(session, SAM, PASS)
    assert [r.event for r in settled_reviews(session, version=version)] == [False]
    path = [e.kind for e in iter_events(session, kind_prefix="review.")]
    assert path == [
        "review.claimed",
        "review.submitted",
        "review.disputed",
        "review.claimed",
        "review.adjudicated",
    ]
    get_settings.cache_clear()


def test_cli_dispute_and_agreement(doubled: Session, capsys: pytest.CaptureFixture[str]) -> None:
    review_queue(doubled, count=2)
    for _ in range(2):
        judge(doubled, RITA, PASS)
    for _ in range(2):
        judge(doubled, RAJ, PASS)
    capsys.readouterr()
    assert run(["review", "agreement"]) == 0
    assert "Gwet's AC1" in capsys.readouterr().out
    assert run(["review", "dispute", "1", "--as", RITA, "--reason", "x"]) == 2
    assert run(["review", "dispute", "1", "--as", OWNER, "--reason", "wrong"]) == 0
    assert "counts in no trigger" in capsys.readouterr().out


def test_an_evaluation_says_when_it_ran_without_part_of_the_sample(doubled: Session) -> None:
    from agentops.triggers.service import evaluate_version, register_trigger_set
    from test_trigger_evaluation import TRIGGERS_V1

    agent = review_queue(doubled, count=3)
    judge(doubled, RITA, PASS)  # one first review; its second review is still to come
    version = doubled.exec(select(AgentVersion)).one()
    trigger_set = register_trigger_set(
        doubled, agent=agent, text=TRIGGERS_V1, source="t.yaml", actor="owner@x.io"
    )
    report = evaluate_version(
        doubled, agent=agent, version=version, trigger_set=trigger_set, actor="flow:test"
    )
    policy = next(e for e in report.evaluations if e.kind == "policy_adherence")
    backlog = policy.evidence["review_backlog"]
    assert backlog["unsettled"] == 3 and backlog["overdue"] == 0
    assert "ran without them" in backlog["note"]
