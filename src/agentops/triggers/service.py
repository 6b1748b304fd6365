"""Store versioned trigger sets and record each evaluation of an agent version."""

import functools
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from agentops.agents.service import mark_known_good, require_own_version
from agentops.audit.chain import canonical_sha256, sha256_hex
from agentops.audit.service import add_and_record
from agentops.errors import AgentOpsError, NotFoundError, RuleViolation
from agentops.store.models import (
    Action,
    Agent,
    AgentVersion,
    Evaluation,
    Outcome,
    TriggerChart,
    TriggerSet,
    VersionStatus,
    utcnow,
)
from agentops.triggers import dispersion, observations
from agentops.triggers.acknowledge import acknowledge_false_alarm, is_false_alarm
from agentops.triggers.config import AnyTrigger, TriggerFile, parse_trigger_text
from agentops.triggers.cusum import (
    BankDesign,
    design_bank,
    design_measured_bank,
    estimated_healthy_rate,
    rate_upper_bound,
)
from agentops.triggers.evaluate import (
    Healthy,
    Observation,
    TriggerResult,
    TriggerState,
    verdict,
)
from agentops.triggers.observations import (
    NO_CURSOR,
    ConversationFacts,
    Cursor,
    conversation_observations,
    new_conversations,
    new_reviews,
)

__all__ = [
    "EvaluationReport",
    "acknowledge_false_alarm",
    "evaluate_version",
    "is_false_alarm",
    "register_trigger_set",
]


@dataclass
class EvaluationReport:
    """Every trigger's stored verdict for one agent version."""

    evaluations: list[Evaluation]
    marked_known_good: bool = False
    proposed_action: Action | None = None
    not_proposed_reason: str | None = None

    @property
    def breached(self) -> list[Evaluation]:
        """The evaluations whose trigger fired."""
        return [e for e in self.evaluations if e.outcome == Outcome.breach]

    @property
    def all_ok(self) -> bool:
        """True when every trigger had enough data and none fired."""
        return bool(self.evaluations) and all(e.outcome == Outcome.ok for e in self.evaluations)


def register_trigger_set(
    session: Session, *, agent: Agent, text: str, source: str, actor: str
) -> TriggerSet:
    """Validate and store a trigger file; the same content twice returns the stored row."""
    parsed = parse_trigger_text(text, source=source)
    if parsed.agent != agent.name:
        raise RuleViolation(f"{source} is written for agent {parsed.agent!r}, not {agent.name!r}")
    # The exact text, comments included: a stored trigger set is the file as written.
    digest = sha256_hex(text)
    existing = session.exec(
        select(TriggerSet).where(
            TriggerSet.agent_id == agent.id, TriggerSet.content_sha256 == digest
        )
    ).first()
    if existing is not None:
        return existing
    latest = latest_trigger_set(session, agent=agent)
    if latest is not None and parsed.version <= latest.version:
        clash = _find_trigger_set(session, agent=agent, version=parsed.version)
        if clash is not None:
            raise RuleViolation(
                f"{source}: trigger set version {parsed.version} of {agent.name!r} is already "
                f"registered with different content (from {clash.source}); stored versions "
                f"never change, so bump `version:` to {latest.version + 1}"
            )
        raise RuleViolation(
            f"{source}: version {parsed.version} is older than the registered version "
            f"{latest.version} of {agent.name!r}; bump `version:` to {latest.version + 1}"
        )
    trigger_set = TriggerSet(
        agent_id=agent.id,  # type: ignore[arg-type]
        version=parsed.version,
        content=text,
        content_sha256=digest,
        source=source,
    )
    add_and_record(
        session,
        row=trigger_set,
        actor=actor,
        kind="triggers.registered",
        entity_type="trigger_set",
        payload={
            "agent": agent.name,
            "version": parsed.version,
            "sha256": digest,
            "source": source,
            "triggers": [{"name": t.name, "kind": t.kind} for t in parsed.triggers],
        },
    )
    return trigger_set


def latest_trigger_set(session: Session, *, agent: Agent) -> TriggerSet | None:
    """The agent's highest-numbered trigger set, if any is registered."""
    return session.exec(
        select(TriggerSet)
        .where(TriggerSet.agent_id == agent.id)
        .order_by(col(TriggerSet.version).desc(), col(TriggerSet.id).desc())
    ).first()


def get_trigger_set(session: Session, *, agent: Agent, version: int) -> TriggerSet:
    """One stored version of the agent's trigger set."""
    found = _find_trigger_set(session, agent=agent, version=version)
    if found is None:
        raise NotFoundError(f"agent {agent.name!r} has no trigger set version {version}")
    return found


