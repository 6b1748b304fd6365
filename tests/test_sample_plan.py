"""Stratified sample plans, hash-based draws and the weighted (Hájek) adherence estimate."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from agentops.agents.service import ensure_version
from agentops.cli.app import run
from agentops.review.queries import adherence_estimate
from agentops.review.rubric import register_rubric
from agentops.review.service import claim_next, submit_review
from agentops.sampling.estimate import Observation, hajek, wilson
from agentops.sampling.plan import SamplePlan, Unit, allocate, draw, stratum_of
from agentops.sampling.service import sample_window
from agentops.store.models import ReviewItem, Rubric, Sample
from factories import REVIEW_RUBRIC, agent_named, conversation, register_reviewers, reviewer_as

PLAN_EXAMPLE = Path(__file__).resolve().parents[1] / "deployments" / "sample-plan.example.yaml"


def units(sizes: dict[tuple[str, bool], int]) -> list[Unit]:
    made: list[Unit] = []
    for (channel, escalated), size in sizes.items():
        for _ in range(size):
            n = len(made) + 1
            made.append(Unit(n, f"c{n}", channel, "booking", escalated))
    return made


def test_proportional_allocation_with_a_floor_and_neyman() -> None:
    sizes = {"big": 900, "mid": 90, "tiny": 10}
    assert allocate(sizes, 100) == {"big": 90, "mid": 9, "tiny": 1}
    assert allocate(sizes, 100, floor=5) == {"big": 90, "mid": 9, "tiny": 5}
    assert allocate({"a": 3, "b": 50}, 10, floor=5) == {"a": 3, "b": 9}
    # Neyman puts reviews where verdicts vary: a stratum that never fails gets few.
    spread = allocate(sizes, 100, allocation="neyman", spreads={"big": 0.05, "mid": 0.5})
    assert spread["mid"] > 9 and sum(spread.values()) == 100
    assert allocate({"a": 0}, 10) == {"a": 0} and allocate({"a": 5}, 0) == {"a": 0}


def test_the_draw_is_reproducible_stratified_and_records_inclusion_probabilities() -> None:
    population = units({("chat", False): 400, ("chat", True): 40, ("voice", False): 60})
    plan = SamplePlan(floor=5, half_width=0.1)
    first, again = draw(plan, population), draw(plan, list(reversed(population)))
    assert first == again
    other = draw(plan.model_copy(update={"salt": "other"}), population)
    assert {d.id for d in other} != {d.id for d in first}
    by_stratum: dict[str, list[float]] = {}
    for d in first:
        by_stratum.setdefault(d.stratum, []).append(d.inclusion_probability)
    assert set(by_stratum) == {
        "chat|booking|contained",
        "chat|booking|escalated",
        "voice|booking|contained",
    }
    for stratum, probabilities in by_stratum.items():
        size = sum(1 for u in population if stratum_of(u, plan.strata) == stratum)
        assert probabilities == [len(probabilities) / size] * len(probabilities)
    assert len({p[0] for p in by_stratum.values()}) == 3  # unequal probabilities


def test_hajek_weights_and_its_interval() -> None:
    equal = [Observation(adhered=i < 8, inclusion_probability=0.5) for i in range(10)]
    assert hajek(equal).rate == pytest.approx(0.8)
    # One stratum sampled at 1/10 with 1 failure in 10; another at 1/1 with all 10 adhering.
    mixed = [Observation(i > 0, 0.1, "big") for i in range(10)] + [
        Observation(True, 1.0, "small") for _ in range(10)
    ]
    estimate = hajek(mixed)
    assert estimate.rate == pytest.approx((90 + 10) / 110)
    assert estimate.low is not None and estimate.high is not None
    assert 0 <= estimate.low < estimate.rate < estimate.high <= 1
    assert estimate.effective_n <= estimate.n
    assert set(estimate.strata) == {"big", "small"}
    assert estimate.strata["small"].rate == 1.0
    perfect = hajek([Observation(True, 0.2) for _ in range(30)])
    assert perfect.rate == 1.0 and perfect.high == 1.0 and perfect.low is not None
    assert perfect.low < 0.95
    assert hajek([]).rate is None
    with pytest.raises(ValueError):
        hajek([Observation(True, 0.0)])
    low, high = wilson(0.5, 0)
    assert (low, high) == (0.0, 1.0)


def test_sampling_with_a_plan_stores_the_design_and_the_estimate_uses_it(
    session: Session,
) -> None:
    agent = agent_named(session)
    version = ensure_version(session, agent=agent, version="v1", actor="t")
    rubric = register_rubric(session, text=REVIEW_RUBRIC, source="r.yaml", actor="t")
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    session.add_all(
        conversation(
            agent,
            version,
            external_id=f"c{i}",
            started_at=start + timedelta(seconds=i),
            escalated=i % 10 == 0,
            channel="voice" if i % 3 == 0 else "chat",
        )
        for i in range(300)
    )
    session.flush()
    plan = SamplePlan(half_width=0.1, floor=3, salt="s")
    result = sample_window(
        session,
        agent=agent,
        version=version,
        rubric=rubric,
        window_start=start,
        window_end=start + timedelta(hours=1),
        seed=0,
        plan=plan,
        actor="t",
    )
    session.commit()
    stored = session.exec(select(Sample)).one()
    assert stored.plan is not None and stored.plan["salt"] == "s"
    assert stored.method.startswith("stratified-plan-v1")
    items = session.exec(select(ReviewItem)).all()
    assert len(items) == len(result.items) and all(i.inclusion_probability for i in items)
    assert len({i.stratum for i in items}) == 4
    register_reviewers(session, "rita@x.io")
    for number in range(len(items)):
        item = claim_next(session, reviewer=reviewer_as(session, "rita@x.io"))
        assert item is not None and item.id is not None
        failed = number % 5 == 0
        findings = {"confirm": not failed, "grounded": True, "tone": True}
        notes = {"confirm": "booked without a yes"} if failed else {}
        submit_review(
            session,
            item_id=item.id,
            reviewer=reviewer_as(session, "rita@x.io"),
            findings=findings,
            notes=notes,
        )
    session.commit()
    estimate = adherence_estimate(session, version=version)
    assert estimate.n == len(items) and estimate.rate is not None
    assert 0.6 < estimate.rate < 0.95 and len(estimate.strata) == 4


def test_cli_samples_by_plan_and_prints_the_estimate(
    session: Session, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    agent = agent_named(session)
    version = ensure_version(session, agent=agent, version="v1", actor="t")
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    session.add_all(
        conversation(agent, version, external_id=f"c{i}", started_at=start + timedelta(minutes=i))
        for i in range(30)
    )
    session.commit()
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(REVIEW_RUBRIC)
    assert run(["rubric", "add", str(rubric)]) == 0
    assert run(["people", "add", "rita@x.io", "--role", "reviewer"]) == 0
    end = ["--end", "2026-11-01T10:00:00Z"]
    assert run(["sample", "airline", *end, "--plan", str(PLAN_EXAMPLE)]) == 0
    assert run(["review", "next", "--as", "rita@x.io"]) == 0
    assert run(["review", "submit", "1", "--as", "rita@x.io"]) == 0
    capsys.readouterr()
    assert run(["review", "estimate", "airline"]) == 0
    out = capsys.readouterr().out
    assert "100.0%" in out and "20.7% - 100.0%" in out
    bad = tmp_path / "plan.yaml"
    bad.write_text("allocation: random\n")
    assert run(["sample", "airline", *end, "--plan", str(bad)]) == 2
    assert "allocation" in capsys.readouterr().err


def test_sampling_uses_the_rubric_the_agent_names(
    session: Session, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    agent = agent_named(session)
    version = ensure_version(session, agent=agent, version="v1", actor="t")
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    session.add(conversation(agent, version, external_id="c1", started_at=start))
    session.commit()
    mine, newer = tmp_path / "mine.yaml", tmp_path / "newer.yaml"
    mine.write_text(REVIEW_RUBRIC)
    newer.write_text(REVIEW_RUBRIC.replace("name: support", "name: other"))
    assert run(["rubric", "add", str(mine)]) == 0
    assert run(["rubric", "add", str(newer)]) == 0
    assert run(["agents", "set-rubric", "airline", "nope"]) == 2
    assert run(["agents", "set-rubric", "airline", "support"]) == 0
    assert run(["sample", "airline", "--end", "2026-11-01T10:00:00Z"]) == 0
    item = session.exec(select(ReviewItem)).one()
    rubric = session.get(Rubric, item.rubric_id)
    assert rubric is not None and rubric.name == "support"  # not the newest registered
