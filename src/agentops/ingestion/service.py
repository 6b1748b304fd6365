"""Import validated conversations into the store, skipping duplicates and reporting rejects."""

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlmodel import Session, col, select

from agentops.agents.names import NAME_PATTERN
from agentops.agents.service import ensure_version, require_own_version
from agentops.audit.service import record_event
from agentops.errors import RuleViolation
from agentops.ingestion.files import LabelledRecord
from agentops.ingestion.transcripts import (
    DEFAULT_ESCALATION_TOOLS,
    ConversationRecord,
    RecordError,
    parse_record,
)
from agentops.store.models import Agent, AgentVersion, Conversation, utcnow

CHUNK_SIZE = 500
DEFAULT_FUTURE_SKEW = timedelta(minutes=5)
REJECTIONS_IN_AUDIT = 20


@dataclass(frozen=True)
class Rejection:
    """A record that was not imported, with where it came from and why."""

    label: str
    reason: str

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


@dataclass
class ImportReport:
    """What one or more imports did: counts, versions touched and every rejection."""

    imported: int = 0
    escalated: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)

    @property
    def seen(self) -> int:
        """Records read in total, whatever became of them."""
        return self.imported + self.duplicates + len(self.rejected)

    def __add__(self, other: "ImportReport") -> "ImportReport":
        """A new report adding this one and another (e.g. one per file or page)."""
        return ImportReport(
            imported=self.imported + other.imported,
            escalated=self.escalated + other.escalated,
            duplicates=self.duplicates + other.duplicates,
            rejected=[*self.rejected, *other.rejected],
            versions=self.versions + other.versions,
        )

    def summary(self) -> str:
        """One line for people, e.g. 'imported 98 (12 escalated), 1 duplicate, 2 rejected'."""
        parts = [f"imported {self.imported} ({self.escalated} escalated)"]
        parts.append(f"{self.duplicates} duplicate{'' if self.duplicates == 1 else 's'} skipped")
        parts.append(f"{len(self.rejected)} rejected")
        if self.versions:
            parts.append(
                "versions " + ", ".join(f"{v}: {n}" for v, n in sorted(self.versions.items()))
            )
        return ", ".join(parts)

    def as_dict(self, *, rejection_limit: int | None = None) -> dict[str, Any]:
        """JSON-ready counts, with the first rejection_limit rejections (all when None)."""
        shown = self.rejected if rejection_limit is None else self.rejected[:rejection_limit]
        return {
            "imported": self.imported,
            "escalated": self.escalated,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "versions": dict(sorted(self.versions.items())),
            "rejections": [{"label": r.label, "reason": r.reason} for r in shown],
        }


def import_conversations(
    session: Session,
    *,
    agent: Agent,
    version: AgentVersion | None,
    records: Iterable[LabelledRecord],
    actor: str,
    default_started_at: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    source: str | None = None,
    escalation_tools: frozenset[str] = DEFAULT_ESCALATION_TOOLS,
    max_future_skew: timedelta = DEFAULT_FUTURE_SKEW,
    now: datetime | None = None,
) -> ImportReport:
    """Store good records for the agent, skip known ones, report bad ones; audit once.

    A given `version` applies to every record, and a record naming another version is
    rejected; without one, each record's own `agent_version` is used (registered as a
    candidate if new). A record dated more than `max_future_skew` after `now` is rejected:
    one such date would otherwise move every time window past all real traffic. After each
    chunk, `progress` is called with the total number of records handled so far.
    """
    if version is not None:
        require_own_version(agent, version)
    if default_started_at is not None and default_started_at.tzinfo is None:
        raise RuleViolation("default_started_at must be timezone-aware")
    now = now or utcnow()
    importer = _Importer(
        session,
        agent=agent,
        version=version,
        actor=actor,
        started_at=default_started_at or now,
        escalation_tools=escalation_tools,
        latest_allowed=now + max_future_skew,
    )
    handled = 0
    for chunk in _chunks(records, CHUNK_SIZE):
        importer.import_chunk(chunk)
        handled += len(chunk)
        if progress is not None:
            progress(handled)
    report = importer.report
    payload = {"agent": agent.name, **report.as_dict(rejection_limit=REJECTIONS_IN_AUDIT)}
    if source:
        payload["source"] = source
    record_event(
        session,
        actor=actor,
        kind="conversations.imported",
        entity_type="agent",
        entity_id=agent.id,
        payload=payload,
    )
    return report