def _find_trigger_set(session: Session, *, agent: Agent, version: int) -> TriggerSet | None:
    return session.exec(
        select(TriggerSet).where(TriggerSet.agent_id == agent.id, TriggerSet.version == version)
    ).first()


def load_trigger_set(trigger_set: TriggerSet) -> TriggerFile:
    """The validated triggers of a stored trigger set."""
    return _parsed(trigger_set.content, trigger_set.source)


@functools.lru_cache(maxsize=64)
def _parsed(content: str, source: str) -> TriggerFile:
    # A stored trigger set never changes and TriggerFile is frozen: parse each one once
    # per process instead of on every evaluation.
    return parse_trigger_text(content, source=source)


def evaluate_version(
    session: Session,
    *,
    agent: Agent,
    version: AgentVersion,
    trigger_set: TriggerSet,
    actor: str,
    as_of: datetime | None = None,
) -> EvaluationReport:
    """Feed each trigger's charts what is new up to as_of (default now) and store verdicts."""
    require_own_version(agent, version)
    if trigger_set.agent_id != agent.id:
        raise RuleViolation(
            f"trigger set version {trigger_set.version} does not belong to agent {agent.name!r}"
        )
    triggers = load_trigger_set(trigger_set)
    # Windows and cursors end at the evaluation time: a conversation dated in the future
    # waits for its time instead of pulling the charts past real traffic.
    as_of = as_of or utcnow()
    backlog = review_backlog(session, version=version, now=as_of)
    # The conversation triggers usually share a cursor: read what is new for them once.
    reads: dict[Cursor, tuple[list[ConversationFacts], Cursor]] = {}
    results = []
    for trigger in triggers.triggers:
        result = _evaluate_trigger(
            session,
            triggers=triggers,
            trigger=trigger,
            agent=agent,
            version=version,
            trigger_set=trigger_set,
            as_of=as_of,
            reads=reads,
        )
        if trigger.unit == "reviews" and backlog["unsettled"]:
            # Said out loud: this verdict was reached without part of the sample.
            result.evidence["review_backlog"] = backlog
        results.append(result)
    report = EvaluationReport(
        evaluations=[
            _store_evaluation(
                session,
                agent=agent,
                version=version,
                trigger_set=trigger_set,
                result=result,
                actor=actor,
            )
            for result in results
        ]
    )
    if report.all_ok and version.status == VersionStatus.live:
        report.marked_known_good = mark_known_good(
            session, agent=agent, version=version, actor=actor
        )
    return report


def _evaluate_trigger(
    session: Session,
    *,
    triggers: TriggerFile,
    trigger: AnyTrigger,
    agent: Agent,
    version: AgentVersion,
    trigger_set: TriggerSet,
    as_of: datetime,
    reads: dict[Cursor, tuple[list[ConversationFacts], Cursor]],
) -> TriggerResult:
    chart = _locked_chart(session, version=version, trigger_set=trigger_set, name=trigger.name)
    if chart is None:
        try:
            state = start_state(
                session,
                triggers=triggers,
                trigger=trigger,
                agent=agent,
                version=version,
                before=as_of,
            )
        except HealthyRateUnknown as exc:
            return TriggerResult(
                trigger.name,
                trigger.kind,
                "insufficient_data",
                None,
                None,
                {"summary": str(exc), "test": "bernoulli_cusum_bank", "unit": trigger.unit},
            )
        chart = _create_chart(
            session, version=version, trigger_set=trigger_set, name=trigger.name, state=state
        )
    state = TriggerState.from_json(chart.state)
    # A withdrawn verdict (a dispute) changes the past: replay the reviews from the start.
    replay = chart.replay and trigger.unit == "reviews"
    cursor = NO_CURSOR if replay else (chart.cursor_at, chart.cursor_id, chart.max_seen_id)
    new, cursor = _read(
        session, trigger=trigger, version=version, as_of=as_of, cursor=cursor, reads=reads
    )
    if replay:
        state.replay(new)
    else:
        state.feed(new)
    chart.cursor_at, chart.cursor_id, chart.max_seen_id = cursor
    chart.state = state.to_json()
    chart.replay = False
    chart.updated_at = utcnow()
    session.add(chart)
    session.flush()
    return verdict(
        trigger,
        state,
        needed=needed_to_clear(state, trigger),
        unit=trigger.unit,
        per_day=triggers.per_day(trigger),
    )


