"""Register check files, store each conversation's results, and count them per version."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from agentops.agents.service import list_versions
from agentops.audit.chain import sha256_hex
from agentops.audit.service import add_and_record, record_event
from agentops.checks.certification import certify
from agentops.checks.config import (
    CheckSuite,
    flag_count,
    parse_check_text,
    results_json,
    suite_from_text,
)
from agentops.checks.conversation import Outcome
from agentops.errors import NotFoundError, RuleViolation
from agentops.store.models import (
    Agent,
    AgentVersion,
    CheckSet,
    Conversation,
    ConversationCheck,
    Review,
    ReviewFinding,
    ReviewItem,
    RubricCriterion,
)

# Conversations checked per batch when a new check file is run over stored history.
RERUN_BATCH = 500


def register_check_set(
    session: Session, *, agent: Agent, text: str, source: str, actor: str
) -> tuple[CheckSet, int]:
    """Store a check file (same content twice: the stored row) and check the agent's history.

    Returns the check set and how many stored conversations were checked under it now.
    """
    parsed = parse_check_text(text, source=source)
    if parsed.file.agent != agent.name:
        raise RuleViolation(
            f"{source} is written for agent {parsed.file.agent!r}, not {agent.name!r}"
        )
    digest = sha256_hex(text)
    existing = session.exec(
        select(CheckSet).where(CheckSet.agent_id == agent.id, CheckSet.content_sha256 == digest)
    ).first()
    if existing is not None:
        return existing, 0
    latest = latest_check_set(session, agent=agent)
    if latest is not None and parsed.file.version <= latest.version:
        raise RuleViolation(
            f"{source}: check file version {parsed.file.version} of {agent.name!r} is not newer "
            f"than the registered version {latest.version}; stored versions never change, so "
            f"bump `version:` to {latest.version + 1}"
        )
    check_set = CheckSet(
        agent_id=agent.id,  # type: ignore[arg-type]
        version=parsed.file.version,
        content=text,
        content_sha256=digest,
        source=source,
    )
    add_and_record(
        session,
        row=check_set,
        actor=actor,
        kind="checks.registered",
        entity_type="check_set",
        payload={
            "agent": agent.name,
            "version": parsed.file.version,
            "sha256": digest,
            "source": source,
            "checks": parsed.names,
        },
    )
    session.flush()
    checked = check_history(session, agent=agent, check_set=check_set)
    return check_set, checked


def latest_check_set(session: Session, *, agent: Agent) -> CheckSet | None:
    """The agent's highest-numbered check set, if any is registered."""
    return session.exec(
        select(CheckSet)
        .where(CheckSet.agent_id == agent.id)
        .order_by(col(CheckSet.version).desc(), col(CheckSet.id).desc())
    ).first()


def require_check_set(session: Session, *, agent: Agent) -> CheckSet:
    """The agent's current check set, or a NotFoundError saying how to register one."""
    found = latest_check_set(session, agent=agent)
    if found is None:
        raise NotFoundError(
            f"agent {agent.name!r} has no check file; register one with "
            "`agentops checks register FILE`"
        )
    return found


def load_suite(check_set: CheckSet) -> CheckSuite:
    """The runnable checks of a stored check set."""
    return suite_from_text(check_set.content, check_set.source)


def check_history(session: Session, *, agent: Agent, check_set: CheckSet) -> int:
    """Run a check set over the agent's stored conversations not yet checked under it."""
    suite = load_suite(check_set)
    done = select(ConversationCheck.conversation_id).where(
        ConversationCheck.check_set_id == check_set.id
    )
    after = 0
    checked = 0
    while True:
        batch = session.exec(
            select(Conversation.id, Conversation.agent_version_id, Conversation.transcript)
            .where(
                Conversation.agent_id == agent.id,
                col(Conversation.id) > after,
                col(Conversation.id).not_in(done),
            )
            .order_by(col(Conversation.id))
            .limit(RERUN_BATCH)
        ).all()
        if not batch:
            return checked
        rows = []
        for conversation_id, version_id, transcript in batch:
            stored = results_json(suite.run(list(transcript)))
            rows.append(result_row(conversation_id, check_set.id, version_id, stored))  # type: ignore[arg-type]
        store_results(session, rows)
        checked += len(rows)
        after = int(batch[-1][0])  # type: ignore[arg-type]


def result_row(
    conversation_id: int, check_set_id: int, version_id: int, stored: dict[str, Any]
) -> dict[str, Any]:
    """A ConversationCheck row as a mapping for a bulk insert."""
    return {
        "conversation_id": conversation_id,
        "check_set_id": check_set_id,
        "agent_version_id": version_id,
        "results": stored,
        "flagged": flag_count(stored),
    }