def records_from_platform(items: Iterable[dict[str, Any]]) -> Iterator[tuple[str, object]]:
    """Label platform API items 'item <id>' (or 'item <n>' when an item has no usable id)."""
    for number, item in enumerate(items, start=1):
        item_id = item.get("id") if isinstance(item, dict) else None
        has_id = isinstance(item_id, str | int) and not isinstance(item_id, bool)
        yield (f"item {item_id}" if has_id else f"item {number}"), item


class _Importer:
    """State carried across chunks of one import call."""

    def __init__(
        self,
        session: Session,
        *,
        agent: Agent,
        version: AgentVersion | None,
        actor: str,
        started_at: datetime,
        escalation_tools: frozenset[str],
        latest_allowed: datetime,
    ) -> None:
        self.session = session
        self.agent = agent
        self.version = version
        self.actor = actor
        self.started_at = started_at
        self.escalation_tools = escalation_tools
        self.latest_allowed = latest_allowed
        self.report = ImportReport()
        self.seen_ids: set[str] = set()
        self.versions: dict[str, AgentVersion] = {}

    def import_chunk(self, chunk: list[LabelledRecord]) -> None:
        """Store the chunk's new, valid records and count the rest."""
        parsed = [item for item in (self._parse(label, raw) for label, raw in chunk) if item]
        stored = self._stored_ids([record.external_id for _, record in parsed])
        added: list[Conversation] = []
        for label, record in parsed:
            if record.external_id in stored or record.external_id in self.seen_ids:
                self.report.duplicates += 1
                continue
            version = self._version_for(record)
            if version is None:
                self.report.rejected.append(
                    Rejection(
                        label,
                        "no agent version: give one for the import "
                        "or an 'agent_version' in the record",
                    )
                )
                continue
            self.seen_ids.add(record.external_id)
            added.append(self._conversation(record, version))
            self.report.imported += 1
            self.report.escalated += record.escalated
            self.report.versions[version.version] += 1
        self.session.add_all(added)
        self.session.flush()
        # Flushed rows stay in the transaction; dropping them from the session keeps a
        # large import's memory flat instead of holding every transcript until commit.
        for conversation in added:
            self.session.expunge(conversation)

    def _parse(self, label: str, raw: object) -> tuple[str, ConversationRecord] | None:
        try:
            if isinstance(raw, RecordError):
                raise raw
            record = parse_record(raw, escalation_tools=self.escalation_tools)
            self._check_against_import(record)
            return label, record
        except RecordError as exc:
            self.report.rejected.append(Rejection(label, exc.reason))
            return None

    def _check_against_import(self, record: ConversationRecord) -> None:
        named = record.agent_version
        if named is not None and not NAME_PATTERN.fullmatch(named):
            raise RecordError(f"agent_version {named[:80]!r} is not a plain version label")
        if self.version is not None and named is not None and named != self.version.version:
            raise RecordError(
                f"agent_version {named!r} disagrees with the import's version "
                f"{self.version.version!r}; import it separately with its own version"
            )
        if record.started_at is not None and record.started_at > self.latest_allowed:
            raise RecordError(
                f"started_at {record.started_at.isoformat()} is in the future "
                f"(more than the allowed clock skew past {self.latest_allowed.isoformat()})"
            )

    def _stored_ids(self, external_ids: list[str]) -> set[str]:
        if not external_ids:
            return set()
        found = self.session.exec(
            select(Conversation.external_id).where(
                Conversation.agent_id == self.agent.id,
                col(Conversation.external_id).in_(external_ids),
            )
        )
        return set(found)

    def _version_for(self, record: ConversationRecord) -> AgentVersion | None:
        if self.version is not None:
            return self.version
        name = record.agent_version
        if name is None:
            return None
        if name not in self.versions:
            self.versions[name] = ensure_version(
                self.session, agent=self.agent, version=name, actor=self.actor
            )
        return self.versions[name]

    def _conversation(self, record: ConversationRecord, version: AgentVersion) -> Conversation:
        return Conversation(
            agent_id=self.agent.id,  # type: ignore[arg-type]
            agent_version_id=version.id,  # type: ignore[arg-type]
            external_id=record.external_id,
            started_at=record.started_at or self.started_at,
            channel=record.channel,
            intent=record.intent,
            transcript=record.messages,
            escalated=record.escalated,
            contained=record.contained,
            sentiment=record.sentiment,
            latency_ms=record.latency_ms,
            task_success=record.task_success,
        )


def _chunks(records: Iterable[LabelledRecord], size: int) -> Iterator[list[LabelledRecord]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk
