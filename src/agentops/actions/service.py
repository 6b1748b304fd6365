"""Propose, approve and record rollbacks and redeploys; every change is audited.

Refused decisions are part of the trail too. `decide` appends an `approval.refused`
event to the caller's session and then raises `ApprovalRefused`; the edge that catches
it must commit before reporting the error, or the refusal is rolled back with the
transaction. Raising (rather than returning a refusal object) keeps a caller that
forgets to check from treating a refused decision as a recorded one.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlmodel import Session, col, select

from agentops.actions.repeats import next_allowed, unanswered_streak
from agentops.actions.rules import (
    OPEN_STATUSES,
    UNDECIDED_STATUSES,
    ActionFacts,
    ApprovalProof,
    ApproverRole,
    CheckOutcome,
    DecisionRequest,
    check_cancel,
    check_decision,
    escalation_due,
    execution_obstacle,
    expiry_due,
    first_approver,
)
from agentops.agents.actors import Actor, Channel
from agentops.agents.service import (
    live_version,
    lock_agent,
    require_own_version,
    rollback_target,
    set_live,
)
from agentops.audit.chain import canonical_sha256
from agentops.audit.service import (
    add_and_record,
    find_decision_entry,
    newest_payload,
    record_event,
)
from agentops.errors import NotFoundError, RuleViolation
from agentops.redaction import redact
from agentops.settings import get_settings
from agentops.store.models import (
    Action,
    ActionKind,
    ActionStatus,
    Agent,
    AgentVersion,
    Approval,
    Decision,
    Evaluation,
    Person,
    Role,
    TriggerSet,
    VersionStatus,
    utcnow,
)
from agentops.triggers.acknowledge import acknowledge_false_alarm, is_false_alarm

SYSTEM_ACTOR = "agentops"
# A breach rollback is proposed by the system, never by whoever ran the evaluation.
BREACH_PROPOSER = "flow:evaluate-triggers"
DETAIL_LIMIT = 600
# What a waiting gate wakes up to: a decision, or the end of the request.
SETTLED_FOR_GATE = frozenset(
    {
        ActionStatus.approved,
        ActionStatus.rejected,
        ActionStatus.expired,
        ActionStatus.cancelled,
    }
)


class ApprovalRefused(RuleViolation):
    """A request the rules refused; the refusal is already in the caller's session.

    The edge must commit before reporting it, so the refusal stays on the trail.
    """

    def __init__(self, message: str, *, action_id: int) -> None:
        super().__init__(message)
        self.action_id = action_id


class ExecutionRefused(ApprovalRefused):
    """An execution refused for lack of proof; the action is flagged and closed as failed."""


@dataclass(frozen=True)
class DecisionResult:
    """The approval on record, whether this call created it, and the action after it."""

    approval: Approval
    newly_recorded: bool
    action: Action


def get_action(session: Session, *, action_id: int) -> Action:
    """Look up an action by id."""
    action = session.get(Action, action_id)
    if action is None:
        raise _no_such_action(action_id)
    return action


def list_actions(
    session: Session, *, agent: Agent | None = None, status: ActionStatus | None = None
) -> list[Action]:
    """Actions, oldest first, optionally for one agent or in one status."""
    query = select(Action).order_by(Action.id)  # type: ignore[arg-type]
    if agent is not None:
        query = query.where(Action.agent_id == agent.id)
    if status is not None:
        query = query.where(Action.status == status)
    return list(session.exec(query))


def open_action_for(session: Session, *, agent: Agent) -> Action | None:
    """The agent's action that is still in flight, if any."""
    return session.exec(
        select(Action)
        .where(Action.agent_id == agent.id, Action.status.in_(OPEN_STATUSES))  # type: ignore[attr-defined]
        .order_by(Action.id)  # type: ignore[arg-type]
    ).first()


def get_approval(session: Session, *, action_id: int) -> Approval | None:
    """The decision recorded for an action, if any."""
    return session.exec(select(Approval).where(Approval.action_id == action_id)).first()


def propose_rollback(
    session: Session,
    *,
    agent: Agent,
    from_version: AgentVersion,
    evaluation: Evaluation | None,
    actor: str,
    reason: str,
) -> Action | None:
    """Propose rolling back to the last-known-good version, or audit why not (None)."""
    require_own_version(agent, from_version)
    lock_agent(session, agent=agent)
    evaluation_id = evaluation.id if evaluation is not None else None
    refusal = rollback_obstacle(session, agent=agent, from_version=from_version)
    if refusal is not None:
        _record_rollback_not_proposed(
            session,
            actor=actor,
            agent=agent,
            from_version=from_version,
            evaluation_id=evaluation_id,
            details={"reason": refusal},
        )
        return None
    streak = None
    if evaluation is not None:
        streak = unanswered_streak(
            session, agent=agent, from_version=from_version, trigger_name=evaluation.trigger_name
        )
        base = timedelta(seconds=get_settings().expiry_backoff_s)
        allowed = next_allowed(streak, base=base)
        if allowed is not None and utcnow() < allowed:
            _record_rollback_not_proposed(
                session,
                actor=actor,
                agent=agent,
                from_version=from_version,
                evaluation_id=evaluation_id,
                details={
                    "reason": (
                        f"{streak.unanswered} request(s) to roll back {from_version.version} on "
                        f"{evaluation.trigger_name} expired unanswered; the next one waits "
                        f"until {allowed.isoformat()}"
                    ),
                    "unanswered": streak.unanswered,
                    "next_allowed": allowed.isoformat(),
                },
            )
            return None
    target = rollback_target(session, agent=agent, leaving=from_version)
    assert target is not None  # rollback_obstacle found one
    action = _create_action(
        session,
        agent=agent,
        kind=ActionKind.rollback,
        from_version=from_version,
        to_version=target,
        evaluation_id=evaluation_id,
        proposer=Actor(label=BREACH_PROPOSER, channel=Channel.flow),
        reason=reason,
    )
    if streak is not None and streak.unanswered and evaluation is not None:
        # Announced to the operators' channel: the owner and backup have let it lapse.
        record_event(
            session,
            actor=actor,
            kind="action.repeated_request",
            entity_type="action",
            entity_id=action.id,
            payload={
                "agent": agent.name,
                "from_version": from_version.version,
                "trigger": evaluation.trigger_name,
                "unanswered_before": streak.unanswered,
                "nth": streak.unanswered + 1,
            },
        )
    return action


def _record_rollback_not_proposed(
    session: Session,
    *,
    actor: str,
    agent: Agent,
    from_version: AgentVersion,
    evaluation_id: int | None,
    details: dict[str, Any],
) -> None:
    """Audit why a rollback was not proposed: the common payload, then the reason's details."""
    record_event(
        session,
        actor=actor,
        kind="action.not_proposed",
        entity_type="agent",
        entity_id=agent.id,
        payload={
            "kind": ActionKind.rollback.value,
            "agent": agent.name,
            "from_version": from_version.version,
            "evaluation_id": evaluation_id,
            **details,
        },
    )


def propose_redeploy(
    session: Session, *, agent: Agent, version: AgentVersion, actor: Actor, reason: str
) -> Action:
    """Propose putting a candidate or rolled-back version back into service."""
    require_own_version(agent, version)
    lock_agent(session, agent=agent)
    if not actor.is_person:
        raise RuleViolation(
            f"{actor.label} is not a registered person: only people propose redeploys"
        )
    if not reason.strip():
        raise RuleViolation("a redeploy needs a reason")
    if version.status == VersionStatus.live:
        raise RuleViolation(f"version {version.version!r} of {agent.name!r} is already live")
    if version.status == VersionStatus.retired:
        raise RuleViolation(
            f"version {version.version!r} of {agent.name!r} is retired; register a new version"
        )
    current = live_version(session, agent=agent)
    if current is None:
        raise RuleViolation(f"agent {agent.name!r} has no live version to replace")
    pending = open_action_for(session, agent=agent)
    if pending is not None:
        raise RuleViolation(
            f"action #{pending.id} ({pending.kind}) for {agent.name!r} is still {pending.status}"
        )
    return _create_action(
        session,
        agent=agent,
        kind=ActionKind.redeploy,
        from_version=current,
        to_version=version,
        evaluation_id=None,
        proposer=actor,
        reason=reason,
    )


