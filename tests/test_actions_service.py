import os
import threading
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.actions.executor import EXECUTOR
from agentops.actions.service import (
    BREACH_PROPOSER,
    ApprovalRefused,
    DecisionResult,
    decide,
    escalate_if_due,
    expire,
    follow_deployer,
    get_action,
    list_actions,
    mark_executing,
    open_approval,
    propose_redeploy,
    propose_rollback,
    record_execution,
)
from agentops.agents.service import ensure_version, mark_known_good, set_live
from agentops.audit.service import iter_events, verify_chain
from agentops.errors import NotFoundError, RuleViolation
from agentops.store.models import (
    Action,
    ActionKind,
    ActionStatus,
    Agent,
    AgentVersion,
    Approval,
    Decision,
    VersionStatus,
    utcnow,
)
from factories import BACKUP, OPS, OWNER, Fleet, agent_named, as_person, degraded_fleet

PROPOSER = "trigger:escalation-rate"


@pytest.fixture
def fleet(session: Session) -> Fleet:
    fleet = degraded_fleet(session)
    session.commit()
    return fleet


def kinds(session: Session, action: Action) -> list[str]:
    return [e.kind for e in iter_events(session, entity=f"action:{action.id}")]


def propose(session: Session, fleet: Fleet) -> Action:
    action = propose_rollback(
        session,
        agent=fleet.agent,
        from_version=fleet.bad,
        evaluation=None,
        actor=PROPOSER,
        reason="escalation rate breached",
    )
    assert action is not None
    return action


def opened(session: Session, fleet: Fleet) -> Action:
    action = propose(session, fleet)
    return open_approval(
        session, action_id=action.id, flow_run_id=None, owner_timeout_s=60, backup_timeout_s=60
    )


def owner_approves(session: Session, action: Action) -> DecisionResult:
    return decide(
        session,
        action_id=action.id,  # type: ignore[arg-type]
        actor=as_person(session, OWNER),
        decision=Decision.approve,
        reason=None,
    )


def test_propose_rollback_targets_last_known_good(session: Session, fleet: Fleet) -> None:
    action = propose(session, fleet)
    session.commit()
    assert action.kind == ActionKind.rollback
    assert (action.from_version_id, action.to_version_id) == (fleet.bad.id, fleet.good.id)
    assert action.status == ActionStatus.proposed
    assert action.proposed_by == BREACH_PROPOSER and action.proposed_by_id is None
    event = next(iter(iter_events(session, kind_prefix="action.proposed")))
    assert event.payload["from_version"] == "v2"
    assert event.payload["to_version"] == "v1"


def test_second_rollback_is_not_proposed_while_one_is_open(session: Session, fleet: Fleet) -> None:
    first = propose(session, fleet)
    again = propose_rollback(
        session,
        agent=fleet.agent,
        from_version=fleet.bad,
        evaluation=None,
        actor=PROPOSER,
        reason="still breached",
    )
    assert again is None
    assert [a.id for a in list_actions(session, agent=fleet.agent)] == [first.id]
    refusal = list(iter_events(session, kind_prefix="action.not_proposed"))
    assert len(refusal) == 1
    assert f"action #{first.id}" in refusal[0].payload["reason"]


def test_rollback_without_known_good_is_not_proposed(session: Session) -> None:
    agent = agent_named(session, "fresh")
    only = ensure_version(session, agent=agent, version="v1", actor="test")
    set_live(session, agent=agent, version=only, actor="test")
    assert (
        propose_rollback(
            session, agent=agent, from_version=only, evaluation=None, actor=PROPOSER, reason="x"
        )
        is None
    )
    mark_known_good(session, agent=agent, version=only, actor="test")
    assert (
        propose_rollback(
            session, agent=agent, from_version=only, evaluation=None, actor=PROPOSER, reason="x"
        )
        is None
    )
    reasons = [e.payload["reason"] for e in iter_events(session, kind_prefix="action.not_proposed")]
    # Neither before nor after v1 became known good is there another version to go back to.
    assert len(reasons) == 2
    assert all("no other known-good version" in reason for reason in reasons)
    assert list_actions(session) == []