def _read(
    session: Session,
    *,
    trigger: AnyTrigger,
    version: AgentVersion,
    as_of: datetime,
    cursor: Cursor,
    reads: dict[Cursor, tuple[list[ConversationFacts], Cursor]],
) -> tuple[list[Observation], Cursor]:
    """New observations for the trigger; conversations read once per cursor and evaluation."""
    if trigger.unit == "reviews":
        return new_reviews(session, version_id=version.id, as_of=as_of, cursor=cursor)  # type: ignore[arg-type]
    if cursor not in reads:
        reads[cursor] = new_conversations(
            session,
            version_id=version.id,  # type: ignore[arg-type]
            as_of=as_of,
            cursor=cursor,
        )
    rows, advanced = reads[cursor]
    return conversation_observations(trigger, rows), advanced


def needed_to_clear(state: TriggerState, trigger: AnyTrigger) -> int:
    """Observations after which a quiet bank clears the version.

    By then a degradation at the top of the range would, on average, have been noticed.
    """
    bank = BankDesign(
        state.healthy["rate"],
        state.healthy["calibrated_rate"],
        state.target,
        tuple(state.chart_designs()),
    )
    return math.ceil(bank.delay_bound(trigger.degraded_high))


class HealthyRateUnknown(AgentOpsError):
    """The healthy rate is to be measured, but there is not enough data to measure it."""


def start_state(
    session: Session,
    *,
    triggers: TriggerFile,
    trigger: AnyTrigger,
    agent: Agent,
    version: AgentVersion,
    before: datetime,
) -> TriggerState:
    """Calibrate a fresh bank for the trigger on this version."""
    target = triggers.observations(trigger)
    try:
        if trigger.healthy_rate is not None:
            healthy = Healthy(trigger.healthy_rate, trigger.healthy_rate, "stated")
            bank = design_bank(
                healthy_rate=trigger.healthy_rate,
                degraded_low=trigger.degraded_low,
                degraded_high=trigger.degraded_high,
                target=target,
            )
        else:
            healthy = measured_healthy(
                session, trigger=trigger, agent=agent, version=version, before=before
            )
            assert healthy.successes is not None and healthy.n is not None
            bank = design_measured_bank(
                successes=healthy.successes,
                n=healthy.n,
                guarantee=trigger.guarantee,
                degraded_low=trigger.degraded_low,
                degraded_high=trigger.degraded_high,
                target=target,
            )
    except ValueError as exc:
        raise HealthyRateUnknown(f"cannot calibrate {trigger.name}: {exc}") from exc
    state = TriggerState.start(bank, healthy)
    state.dependence = measured_dependence(
        session, trigger=trigger, agent=agent, version=version, before=before
    )
    return state


def measured_dependence(
    session: Session,
    *,
    trigger: AnyTrigger,
    agent: Agent,
    version: AgentVersion,
    before: datetime,
) -> dict[str, Any]:
    """Hour-to-hour and day-to-day dispersion of the rate on the last known-good version."""
    source = last_known_good(session, agent=agent, version=version, before=before)
    if source is None:
        return {"source": None, "warning": "no known-good baseline: dependence not measured"}
    baseline, _ = new_observations(
        session, trigger=trigger, version=source, as_of=before, cursor=NO_CURSOR
    )
    measured = dispersion.measure(baseline)
    result: dict[str, Any] = {
        "source": f"last known good {source.version}",
        **{period: found.to_json() for period, found in measured.items()},
    }
    if measured["day"].too_short:
        result["warning"] = (
            f"the baseline spans {measured['day'].periods} day(s): too short to measure "
            f"day-to-day variation (needs {dispersion.MIN_PERIODS}); the promised interval "
            "assumes independent draws"
        )
    return result


def last_known_good(
    session: Session, *, agent: Agent, version: AgentVersion, before: datetime
) -> AgentVersion | None:
    """The agent's most recent other version marked known-good by `before`."""
    return session.exec(
        select(AgentVersion)
        .where(
            AgentVersion.agent_id == agent.id,
            AgentVersion.id != version.id,
            col(AgentVersion.known_good_at).is_not(None),
            col(AgentVersion.known_good_at) <= before,
        )
        .order_by(col(AgentVersion.known_good_at).desc(), col(AgentVersion.id).desc())
    ).first()