def open_approval(
    session: Session,
    *,
    action_id: int,
    flow_run_id: str | None,
    owner_timeout_s: int,
    backup_timeout_s: int,
    now: datetime | None = None,
) -> Action:
    """Ask the owner to decide by a deadline; the backup gets a second window after it."""
    if owner_timeout_s <= 0 or backup_timeout_s <= 0:
        raise RuleViolation("approval timeouts must be positive numbers of seconds")
    action = _lock_action(session, action_id)
    if action.status in UNDECIDED_STATUSES:
        if flow_run_id and action.flow_run_id != flow_run_id:
            # A gate attaching to an approval opened elsewhere keeps the original deadlines.
            action.flow_run_id = flow_run_id
            _save_and_record(
                session,
                action,
                actor=SYSTEM_ACTOR,
                kind="approval.gate_attached",
                payload={"flow_run_id": flow_run_id},
            )
        return action
    if action.status in {ActionStatus.approved, ActionStatus.rejected}:
        return action  # decided before any gate opened: nothing to wait for
    if action.status != ActionStatus.proposed:
        raise RuleViolation(f"action #{action_id} is {action.status}, not proposed")
    now = now or utcnow()
    owner, backup = _approvers(session, action)
    owner_proposed = action.proposed_by_id == owner.id
    first = owner if first_approver(owner_proposed=owner_proposed) is ApproverRole.owner else backup
    action.status = ActionStatus.awaiting_approval
    action.flow_run_id = flow_run_id
    action.owner_deadline = now + timedelta(seconds=owner_timeout_s)
    action.final_deadline = action.owner_deadline + timedelta(seconds=backup_timeout_s)
    _save_and_record(
        session,
        action,
        actor=SYSTEM_ACTOR,
        kind="approval.requested",
        payload={
            "decides_first": first.email,
            "owner_deadline": action.owner_deadline.isoformat(),
            "final_deadline": action.final_deadline.isoformat(),
            "flow_run_id": flow_run_id,
        },
    )
    return action


def escalate_if_due(
    session: Session, *, action_id: int, now: datetime | None = None, actor: str = SYSTEM_ACTOR
) -> bool:
    """Hand an undecided action to the backup once the owner deadline passed."""
    action = _lock_action(session, action_id)
    now = now or utcnow()
    if not escalation_due(action.status, action.owner_deadline, now):
        return False
    _, backup = _approvers(session, action)
    action.status = ActionStatus.escalated
    action.escalated_at = now
    _save_and_record(
        session,
        action,
        actor=actor,
        kind="approval.escalated",
        payload={"backup": backup.email, "final_deadline": _iso(action.final_deadline)},
    )
    return True


def decide(
    session: Session,
    *,
    action_id: int,
    actor: Actor,
    decision: Decision,
    reason: str | None,
    now: datetime | None = None,
) -> DecisionResult:
    """Record an approval or rejection; raises ApprovalRefused (already audited) if refused."""
    action = _lock_action(session, action_id)
    request = DecisionRequest(
        approver_id=actor.person_id, decision=decision, now=now or utcnow(), reason=reason
    )
    owner, backup = _approvers(session, action)
    existing = get_approval(session, action_id=action_id)
    try:
        check = check_decision(_facts(action, owner, backup, existing), request)
    except RuleViolation as refused:
        raise _refusal(
            session,
            action,
            actor,
            kind="approval.refused",
            reason=str(refused),
            extra={"decision": decision.value},
        ) from None
    if check.outcome == CheckOutcome.duplicate:
        assert existing is not None
        return DecisionResult(approval=existing, newly_recorded=False, action=action)
    approver = owner if check.role == ApproverRole.owner else backup
    approval = _record_decision(
        session, action, request, actor=actor, approver=approver, role=check.role
    )
    if (
        decision == Decision.reject
        and action.kind == ActionKind.rollback
        and is_false_alarm(approval.reason)
    ):
        # The owner says the charts were wrong: they start afresh, so a real breach later
        # on the same version proposes again.
        acknowledge_false_alarm(session, action=action, actor=actor.label)
    return DecisionResult(approval=approval, newly_recorded=True, action=action)


def cancel_action(session: Session, *, action_id: int, actor: Actor, reason: str) -> Action:
    """Call off an action not yet executing; raises ApprovalRefused (audited) if refused."""
    action = _lock_action(session, action_id)
    owner, backup = _approvers(session, action)
    person = session.get(Person, actor.person_id) if actor.person_id is not None else None
    try:
        check_cancel(
            _facts(action, owner, backup, None),
            actor_id=actor.person_id,
            is_admin=person is not None and person.role == Role.admin,
            reason=reason,
        )
    except RuleViolation as refused:
        raise _refusal(
            session, action, actor, kind="action.cancel_refused", reason=str(refused)
        ) from None
    previous = action.status
    action.status = ActionStatus.cancelled
    _save_and_record(
        session,
        action,
        actor=actor.label,
        channel=actor.channel,
        kind="action.cancelled",
        payload={
            "previous_status": previous.value,
            "reason": reason.strip(),
            "channel": actor.channel.value,
            "person_id": actor.person_id,
        },
    )
    return action


def expire(
    session: Session, *, action_id: int, now: datetime | None = None, actor: str = SYSTEM_ACTOR
) -> bool:
    """Close an action nobody decided before the final deadline; True if it expired now."""
    action = _lock_action(session, action_id)
    now = now or utcnow()
    if not expiry_due(action.status, action.final_deadline, now):
        return False
    previous = action.status
    action.status = ActionStatus.expired
    _save_and_record(
        session,
        action,
        actor=actor,
        kind="action.expired",
        payload={"previous_status": previous.value, "final_deadline": _iso(action.final_deadline)},
    )
    return True


def mark_executing(session: Session, *, action_id: int, actor: Actor) -> Action:
    """Move an approved action into execution once its approval is proven, not just claimed.

    Without proof the action is flagged, closed as failed and the refusal audited; the
    raised ExecutionRefused tells the edge to commit that before reporting it.
    """
    action = _lock_action(session, action_id)
    owner, backup = _approvers(session, action)
    facts = _facts(action, owner, backup, None)
    obstacle = execution_obstacle(facts, approval_proof(session, action_id=action_id))
    if obstacle is not None and action.status != ActionStatus.approved:
        raise RuleViolation(f"action #{action_id} is {action.status}; only approved actions run")
    if obstacle is not None:
        raise _refuse_execution(session, action, actor, obstacle)
    action.status = ActionStatus.executing
    action.execution_started_at = utcnow()
    _save_and_record(
        session,
        action,
        actor=actor.label,
        channel=actor.channel,
        kind="action.executing",
        payload={"kind": action.kind.value, "idempotency_key": action.idempotency_key},
    )
    return action


def approval_proof(session: Session, *, action_id: int) -> ApprovalProof | None:
    """The recorded approval and whether its decision event is intact in the audit trail."""
    approval = get_approval(session, action_id=action_id)
    if approval is None:
        return None
    entry = find_decision_entry(
        session, kind="approval.decided", entity_type="action", entity_id=str(action_id)
    )
    verified = (
        entry is not None
        and entry[1]
        and entry[0].get("decision") == approval.decision.value
        and entry[0].get("approver_id") == approval.approver_id
    )
    return ApprovalProof(
        approver_id=approval.approver_id, decision=approval.decision, event_verified=verified
    )


def record_execution(
    session: Session,
    *,
    action_id: int,
    succeeded: bool,
    detail: str,
    actor: Actor,
    observed_live: str | None = None,
) -> Action:
    """Record how execution ended; the store's live version follows what the deployer serves.

    `observed_live` is the version the deployer reported serving afterwards (None when it
    was not asked); on success the target version is live.
    """
    action = _lock_action(session, action_id)
    if action.status != ActionStatus.executing:
        raise RuleViolation(f"action #{action_id} is {action.status}, not executing")
    agent = session.get(Agent, action.agent_id)
    from_version = session.get(AgentVersion, action.from_version_id)
    to_version = session.get(AgentVersion, action.to_version_id)
    assert agent is not None and from_version is not None and to_version is not None
    replaced = (
        VersionStatus.rolled_back if action.kind == ActionKind.rollback else VersionStatus.retired
    )
    if succeeded:
        set_live(
            session, agent=agent, version=to_version, actor=actor.label, previous_status=replaced
        )
    elif observed_live is not None:
        follow_deployer(session, agent=agent, observed=observed_live, actor=actor)
    action.status = ActionStatus.succeeded if succeeded else ActionStatus.failed
    action.executed_at = utcnow()
    action.outcome_detail = _safe_detail(detail)
    _save_and_record(
        session,
        action,
        actor=actor.label,
        channel=actor.channel,
        kind="action.executed",
        payload={
            "kind": action.kind.value,
            "agent": agent.name,
            "from_version": from_version.version,
            "to_version": to_version.version,
            "succeeded": succeeded,
            "observed_live": observed_live,
            "detail": action.outcome_detail,
        },
    )
    return action


def stale_executing(session: Session, *, older_than: datetime) -> list[Action]:
    """Executing actions whose execution began before the cut-off: candidates to reconcile."""
    return list(
        session.exec(
            select(Action)
            .where(
                Action.status == ActionStatus.executing,
                col(Action.execution_started_at) <= older_than,
            )
            .order_by(col(Action.id))
        )
    )


def approved_before(session: Session, *, cutoff: datetime) -> list[Action]:
    """Approved actions decided before the cut-off and still not run."""
    return list(
        session.exec(
            select(Action)
            .where(Action.status == ActionStatus.approved, col(Action.decided_at) <= cutoff)
            .order_by(col(Action.id))
        )
    )


def record_flow_run(session: Session, *, action_id: int, flow_run_id: str) -> Action:
    """Note the flow run started for an action (before its gate opens), audited."""
    action = _lock_action(session, action_id)
    if action.flow_run_id == flow_run_id:
        return action
    action.flow_run_id = flow_run_id
    _save_and_record(
        session,
        action,
        actor=SYSTEM_ACTOR,
        kind="action.flow_run_started",
        payload={"flow_run_id": flow_run_id},
    )
    return action


def settled_with_gate(session: Session, *, deadline_after: datetime) -> list[Action]:
    """Decided or closed actions with a gate run, whose final deadline is after the cut-off.

    Their gate may still be suspended when the decision was made where no Prefect API was
    in reach; the sweep flow wakes those runs so they finish (or deploy) on their own.
    """
    return list(
        session.exec(
            select(Action)
            .where(
                col(Action.status).in_(SETTLED_FOR_GATE),
                col(Action.flow_run_id).is_not(None),
                col(Action.final_deadline) > deadline_after,
            )
            .order_by(col(Action.id))
        )
    )


def undecided_actions(session: Session) -> list[Action]:
    """Actions waiting for a decision, whose deadlines the sweeper watches."""
    return list(
        session.exec(
            select(Action)
            .where(col(Action.status).in_(UNDECIDED_STATUSES))
            .order_by(col(Action.id))
        )
    )


def follow_deployer(session: Session, *, agent: Agent, observed: str, actor: Actor) -> bool:
    """Make the store's live version the one the deployer serves; True if the store changed.

    An observed version the store does not know is audited once, not adopted.
    """
    current = live_version(session, agent=agent)
    if current is not None and current.version == observed:
        return False
    version = session.exec(
        select(AgentVersion).where(
            AgentVersion.agent_id == agent.id, AgentVersion.version == observed
        )
    ).first()
    if version is None:
        _note_unknown_version(session, agent=agent, observed=observed, actor=actor)
        return False
    set_live(
        session,
        agent=agent,
        version=version,
        actor=actor.label,
        previous_status=_replaced_status(session, agent=agent, version=version),
    )
    return True