def test_a_known_good_version_that_degrades_rolls_back_to_the_one_before(
    session: Session,
) -> None:
    agent = agent_named(session, "drifting")
    v1 = ensure_version(session, agent=agent, version="v1", actor="test")
    set_live(session, agent=agent, version=v1, actor="test")
    mark_known_good(session, agent=agent, version=v1, actor="test")
    v2 = ensure_version(session, agent=agent, version="v2", actor="test")
    set_live(session, agent=agent, version=v2, actor="test")
    mark_known_good(session, agent=agent, version=v2, actor="test")  # v2 passed its triggers
    action = propose_rollback(
        session,
        agent=agent,
        from_version=v2,
        evaluation=None,
        actor=PROPOSER,
        reason="v2 degraded after passing",
    )
    assert action is not None
    assert (action.from_version_id, action.to_version_id) == (v2.id, v1.id)


def test_the_owner_may_decide_a_proposal_before_its_gate_opens(
    session: Session, fleet: Fleet
) -> None:
    action = propose(session, fleet)
    result = owner_approves(session, action)
    assert result.newly_recorded and result.action.status == ActionStatus.approved
    # A gate opened later finds the decision and does not ask again.
    opened = open_approval(
        session,
        action_id=action.id,
        flow_run_id="late-run",
        owner_timeout_s=60,
        backup_timeout_s=60,
    )
    assert opened.status == ActionStatus.approved and opened.owner_deadline is None


def test_open_approval_sets_deadlines_and_audits(session: Session, fleet: Fleet) -> None:
    action = propose(session, fleet)
    now = utcnow()
    open_approval(
        session,
        action_id=action.id,
        flow_run_id="run-1",
        owner_timeout_s=600,
        backup_timeout_s=300,
        now=now,
    )
    session.commit()
    action = get_action(session, action_id=action.id)
    assert action.status == ActionStatus.awaiting_approval
    assert action.owner_deadline == now + timedelta(seconds=600)
    assert action.final_deadline == now + timedelta(seconds=900)
    assert action.flow_run_id == "run-1"
    [requested] = iter_events(session, kind_prefix="approval.requested")
    assert requested.payload["decides_first"] == OWNER
    # A second gate attaches to the open window and keeps its deadlines.
    again = open_approval(
        session, action_id=action.id, flow_run_id="run-2", owner_timeout_s=1, backup_timeout_s=1
    )
    assert again.flow_run_id == "run-2"
    assert again.final_deadline == now + timedelta(seconds=900)


def test_owner_approves_once_and_duplicate_is_counted_once(session: Session, fleet: Fleet) -> None:
    action = opened(session, fleet)
    first = owner_approves(session, action)
    second = decide(
        session,
        action_id=action.id,
        actor=as_person(session, "Owner@X.io"),
        decision=Decision.approve,
        reason=None,
    )
    session.commit()
    assert first.newly_recorded and not second.newly_recorded
    assert second.approval.id == first.approval.id
    assert len(session.exec(select(Approval)).all()) == 1
    assert get_action(session, action_id=action.id).status == ActionStatus.approved
    assert kinds(session, action).count("approval.decided") == 1


def test_refusals_are_audited_and_change_nothing(session: Session, fleet: Fleet) -> None:
    action = opened(session, fleet)
    session.commit()
    attempts = [
        ("mallory@x.io", Decision.approve, None, "only the agent's owner or its backup"),
        (BACKUP, Decision.approve, None, "the owner has until"),
        (OWNER, Decision.reject, "  ", "needs a reason"),
    ]
    for approver, decision, reason, message in attempts:
        with pytest.raises(ApprovalRefused, match=message) as refused:
            decide(
                session,
                action_id=action.id,
                actor=as_person(session, approver),
                decision=decision,
                reason=reason,
            )
        assert refused.value.action_id == action.id
        session.commit()  # what every edge does before showing the error
    refusals = list(iter_events(session, kind_prefix="approval.refused"))
    assert len(refusals) == len(attempts)
    assert [e.actor for e in refusals] == ["mallory@x.io", BACKUP, OWNER]
    assert "owner has until" in refusals[1].payload["reason"]
    assert all(OWNER not in e.payload["reason"] for e in refusals[:1])
    assert get_action(session, action_id=action.id).status == ActionStatus.awaiting_approval
    assert session.exec(select(Approval)).all() == []
    assert verify_chain(session) == []