def measured_healthy(
    session: Session,
    *,
    trigger: AnyTrigger,
    agent: Agent,
    version: AgentVersion,
    before: datetime,
) -> Healthy:
    """The healthy rate counted on the last known-good version, with its upper bound."""
    source = last_known_good(session, agent=agent, version=version, before=before)
    if source is None:
        raise HealthyRateUnknown(
            f"{trigger.name} measures its healthy rate on the last known-good version, "
            f"and {agent.name} has none other than {version.version}"
        )
    observations, _ = new_observations(
        session, trigger=trigger, version=source, as_of=before, cursor=NO_CURSOR
    )
    n = len(observations)
    if n < trigger.min_healthy_samples:
        raise HealthyRateUnknown(
            f"{trigger.name}: only {n} {trigger.unit} on last known-good {source.version}; "
            f"measuring the healthy rate needs {trigger.min_healthy_samples}"
        )
    successes = sum(observation.event for observation in observations)
    return Healthy(
        rate=estimated_healthy_rate(successes, n),
        calibrated_rate=rate_upper_bound(successes, n, confidence=trigger.guarantee),
        source=f"last known good {source.version}",
        successes=successes,
        n=n,
        guarantee=trigger.guarantee,
    )


def _locked_chart(
    session: Session, *, version: AgentVersion, trigger_set: TriggerSet, name: str
) -> TriggerChart | None:
    """The chart row, locked until commit: concurrent evaluations take turns, each reading
    on from where the last one stopped (SQLite has one writer at a time anyway)."""
    return session.exec(
        select(TriggerChart)
        .where(
            TriggerChart.agent_version_id == version.id,
            TriggerChart.trigger_set_id == trigger_set.id,
            TriggerChart.trigger_name == name,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _create_chart(
    session: Session,
    *,
    version: AgentVersion,
    trigger_set: TriggerSet,
    name: str,
    state: TriggerState,
) -> TriggerChart:
    """Insert the fresh chart unless another evaluation just did; return the stored one."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    session.execute(
        insert(TriggerChart)
        .values(
            agent_version_id=version.id,
            trigger_set_id=trigger_set.id,
            trigger_name=name,
            state=state.to_json(),
            replay=False,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=["agent_version_id", "trigger_set_id", "trigger_name"]
        )
    )
    chart = _locked_chart(session, version=version, trigger_set=trigger_set, name=name)
    assert chart is not None  # inserted here or by the evaluation that won
    return chart


def new_observations(
    session: Session,
    *,
    trigger: AnyTrigger,
    version: AgentVersion,
    as_of: datetime,
    cursor: Cursor,
) -> tuple[list[Observation], Cursor]:
    """The version's observations after the cursor and up to as_of, in time order."""
    return observations.new_observations(
        session,
        trigger=trigger,
        version_id=version.id,  # type: ignore[arg-type]
        as_of=as_of,
        cursor=cursor,
    )


def settled_reviews(
    session: Session, *, version: AgentVersion, as_of: datetime | None = None
) -> list[Observation]:
    """Every review observation the version's triggers count, from the start."""
    return observations.settled_reviews(
        session,
        version_id=version.id,  # type: ignore[arg-type]
        as_of=as_of or utcnow(),
    )


def review_backlog(session: Session, *, version: AgentVersion, now: datetime) -> dict[str, Any]:
    """The version's sampled items without a settled verdict: how many, how many overdue."""
    return observations.review_backlog(session, version_id=version.id, now=now)  # type: ignore[arg-type]


def _store_evaluation(
    session: Session,
    *,
    agent: Agent,
    version: AgentVersion,
    trigger_set: TriggerSet,
    result: TriggerResult,
    actor: str,
) -> Evaluation:
    evaluation = Evaluation(
        agent_version_id=version.id,  # type: ignore[arg-type]
        trigger_set_id=trigger_set.id,  # type: ignore[arg-type]
        trigger_name=result.name,
        kind=result.kind,
        outcome=Outcome(result.outcome),
        statistic=result.statistic,
        threshold=result.threshold,
        evidence=result.evidence,
    )
    add_and_record(
        session,
        row=evaluation,
        actor=actor,
        kind="evaluation.recorded",
        entity_type="evaluation",
        payload={
            "agent": agent.name,
            "version": version.version,
            "trigger_set_version": trigger_set.version,
            "trigger": result.name,
            "kind": result.kind,
            "outcome": result.outcome,
            "statistic": result.statistic,
            "threshold": result.threshold,
            "summary": result.evidence.get("summary"),
            # The evidence row is not chained itself; its digest here makes edits visible.
            "evidence_sha256": canonical_sha256(result.evidence),
        },
    )
    return evaluation