def _note_unknown_version(session: Session, *, agent: Agent, observed: str, actor: Actor) -> None:
    # Pending entries count: two sweeps may run before the sequencer seals the first note.
    last = newest_payload(
        session, kind="deployer.unknown_version", entity_type="agent", entity_id=str(agent.id)
    )
    if last is not None and last.get("observed_live") == observed:
        return  # already on the trail; a sweep every minute must not repeat it
    record_event(
        session,
        actor=actor.label,
        kind="deployer.unknown_version",
        entity_type="agent",
        entity_id=agent.id,
        payload={"agent": agent.name, "observed_live": observed},
    )


def _replaced_status(session: Session, *, agent: Agent, version: AgentVersion) -> VersionStatus:
    """What the version being replaced becomes: rolled back if a rollback brought this one."""
    latest = session.exec(
        select(Action)
        .where(Action.agent_id == agent.id, Action.to_version_id == version.id)
        .order_by(col(Action.id).desc())
    ).first()
    if latest is not None and latest.kind == ActionKind.rollback:
        return VersionStatus.rolled_back
    return VersionStatus.retired


def _safe_detail(detail: str) -> str:
    detail = redact(" ".join(detail.split()))
    return detail if len(detail) <= DETAIL_LIMIT else detail[: DETAIL_LIMIT - 1] + "…"


def _create_action(
    session: Session,
    *,
    agent: Agent,
    kind: ActionKind,
    from_version: AgentVersion,
    to_version: AgentVersion,
    evaluation_id: int | None,
    proposer: Actor,
    reason: str,
) -> Action:
    action = Action(
        agent_id=agent.id,  # type: ignore[arg-type]
        kind=kind,
        from_version_id=from_version.id,  # type: ignore[arg-type]
        to_version_id=to_version.id,  # type: ignore[arg-type]
        evaluation_id=evaluation_id,
        proposed_by=proposer.label,
        proposed_by_id=proposer.person_id,
        reason=reason,
        idempotency_key=f"agentops-{uuid.uuid4().hex}",
    )
    _save_and_record(
        session,
        action,
        actor=proposer.label,
        channel=proposer.channel,
        kind="action.proposed",
        payload={
            "kind": kind.value,
            "agent": agent.name,
            "from_version": from_version.version,
            "to_version": to_version.version,
            "evaluation_id": evaluation_id,
            "reason": reason,
            "person_id": proposer.person_id,
            **_evidence_digest(session, evaluation_id),
        },
    )
    return action


def _evidence_digest(session: Session, evaluation_id: int | None) -> dict[str, Any]:
    """Why the action was proposed: the trigger set's version and a hash of the evidence."""
    evaluation = session.get(Evaluation, evaluation_id) if evaluation_id is not None else None
    if evaluation is None:
        return {}
    trigger_set = session.get(TriggerSet, evaluation.trigger_set_id)
    return {
        "trigger": evaluation.trigger_name,
        "trigger_set_version": trigger_set.version if trigger_set else None,
        "evidence_sha256": canonical_sha256(evaluation.evidence),
    }


def rollback_obstacle(session: Session, *, agent: Agent, from_version: AgentVersion) -> str | None:
    """Why a rollback away from this version cannot be proposed now, or None."""
    if from_version.status != VersionStatus.live:
        return f"version {from_version.version!r} is {from_version.status}, not live"
    if rollback_target(session, agent=agent, leaving=from_version) is None:
        return (
            f"agent {agent.name!r} has no other known-good version to roll back to: "
            "redeploy a fixed version instead"
        )
    pending = open_action_for(session, agent=agent)
    if pending is not None:
        return (
            f"action #{pending.id} ({pending.kind}) is already {pending.status}: "
            f"see `agentops actions show {pending.id}` for how it moves on"
        )
    return None