def test_conflicting_decision_is_refused(session: Session, fleet: Fleet) -> None:
    action = opened(session, fleet)
    decide(
        session,
        action_id=action.id,
        actor=as_person(session, OWNER),
        decision=Decision.reject,
        reason="false alarm: a holiday spike",
    )
    with pytest.raises(ApprovalRefused, match="already decided"):
        owner_approves(session, action)
    session.commit()
    action = get_action(session, action_id=action.id)
    assert action.status == ActionStatus.rejected
    approval = session.exec(select(Approval)).one()
    assert approval.reason == "false alarm: a holiday spike"


def test_escalation_lets_the_backup_decide(session: Session, fleet: Fleet) -> None:
    action = opened(session, fleet)
    assert action.owner_deadline is not None
    assert not escalate_if_due(session, action_id=action.id)
    after = action.owner_deadline + timedelta(seconds=1)
    assert escalate_if_due(session, action_id=action.id, now=after)
    assert not escalate_if_due(session, action_id=action.id, now=after)  # idempotent
    result = decide(
        session,
        action_id=action.id,
        actor=as_person(session, BACKUP),
        decision=Decision.approve,
        reason="owner on leave",
        now=after,
    )
    session.commit()
    assert result.newly_recorded
    assert result.action.status == ActionStatus.approved
    assert result.action.escalated_at == after
    escalated = list(iter_events(session, kind_prefix="approval.escalated"))
    assert [e.payload["backup"] for e in escalated] == [BACKUP]
    [decided] = iter_events(session, kind_prefix="approval.decided")
    assert decided.payload["role"] == "backup"


def test_expiry_closes_the_window(session: Session, fleet: Fleet) -> None:
    action = opened(session, fleet)
    assert action.final_deadline is not None
    assert not expire(session, action_id=action.id)
    assert expire(session, action_id=action.id, now=action.final_deadline)
    session.commit()
    assert get_action(session, action_id=action.id).status == ActionStatus.expired
    with pytest.raises(ApprovalRefused, match="expired"):
        owner_approves(session, action)
    assert "action.expired" in kinds(session, action)


def test_successful_rollback_switches_versions(session: Session, fleet: Fleet) -> None:
    action = opened(session, fleet)
    owner_approves(session, action)
    mark_executing(session, action_id=action.id, actor=EXECUTOR)
    record_execution(
        session, action_id=action.id, succeeded=True, detail="healthy on v1", actor=EXECUTOR
    )
    session.commit()
    session.refresh(fleet.good)
    session.refresh(fleet.bad)
    assert fleet.good.status == VersionStatus.live
    assert fleet.bad.status == VersionStatus.rolled_back
    action = get_action(session, action_id=action.id)
    assert action.status == ActionStatus.succeeded
    assert action.executed_at is not None
    assert action.outcome_detail == "healthy on v1"
    assert kinds(session, action)[-2:] == ["action.executing", "action.executed"]
    assert list_actions(session, status=ActionStatus.succeeded) == [action]


def test_failed_execution_leaves_versions_alone(session: Session, fleet: Fleet) -> None:
    action = opened(session, fleet)
    with pytest.raises(RuleViolation, match="only approved actions run"):
        mark_executing(session, action_id=action.id, actor=EXECUTOR)
    owner_approves(session, action)
    mark_executing(session, action_id=action.id, actor=EXECUTOR)
    record_execution(
        session, action_id=action.id, succeeded=False, detail="deployer down", actor=EXECUTOR
    )
    session.commit()
    session.refresh(fleet.bad)
    assert fleet.bad.status == VersionStatus.live
    assert get_action(session, action_id=action.id).status == ActionStatus.failed
    [executed] = iter_events(session, kind_prefix="action.executed")
    assert executed.payload["succeeded"] is False


