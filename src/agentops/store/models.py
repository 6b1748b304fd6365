"""The SQLModel tables behind agentops: one store for the whole decision trail."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import Field, SQLModel

# The tables nearly every command needs live in core_tables.py (see why there); they are
# part of this catalogue like the rest.
from agentops.store.core_tables import Agent as Agent
from agentops.store.core_tables import AgentVersion as AgentVersion
from agentops.store.core_tables import AuditChainHead as AuditChainHead
from agentops.store.core_tables import AuditEvent as AuditEvent
from agentops.store.core_tables import AuditPending as AuditPending
from agentops.store.core_tables import Person as Person
from agentops.store.core_tables import Role as Role
from agentops.store.core_tables import VersionStatus as VersionStatus
from agentops.store.core_tables import utcnow as utcnow


class Severity(StrEnum):
    critical = "critical"
    major = "major"
    minor = "minor"


class ItemStatus(StrEnum):
    open = "open"
    claimed = "claimed"
    reviewed = "reviewed"


class Outcome(StrEnum):
    ok = "ok"
    breach = "breach"
    insufficient_data = "insufficient_data"


class ActionKind(StrEnum):
    rollback = "rollback"
    redeploy = "redeploy"


class ActionStatus(StrEnum):
    proposed = "proposed"
    awaiting_approval = "awaiting_approval"
    escalated = "escalated"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    executing = "executing"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


class Rubric(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str
    version: int
    content_sha256: str
    created_at: datetime = Field(default_factory=utcnow)


class RubricCriterion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("rubric_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    rubric_id: int = Field(foreign_key="rubric.id", index=True)
    key: str
    description: str
    severity: Severity
    # The policy checks the criterion corresponds to (None: none).
    checks: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Conversation(SQLModel, table=True):
    __table_args__ = (
        # Also the agent's index: agent_id leads it.
        UniqueConstraint("agent_id", "external_id"),
        # A version's window, and its stream in (time, id) order, straight from the index.
        Index("ix_conversation_version_time", "agent_version_id", "started_at", "id"),
        # A version's rows stored after a given id: late arrivals, whatever their time.
        Index("ix_conversation_version_id", "agent_version_id", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id")
    agent_version_id: int = Field(foreign_key="agentversion.id")
    external_id: str
    started_at: datetime = Field(index=True)
    channel: str = "chat"
    intent: str | None = None
    transcript: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    escalated: bool
    contained: bool
    sentiment: float
    latency_ms: int | None = None
    task_success: float | None = None
    imported_at: datetime = Field(default_factory=utcnow)


class Sample(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    agent_version_id: int = Field(foreign_key="agentversion.id", index=True)
    rubric_id: int = Field(foreign_key="rubric.id")
    window_start: datetime
    window_end: datetime
    seed: int
    population: int
    size: int
    method: str
    created_at: datetime = Field(default_factory=utcnow)
    # The stratified plan that drew it (None: a simple random sample).
    plan: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class SignalSnapshot(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    agent_version_id: int = Field(foreign_key="agentversion.id", index=True)
    window_start: datetime
    window_end: datetime
    conversations: int
    escalation_rate: float | None
    containment_rate: float | None
    mean_sentiment: float | None
    p95_latency_ms: float | None
    created_at: datetime = Field(default_factory=utcnow)


# Items still in the queue (open or claimed); the claim query states this condition word
# for word, as both planners need to use the partial index below.
QUEUED_CONDITION = "status <> 'reviewed'"


class ReviewItem(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("conversation_id", "rubric_id"),
        # The claim query walks this in order and stops at the first row it may take.
        Index(
            "ix_reviewitem_queue",
            text("coalesce(due_at, created_at)"),
            "id",
            postgresql_where=text(QUEUED_CONDITION),
            sqlite_where=text(QUEUED_CONDITION),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    sample_id: int = Field(foreign_key="sample.id", index=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    rubric_id: int = Field(foreign_key="rubric.id")
    status: ItemStatus = Field(default=ItemStatus.open, index=True)
    claimed_by_id: int | None = Field(default=None, foreign_key="person.id")
    claimed_at: datetime | None = None
    lease_expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # A fencing token: bumped on every claim, so a submit from a lost lease is recognised.
    lease_token: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Review by this time or the next trigger evaluation runs without the verdict.
    due_at: datetime | None = Field(default=None, index=True)
    # The sample's design: the weighted (Hájek) estimate needs both.
    inclusion_probability: float | None = None
    stratum: str | None = None
    # Double review: drawn for a second, blind review; `stage` is None (one review),
    # "second" (waiting for it), "adjudication" (disagreement or dispute) or "done".
    needs_second: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    stage: str | None = None
    # The verdict that counts in triggers, and since when (None while still in review).
    final_violation: bool | None = None
    # Indexed: an evaluation reads the verdicts settled since its last one.
    settled_at: datetime | None = Field(default=None, index=True)
    disputed_by_id: int | None = Field(default=None, foreign_key="person.id")
    disputed_at: datetime | None = None
    dispute_reason: str | None = Field(default=None, sa_column=Column(Text))


class Review(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    review_item_id: int = Field(foreign_key="reviewitem.id", unique=True)
    reviewer_id: int = Field(foreign_key="person.id")
    violation: bool
    notes: str | None = Field(default=None, sa_column=Column(Text))
    submitted_at: datetime = Field(default_factory=utcnow, index=True)


class ReviewFinding(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("review_id", "criterion_key"),)
    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="review.id", index=True)
    criterion_key: str
    severity: Severity
    passed: bool
    note: str | None = None
    # Not applicable to this conversation: counts as no failure.
    not_applicable: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class ExtraReview(SQLModel, table=True):
    """A second (blind) review or an adjudication of an item; the first is a Review."""

    id: int | None = Field(default=None, primary_key=True)
    review_item_id: int = Field(foreign_key="reviewitem.id", index=True)
    reviewer_id: int = Field(foreign_key="person.id")
    purpose: str  # "second" or "adjudication"
    violation: bool
    # criterion key -> "pass", "fail" or "na"
    findings: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    notes: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    submitted_at: datetime = Field(default_factory=utcnow)


class ReviewSkip(SQLModel, table=True):
    """A reviewer passed an item over, with why; it is not offered to them again."""

    __table_args__ = (UniqueConstraint("review_item_id", "person_id"),)
    id: int | None = Field(default=None, primary_key=True)
    review_item_id: int = Field(foreign_key="reviewitem.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    skipped_at: datetime = Field(default_factory=utcnow)


class LoginLink(SQLModel, table=True):
    """A one-time sign-in link: only its hash is stored, so the table cannot be replayed."""

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(unique=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    expires_at: datetime
    used_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class PurgeConfirmation(SQLModel, table=True):
    """A one-time confirmation of a purge, issued to a second admin's web session (hash only)."""

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(unique=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    manifest_sha256: str
    expires_at: datetime
    used_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class WebSecret(SQLModel, table=True):
    """The store's signing key for sessions and links when AGENTOPS_WEB_SECRET is unset."""

    id: int = Field(default=1, primary_key=True)
    secret: str
    created_at: datetime = Field(default_factory=utcnow)


class TriggerSet(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agent_id", "content_sha256"),)
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    version: int
    content: str = Field(sa_column=Column(Text, nullable=False))
    content_sha256: str
    source: str
    loaded_at: datetime = Field(default_factory=utcnow)


class Evaluation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    agent_version_id: int = Field(foreign_key="agentversion.id", index=True)
    trigger_set_id: int = Field(foreign_key="triggerset.id")
    trigger_name: str
    kind: str
    outcome: Outcome
    statistic: float | None = None
    threshold: float | None = None
    evidence: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    evaluated_at: datetime = Field(default_factory=utcnow)


class Action(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    kind: ActionKind
    from_version_id: int = Field(foreign_key="agentversion.id")
    to_version_id: int = Field(foreign_key="agentversion.id")
    status: ActionStatus = Field(default=ActionStatus.proposed, index=True)
    evaluation_id: int | None = Field(default=None, foreign_key="evaluation.id")
    proposed_by: str
    # None when the system proposed it (a trigger breach): no person can then self-approve.
    proposed_by_id: int | None = Field(default=None, foreign_key="person.id")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    owner_deadline: datetime | None = None
    final_deadline: datetime | None = None
    escalated_at: datetime | None = None
    flow_run_id: str | None = None
    decided_at: datetime | None = None
    executed_at: datetime | None = None
    outcome_detail: str | None = Field(default=None, sa_column=Column(Text))
    # The same key on every retry lets the deployer recognise a repeated request.
    idempotency_key: str | None = None
    execution_started_at: datetime | None = None
    # Why execution was refused although the status claimed otherwise (e.g. a forged approval).
    flag: str | None = Field(default=None, sa_column=Column(Text))
    # What the deployer answered for the switch: a deployment id, or a GitOps commit and PR.
    deployment_ref: str | None = Field(default=None, sa_column=Column(Text))


class Approval(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action.id", unique=True)
    approver_id: int = Field(foreign_key="person.id")
    decision: Decision
    reason: str | None = Field(default=None, sa_column=Column(Text))
    channel: str
    decided_at: datetime = Field(default_factory=utcnow)


class TriggerChart(SQLModel, table=True):
    """A trigger's CUSUM bank on one version: its calibration and running state.

    Evaluations read only the rows after the cursor, so their cost does not grow with
    the version's history.
    """

    __table_args__ = (UniqueConstraint("agent_version_id", "trigger_set_id", "trigger_name"),)
    id: int | None = Field(default=None, primary_key=True)
    agent_version_id: int = Field(foreign_key="agentversion.id", index=True)
    trigger_set_id: int = Field(foreign_key="triggerset.id")
    trigger_name: str
    state: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The last observation read, in (time, id) order, and the highest id seen: a row
    # stored late with an earlier time is still read once.
    cursor_at: datetime | None = None
    cursor_id: int | None = None
    max_seen_id: int | None = None
    # A counted verdict was withdrawn (disputed): the next evaluation of a review trigger
    # replays the version's reviews from the start instead of reading on from the cursor.
    replay: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SlackOutbox(SQLModel, table=True):
    """An action event still to be told in Slack: sent, and retried, by `agentops serve`.

    Rows are copied from the audit trail, which every state change writes in its own
    transaction, so a Slack outage or a dead gate process delays a message, never loses it.
    """

    id: int | None = Field(default=None, primary_key=True)
    event_seq: int = Field(unique=True)
    action_id: int = Field(foreign_key="action.id", index=True)
    kind: str
    created_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = Field(default=None, index=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class SlackOutboxCursor(SQLModel, table=True):
    """The last audit event the outbox has looked at (one row, locked while collecting)."""

    id: int = Field(default=1, primary_key=True)
    seq: int = 0


class SlackMessage(SQLModel, table=True):
    """A Slack message posted about an action, kept so every later change can edit it."""

    __table_args__ = (UniqueConstraint("action_id", "purpose"),)
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action.id", index=True)
    # "request:owner", "request:backup", "request:channel", or "reply:<message id>".
    purpose: str
    channel: str
    ts: str
    thread_ts: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class PulledWindow(SQLModel, table=True):
    """A window of an agent's platform conversations that was pulled into the store.

    The scheduled pulls continue from the latest one's end (the watermark), so every minute
    is pulled once; the gaps between windows are what `agentops coverage` shows.
    """

    __table_args__ = (Index("ix_pulledwindow_agent_end", "agent_id", "source", "window_end"),)
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id")
    window_start: datetime
    window_end: datetime
    # "schedule" (the flow: it moves the watermark), "backfill" or "window" (one by hand).
    source: str
    imported: int = 0
    duplicates: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class Heartbeat(SQLModel, table=True):
    """When a recurring job last finished a round (the sweeps), for readiness checks."""

    name: str = Field(primary_key=True)
    at: datetime = Field(default_factory=utcnow)


class OtlpConversation(SQLModel, table=True):
    """A conversation arriving over OTLP: open while spans come in, closed when idle.

    Kept in the store, not in memory, so a server killed between batches loses nothing it
    acknowledged; a closed one that gets new spans is reopened and stored again whole.
    """

    __table_args__ = (
        UniqueConstraint("agent_id", "key"),
        # The closer's scan: open conversations idle the longest.
        Index("ix_otlpconversation_state_seen", "state", "last_seen_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id")
    key: str
    state: str = "open"  # open, closed, or failed (nothing generative to store)
    first_seen_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class OtlpTrace(SQLModel, table=True):
    """Which conversation a trace belongs to (its own id until a span names another)."""

    __table_args__ = (UniqueConstraint("agent_id", "trace_id"),)
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id")
    trace_id: str
    conversation_key: str = Field(index=True)


class OtlpItem(SQLModel, table=True):
    """One received span or log record, stored before it is acknowledged.

    The (agent_id, item_key) key makes an exporter's retry of a batch store nothing twice.
    """

    __table_args__ = (
        UniqueConstraint("agent_id", "item_key"),
        Index("ix_otlpitem_agent_trace", "agent_id", "trace_id", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id")
    trace_id: str
    item_key: str
    received_at: datetime = Field(default_factory=utcnow)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class LangfuseCursor(SQLModel, table=True):
    """Where the Langfuse pull of an agent stands, and the last review sent back as a score."""

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", unique=True)
    cursor: str | None = Field(default=None, sa_column=Column(Text))
    from_start_time: str | None = None
    pulled_at: datetime | None = None
    scores_through: int = 0


class CheckSet(SQLModel, table=True):
    """A registered check file: an agent's policy checks, versioned like trigger sets."""

    __table_args__ = (UniqueConstraint("agent_id", "content_sha256"),)
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    version: int
    content: str = Field(sa_column=Column(Text, nullable=False))
    content_sha256: str
    source: str
    loaded_at: datetime = Field(default_factory=utcnow)


class ConversationCheck(SQLModel, table=True):
    """One conversation's results under one check set: check name -> "pass", "na" or a flag."""

    __table_args__ = (
        UniqueConstraint("conversation_id", "check_set_id"),
        # A version's results under a check set: the counts and `checks run` read this.
        Index("ix_conversationcheck_version", "agent_version_id", "check_set_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    check_set_id: int = Field(foreign_key="checkset.id")
    agent_version_id: int = Field(foreign_key="agentversion.id")
    # A flag is {"turn", "tool", "quote"}; a pass is "pass" and not applicable "na".
    results: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    flagged: int = 0