def _lock_action(session: Session, action_id: int) -> Action:
    # Row lock on PostgreSQL so two approvers clicking at once are decided one at a time.
    action = session.exec(
        select(Action)
        .where(Action.id == action_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if action is None:
        raise _no_such_action(action_id)
    return action


def _no_such_action(action_id: int) -> NotFoundError:
    return NotFoundError(f"no action #{action_id} (see `agentops actions list`)")


def _save_and_record(
    session: Session,
    action: Action,
    *,
    actor: str,
    kind: str,
    payload: dict[str, Any],
    channel: Channel = Channel.flow,
) -> None:
    """Write the action's new state and its audit event (with the status it left) at once."""
    before, after = _status_change(action)
    add_and_record(
        session,
        row=action,
        actor=actor,
        kind=kind,
        entity_type="action",
        payload=payload,
        channel=channel.value,
        before=before,
        after=after,
    )


def _status_change(action: Action) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    history = sa_inspect(action).attrs.status.history
    if not history.deleted or history.deleted[0] is None:
        return None, None
    return {"status": str(history.deleted[0])}, {"status": str(action.status)}


def _facts(action: Action, owner: Person, backup: Person, existing: Approval | None) -> ActionFacts:
    return ActionFacts(
        status=action.status,
        proposer_id=action.proposed_by_id,
        owner_id=owner.id,  # type: ignore[arg-type]
        backup_id=backup.id,  # type: ignore[arg-type]
        owner_deadline=action.owner_deadline,
        final_deadline=action.final_deadline,
        recorded_decision=existing.decision if existing else None,
    )


def _refusal(
    session: Session,
    action: Action,
    actor: Actor,
    *,
    kind: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> ApprovalRefused:
    """Audit a refused request and return the error that reports it."""
    record_event(
        session,
        actor=actor.label,
        kind=kind,
        entity_type="action",
        entity_id=action.id,
        channel=actor.channel.value,
        payload={
            **(extra or {}),
            "channel": actor.channel.value,
            "person_id": actor.person_id,
            "reason": reason,
            "status": action.status.value,
        },
    )
    return ApprovalRefused(reason, action_id=action.id)  # type: ignore[arg-type]


def _refuse_execution(
    session: Session, action: Action, actor: Actor, obstacle: str
) -> ExecutionRefused:
    action.flag = obstacle
    action.status = ActionStatus.failed
    action.outcome_detail = f"execution refused: {obstacle}"
    _save_and_record(
        session,
        action,
        actor=actor.label,
        channel=actor.channel,
        kind="action.execution_refused",
        payload={"reason": obstacle, "channel": actor.channel.value},
    )
    return ExecutionRefused(
        f"action #{action.id} was not executed: {obstacle}; it is flagged and closed",
        action_id=action.id,  # type: ignore[arg-type]
    )


def _record_decision(
    session: Session,
    action: Action,
    request: DecisionRequest,
    *,
    actor: Actor,
    approver: Person,
    role: ApproverRole,
) -> Approval:
    approval = Approval(
        action_id=action.id,  # type: ignore[arg-type]
        approver_id=approver.id,  # type: ignore[arg-type]
        decision=request.decision,
        reason=(request.reason or "").strip() or None,
        channel=actor.channel.value,
        decided_at=request.now,
    )
    session.add(approval)
    approved = request.decision == Decision.approve
    action.status = ActionStatus.approved if approved else ActionStatus.rejected
    action.decided_at = request.now
    _save_and_record(
        session,
        action,
        actor=actor.label,
        channel=actor.channel,
        kind="approval.decided",
        payload={
            "decision": request.decision.value,
            "role": role.value,
            "channel": actor.channel.value,
            "approver_id": approver.id,
            "reason": approval.reason,
        },
    )
    return approval


def _approvers(session: Session, action: Action) -> tuple[Person, Person]:
    agent = session.get(Agent, action.agent_id)
    assert agent is not None
    owner = session.get(Person, agent.owner_id)
    backup = session.get(Person, agent.backup_id)
    assert owner is not None and backup is not None
    return owner, backup


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