def test_redeploy_after_rollback_retires_the_replaced_version(
    session: Session, fleet: Fleet
) -> None:
    set_live(
        session,
        agent=fleet.agent,
        version=fleet.good,
        actor="test",
        previous_status=VersionStatus.rolled_back,
    )
    action = propose_redeploy(
        session,
        agent=fleet.agent,
        version=fleet.bad,
        actor=as_person(session, OPS),
        reason="fixed upstream",
    )
    assert (action.from_version_id, action.to_version_id) == (fleet.good.id, fleet.bad.id)
    open_approval(
        session, action_id=action.id, flow_run_id=None, owner_timeout_s=60, backup_timeout_s=60
    )
    owner_approves(session, action)
    mark_executing(session, action_id=action.id, actor=EXECUTOR)
    record_execution(session, action_id=action.id, succeeded=True, detail="ok", actor=EXECUTOR)
    session.commit()
    session.refresh(fleet.good)
    session.refresh(fleet.bad)
    assert (fleet.bad.status, fleet.good.status) == (VersionStatus.live, VersionStatus.retired)


def test_redeploy_refuses_live_retired_and_busy(session: Session, fleet: Fleet) -> None:
    with pytest.raises(RuleViolation, match="already live"):
        propose_redeploy(
            session, agent=fleet.agent, version=fleet.bad, actor=as_person(session, OPS), reason="x"
        )
    with pytest.raises(RuleViolation, match="retired"):
        propose_redeploy(
            session,
            agent=fleet.agent,
            version=fleet.good,
            actor=as_person(session, OPS),
            reason="x",
        )
    v3 = ensure_version(session, agent=fleet.agent, version="v3", actor="test")
    propose(session, fleet)
    with pytest.raises(RuleViolation, match="is still proposed"):
        propose_redeploy(
            session, agent=fleet.agent, version=v3, actor=as_person(session, OPS), reason="x"
        )


def test_unknown_action_is_not_found(session: Session, fleet: Fleet) -> None:
    with pytest.raises(NotFoundError, match="no action #999"):
        get_action(session, action_id=999)
    with pytest.raises(NotFoundError):
        decide(
            session,
            action_id=999,
            actor=as_person(session, OWNER),
            decision=Decision.approve,
            reason=None,
        )


@pytest.mark.skipif(
    os.environ.get("AGENTOPS_TEST_DATABASE", "sqlite") != "postgresql",
    reason="row locks (FOR UPDATE) only exist on PostgreSQL",
)
def test_concurrent_proposals_leave_one_open_action(engine: Engine, fleet: Fleet) -> None:
    barrier = threading.Barrier(4, timeout=10)
    outcomes: list[str] = []
    agent_id, bad_id = fleet.agent.id, fleet.bad.id  # read here: sessions are not thread-safe

    def propose_in_own_session(index: int) -> None:
        with Session(engine) as session:
            agent = session.get(Agent, agent_id)
            bad = session.get(AgentVersion, bad_id)
            barrier.wait()
            try:
                action = propose_rollback(
                    session,
                    agent=agent,
                    from_version=bad,
                    evaluation=None,  # type: ignore[arg-type]
                    actor=f"evaluator-{index}",
                    reason="race",
                )
                session.commit()
                outcomes.append("proposed" if action else "not proposed")
            except Exception as exc:  # any failure is a finding: record, do not hide it
                outcomes.append(f"error: {exc!r}")

    threads = [threading.Thread(target=propose_in_own_session, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["not proposed"] * 3 + ["proposed"]
    with Session(engine) as session:
        assert len(list_actions(session, agent=fleet.agent)) == 1
        assert verify_chain(session) == []


def test_an_unknown_live_version_is_noted_once_even_before_it_is_sealed(
    engine: Engine, session: Session, fleet: Fleet
) -> None:
    """Sweeps a minute apart, or moments apart while the sequencer has not sealed yet."""
    session.commit()
    for observed in ["v9", "v9", "v9", "v10", "v10"]:
        with Session(engine) as sweep:
            agent = sweep.get(Agent, fleet.agent.id)
            assert follow_deployer(sweep, agent=agent, observed=observed, actor=EXECUTOR) is False
            sweep.commit()
    with Session(engine) as reader:
        notes = list(iter_events(reader, kind_prefix="deployer.unknown_version"))
    assert [note.payload["observed_live"] for note in notes] == ["v9", "v10"]