def store_results(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert result rows in one statement (executemany)."""
    if rows:
        session.execute(insert(ConversationCheck), list(rows))


@dataclass
class CheckCount:
    """One check on one version: conversations it applied to and flagged."""

    name: str
    checked: int = 0
    flagged: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "checked": self.checked, "flagged": self.flagged}


def version_results(
    session: Session, *, check_set: CheckSet, versions: Iterable[AgentVersion]
) -> list[tuple[int, str, dict[str, Any]]]:
    """(conversation id, external id, stored results) of the versions' checked conversations."""
    ids = [version.id for version in versions]
    return [
        (int(conversation_id), external_id, dict(results))  # type: ignore[arg-type]
        for conversation_id, external_id, results in session.exec(
            select(Conversation.id, Conversation.external_id, ConversationCheck.results)
            .join(ConversationCheck, col(ConversationCheck.conversation_id) == Conversation.id)
            .where(
                ConversationCheck.check_set_id == check_set.id,
                col(ConversationCheck.agent_version_id).in_(ids),
            )
            .order_by(col(Conversation.id))
        ).all()
    ]


def count_results(names: list[str], rows: Iterable[dict[str, Any]]) -> list[CheckCount]:
    """Checked (applicable) and flagged counts per check, in file order."""
    counts = {name: CheckCount(name) for name in names}
    for results in rows:
        for name, value in results.items():
            count = counts.get(name)
            if count is None or value == Outcome.not_applicable.value:
                continue
            count.checked += 1
            count.flagged += isinstance(value, dict)
    return list(counts.values())


def run_report(session: Session, *, agent: Agent, versions: list[AgentVersion]) -> dict[str, Any]:
    """`checks run`: counts per check and every flagged conversation with its evidence."""
    check_set = require_check_set(session, agent=agent)
    names = load_suite(check_set).names
    rows = version_results(session, check_set=check_set, versions=versions)
    conversations = []
    for _, external_id, results in rows:
        flags = [
            {"check": name, "turn": value["turn"], "tool": value.get("tool"),
             "evidence": value["quote"]}
            for name, value in results.items()
            if isinstance(value, dict)
        ]  # fmt: skip
        if flags:
            conversations.append({"id": external_id, "flags": flags})
    return {
        "agent": agent.name,
        "check_file_version": check_set.version,
        "versions": [version.version for version in versions],
        "checks": [count.to_json() for count in count_results(names, (r for *_, r in rows))],
        "conversations": conversations,
    }


def status_report(session: Session, *, agent: Agent) -> dict[str, Any]:
    """`checks status`: per version and check, counts, reviews, TPR/TNR bounds, certified."""
    check_set = require_check_set(session, agent=agent)
    suite = load_suite(check_set)
    mapped = criteria_by_check(session)
    versions = []
    for version in list_versions(session, agent=agent):
        rows = version_results(session, check_set=check_set, versions=[version])
        if not rows:
            continue
        reviewed = _reviewed(session, version=version)
        by_criterion = _criterion_truth(session, version=version, checks=mapped)
        checks = []
        for count in count_results(suite.names, (r for *_, r in rows)):
            # A check a rubric criterion names is judged by that criterion's findings.
            truth = by_criterion.get(count.name)
            pairs = [
                (
                    isinstance(results.get(count.name), dict),
                    truth[conversation_id] if truth is not None else reviewed[conversation_id][0],
                    reviewed[conversation_id][1],
                )
                for conversation_id, _, results in rows
                if conversation_id in reviewed
                and results.get(count.name, "na") != "na"
                and (truth is None or conversation_id in truth)
            ]
            minimum = suite.file.minimum_for(count.name)
            found = certify(pairs, minimum_tpr=minimum.tpr, minimum_tnr=minimum.tnr)
            checks.append(
                {
                    **count.to_json(),
                    "reviewed": len(pairs),
                    "tpr": found.tpr.to_json(),
                    "tnr": found.tnr.to_json(),
                    "minimum": {"tpr": minimum.tpr, "tnr": minimum.tnr},
                    "criteria": sorted(mapped.get(count.name, ())),
                    "certified": found.certified,
                }
            )
        versions.append(
            {
                "version": version.version,
                "conversations": len(rows),
                "checks": checks,
                "estimate": violation_estimate(rows, reviewed),
            }
        )
    return {"agent": agent.name, "check_file_version": check_set.version, "versions": versions}


def _reviewed(session: Session, *, version: AgentVersion) -> dict[int, tuple[bool, float]]:
    """conversation id -> (the settled verdict, its inverse-probability weight)."""
    found: dict[int, tuple[bool, float]] = {}
    for conversation_id, violation, probability in session.exec(
        select(
            ReviewItem.conversation_id, ReviewItem.final_violation, ReviewItem.inclusion_probability
        )
        .join(Conversation, col(Conversation.id) == ReviewItem.conversation_id)
        .where(
            Conversation.agent_version_id == version.id,
            col(ReviewItem.final_violation).is_not(None),
        )
    ):
        weight = 1.0 / probability if probability else 1.0
        found[conversation_id] = (bool(violation), weight)
    return found


def conversation_flags(session: Session, *, conversation: Conversation) -> list[dict[str, Any]]:
    """The flags the agent's current checks raised on a conversation, with their evidence."""
    agent = session.get(Agent, conversation.agent_id)
    check_set = latest_check_set(session, agent=agent) if agent is not None else None
    if check_set is None:
        return []
    stored = session.exec(
        select(ConversationCheck.results).where(
            ConversationCheck.conversation_id == conversation.id,
            ConversationCheck.check_set_id == check_set.id,
        )
    ).first()
    return [
        {"check": name, **value}
        for name, value in (stored or {}).items()
        if isinstance(value, dict)
    ]


def answer_flags(
    session: Session, *, item_id: int, conversation: Conversation, agreed: bool, actor: str
) -> None:
    """Record a reviewer confirming (agreed) or disputing the flags, after their verdict."""
    flags = conversation_flags(session, conversation=conversation)
    record_event(
        session,
        actor=actor,
        kind="checks.flags_confirmed" if agreed else "checks.flags_disputed",
        entity_type="review_item",
        entity_id=item_id,
        payload={
            "conversation": conversation.external_id,
            "checks": [flag["check"] for flag in flags],
            "agreed": agreed,
        },
    )


def violation_estimate(
    rows: list[tuple[int, str, dict[str, Any]]], reviewed: dict[int, tuple[bool, float]]
) -> dict[str, Any] | None:
    """PPI++ violation rate: reviewed verdicts plus "any check flagged" on every conversation.

    Reviews are weighted by 1/inclusion probability (the sample is stratified by flags).
    None with fewer than two reviews.
    """
    from agentops.checks.estimate import ppi_mean

    flagged_all = [flag_count(results) > 0 for _, _, results in rows]
    labelled = [
        (reviewed[conversation_id], flag_count(results) > 0)
        for conversation_id, _, results in rows
        if conversation_id in reviewed
    ]
    if len(labelled) < 2 or len(flagged_all) < 2:
        return None
    found = ppi_mean(
        [violation for (violation, _), _ in labelled],
        [flagged for _, flagged in labelled],
        flagged_all,
        weights=[weight for (_, weight), _ in labelled],
    )
    return {
        "estimate": found.estimate,
        "lower": max(0.0, found.lower),
        "upper": min(1.0, found.upper),
        "lambda": found.lam,
        "reviewed": found.reviewed,
        "conversations": found.flagged_population,
    }


def criteria_by_check(session: Session) -> dict[str, set[str]]:
    """Check name -> the rubric criterion keys that name it."""
    found: dict[str, set[str]] = {}
    for key, checks in session.exec(
        select(RubricCriterion.key, RubricCriterion.checks).where(
            col(RubricCriterion.checks).is_not(None)
        )
    ):
        for name in checks or []:
            found.setdefault(name, set()).add(key)
    return found


def _criterion_truth(
    session: Session, *, version: AgentVersion, checks: dict[str, set[str]]
) -> dict[str, dict[int, bool]]:
    """Per mapped check: conversation id -> whether its criteria failed (N/A: left out)."""
    if not checks:
        return {}
    findings: dict[int, dict[str, bool | None]] = {}
    for conversation_id, key, passed, not_applicable in session.exec(
        select(
            ReviewItem.conversation_id,
            ReviewFinding.criterion_key,
            ReviewFinding.passed,
            ReviewFinding.not_applicable,
        )
        .join(Review, col(Review.review_item_id) == ReviewItem.id)
        .join(ReviewFinding, col(ReviewFinding.review_id) == Review.id)
        .join(Conversation, col(Conversation.id) == ReviewItem.conversation_id)
        .where(
            Conversation.agent_version_id == version.id,
            col(ReviewItem.final_violation).is_not(None),
        )
    ):
        findings.setdefault(conversation_id, {})[key] = None if not_applicable else not passed
    truth: dict[str, dict[int, bool]] = {}
    for name, keys in checks.items():
        per_check = truth.setdefault(name, {})
        for conversation_id, judged in findings.items():
            relevant = [judged[key] for key in keys if judged.get(key) is not None]
            if relevant:
                per_check[conversation_id] = any(relevant)
    return truth
