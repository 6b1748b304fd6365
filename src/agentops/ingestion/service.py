"""Import validated conversations into the store in bulk, skipping duplicates and reporting rejects.

Parsing and validating overlap with writing: a writer thread stores each chunk while the
next is parsed, in this thread or, for a big JSON Lines file, in worker processes (see
ingestion.parallel). Each chunk is committed with its own audit event, so an import of
any size needs little more disk than the rows themselves, and re-running an interrupted
import stores only what is missing: the (agent_id, external_id) key skips the rest,
which are counted as duplicates.
"""

import queue
import sys
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from agentops.agents.service import ensure_version, require_own_version
from agentops.audit.service import record_event
from agentops.checks.service import latest_check_set, result_row, store_results
from agentops.errors import AgentOpsError, RuleViolation
from agentops.ingestion import parallel
from agentops.ingestion.bulk import ConversationInserter, bind_value
from agentops.ingestion.files import JsonRecords, LabelledRecord
from agentops.ingestion.rows import ESCALATED, Chunk, Rejection, RowBuilder, RowSettings
from agentops.ingestion.transcripts import DEFAULT_ESCALATION_TOOLS
from agentops.store.models import Agent, AgentVersion, Conversation, utcnow

__all__ = ["ImportInterrupted", "ImportReport", "Rejection", "import_conversations"]

# One transaction per chunk: big enough that commits cost little, small enough that
# SQLite's WAL and PostgreSQL's open transaction stay small (about 17 MB of tau-sized
# transcripts). The byte bound keeps that true for much longer transcripts.
CHUNK_RECORDS = 1000
CHUNK_BYTES = 16 * 2**20
# Chunks parsed ahead of the writer: enough to keep it busy, few enough to bound memory.
CHUNKS_AHEAD = 2
DEFAULT_FUTURE_SKEW = timedelta(minutes=5)
WRITER_SWITCH_INTERVAL_S = 0.001
REJECTIONS_IN_AUDIT = 20
# Rejections kept in a report (the count is always exact), so memory stays flat even
# when a huge file is all bad.
REJECTIONS_KEPT = 1000
# External ids looked up per statement when storing a chunk's check results.
CHECK_LOOKUP_BATCH = 500


@dataclass
class ImportReport:
    """What one or more imports did: counts, versions touched and every rejection."""

    imported: int = 0
    escalated: int = 0
    duplicates: int = 0
    # The first REJECTIONS_KEPT rejections; rejected_count counts them all.
    rejected: list[Rejection] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)
    rejected_count: int = 0

    def __post_init__(self) -> None:
        self.rejected_count = max(self.rejected_count, len(self.rejected))

    @property
    def seen(self) -> int:
        """Records read in total, whatever became of them."""
        return self.imported + self.duplicates + self.rejected_count

    @property
    def accepted(self) -> int:
        """Records now in the store: imported here or already there."""
        return self.imported + self.duplicates

    def reject(self, rejection: Rejection) -> None:
        """Count a rejection, keeping it if fewer than REJECTIONS_KEPT are kept."""
        self.rejected_count += 1
        if len(self.rejected) < REJECTIONS_KEPT:
            self.rejected.append(rejection)

    def __add__(self, other: "ImportReport") -> "ImportReport":
        """A new report adding this one and another (e.g. one per file or page)."""
        return ImportReport(
            imported=self.imported + other.imported,
            escalated=self.escalated + other.escalated,
            duplicates=self.duplicates + other.duplicates,
            rejected=[*self.rejected, *other.rejected][:REJECTIONS_KEPT],
            versions=self.versions + other.versions,
            rejected_count=self.rejected_count + other.rejected_count,
        )

    def summary(self) -> str:
        """One line for people, e.g. 'imported 98 (12 escalated), 1 duplicate, 2 rejected'."""
        parts = [f"imported {self.imported} ({self.escalated} escalated)"]
        parts.append(f"{self.duplicates} duplicate{'' if self.duplicates == 1 else 's'} skipped")
        parts.append(f"{self.rejected_count} rejected")
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
            "rejected": self.rejected_count,
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
    parallel_parse: bool = False,
) -> ImportReport:
    """Store good records for the agent, skip known ones, report bad ones; commit by chunk.

    A given `version` applies to every record, and a record naming another version is
    rejected; without one, each record's own `agent_version` is used (registered as a
    candidate if new). A record dated more than `max_future_skew` after `now` is rejected:
    one such date would otherwise move every time window past all real traffic.

    Each chunk of up to CHUNK_RECORDS records is committed with one `conversations.imported`
    event counting it (the last one also says the import is complete and gives the
    totals), together with whatever the session held before. An import that has accepted
    nothing yet commits nothing: its event is left in the session for the caller to
    commit or roll back. `progress` is called, from the writer thread, with the number of
    records handled after each chunk. With `parallel_parse`, a big JSON Lines file from
    read_records is parsed in worker processes on SQLite (see ingestion.parallel).
    """
    if version is not None:
        require_own_version(agent, version)
    if default_started_at is not None and default_started_at.tzinfo is None:
        raise RuleViolation("default_started_at must be timezone-aware")
    now = now or utcnow()
    # Every conversation is checked as it is stored, under the agent's current check file.
    check_set = latest_check_set(session, agent=agent)
    settings = RowSettings(
        version=version.version if version is not None else None,
        started_at=default_started_at or now,
        escalation_tools=escalation_tools,
        latest_allowed=now + max_future_skew,
        json_checked=isinstance(records, JsonRecords),
        dialect=type(session.get_bind().dialect),
        chunk_records=CHUNK_RECORDS,
        chunk_bytes=CHUNK_BYTES,
        checks=(check_set.content, check_set.source) if check_set is not None else None,
    )
    writer = _ChunkWriter(
        session,
        agent=agent,
        versions={version.version: version.id} if version is not None else {},  # type: ignore[dict-item]
        actor=actor,
        source=source,
        progress=progress,
        check_set_id=check_set.id if check_set is not None else None,
    )
    writer.start()
    try:
        # closing(): whatever happens, parse workers stop before this returns.
        with (
            closing(_chunks(records, settings, parallel_parse=parallel_parse)) as chunks,
            _short_switch_interval(),
        ):
            for chunk in chunks:
                writer.put(chunk)
        return writer.finish()
    except Exception as exc:
        writer.abort()
        if writer.committed and not isinstance(exc, ImportInterrupted):
            raise ImportInterrupted(records=writer.committed, cause=exc) from exc
        raise
    except BaseException:
        writer.abort()
        raise


def _chunks(
    records: Iterable[LabelledRecord], settings: RowSettings, *, parallel_parse: bool
) -> Generator[Chunk, None, None]:
    if parallel_parse and parallel.worthwhile(records, settings):
        return parallel.parallel_chunks(records, settings)
    return RowBuilder(settings).chunks(records)


@contextmanager
def _short_switch_interval() -> Iterator[None]:
    # The writer thread lets go of the GIL around each database call; while this thread
    # parses, taking it back costs up to the switch interval (5 ms by default) each time.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, WRITER_SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


class ImportInterrupted(AgentOpsError):
    """An import failed after committing some chunks; running it again resumes it."""

    def __init__(self, *, records: int, cause: BaseException) -> None:
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        super().__init__(
            f"the import stopped after its first {records} records were committed: {reason}. "
            "Run the same import again to finish it; records already stored are skipped"
        )
        self.records = records


def records_from_platform(items: Iterable[dict[str, Any]]) -> Iterator[tuple[str, object]]:
    """Label platform API items 'item <id>' (or 'item <n>' when an item has no usable id)."""
    for number, item in enumerate(items, start=1):
        item_id = item.get("id") if isinstance(item, dict) else None
        has_id = isinstance(item_id, str | int) and not isinstance(item_id, bool)
        yield (f"item {item_id}" if has_id else f"item {number}"), item


_DONE = None


class _ChunkWriter:
    """Stores chunks on the session in a thread of its own, one transaction per chunk.

    The session belongs to this thread until finish() or abort() returns: the caller's
    thread only parses.
    """

    def __init__(
        self,
        session: Session,
        *,
        agent: Agent,
        versions: dict[str, int],
        actor: str,
        source: str | None,
        progress: Callable[[int], None] | None,
        check_set_id: int | None = None,
    ) -> None:
        self.session = session
        self.check_set_id = check_set_id
        self.agent = agent
        self.agent_id: int = agent.id  # type: ignore[assignment]
        self.agent_name = agent.name
        self.version_ids = versions
        self.actor = actor
        self.source = source
        self.progress = progress
        self.report = ImportReport()
        self.part = ImportReport()
        self.parts = 0
        self.first: str | None = None
        self.last: str | None = None
        self.handled = 0
        self.committed = 0
        self.error: BaseException | None = None
        self._aborted = False
        self._done = False
        self._queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=CHUNKS_AHEAD)
        self._thread = threading.Thread(target=self._run, name="agentops-import", daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def put(self, chunk: Chunk) -> None:
        """Hand a chunk over, waiting while CHUNKS_AHEAD are queued; raise a writer error."""
        self._raise_error()
        self._queue.put(chunk)

    def finish(self) -> ImportReport:
        """Wait for every chunk to be stored and return the report."""
        self._queue.put(_DONE)
        self._thread.join()
        self._raise_error()
        return self.report

    def abort(self) -> None:
        """Stop after the chunk being stored; what is not committed is left to roll back."""
        if not self._thread.is_alive():
            return
        self._aborted = True
        self._queue.put(_DONE)
        self._thread.join()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            chunk = self._next()
            while chunk is not None and not self._aborted:
                self._store(chunk)
                # Looking one chunk ahead tells whether this transaction ends the import.
                following = self._next()
                if not self._aborted:
                    self._close_part(complete=following is None)
                chunk = following
            if self.parts == 0 and not self._aborted:
                self._close_part(complete=True)  # nothing read: one event, as ever
        except BaseException as exc:
            self.error = exc
        finally:
            # The caller's thread may still be handing chunks over: take them until it is
            # done, so it never waits on a full queue.
            while not self._done:
                self._next()

    def _next(self) -> Chunk | None:
        chunk = self._queue.get()
        self._done = chunk is None
        return chunk

    def _store(self, chunk: Chunk) -> None:
        connection = self.session.connection()
        imported_at = bind_value("imported_at", utcnow(), connection.dialect)
        version_ids = [self._version_id(name) for name in chunk.version_names]
        rows = [
            (self.agent_id, version_id, *values, imported_at)
            for version_id, values in zip(version_ids, chunk.values, strict=True)
        ]
        stored = ConversationInserter(connection).insert(rows)
        if chunk.checks and self.check_set_id is not None:
            self._store_checks(chunk, stored, version_ids)
        part = self.part
        for was_stored, values, name in zip(stored, chunk.values, chunk.version_names, strict=True):
            if was_stored:
                part.imported += 1
                part.escalated += bool(values[ESCALATED])
                part.versions[name] += 1
            else:
                part.duplicates += 1
        for rejection in chunk.rejections:
            part.reject(rejection)
        self.first = self.first or chunk.first
        self.last = chunk.last
        self.handled += chunk.records
        if self.progress is not None:
            self.progress(self.handled)

    def _store_checks(self, chunk: Chunk, stored: list[bool], version_ids: list[int]) -> None:
        # The bulk insert does not say the new rows' ids on SQLite: one look-up per chunk.
        new = {
            values[0]: (version_id, results)
            for was_stored, values, version_id, results in zip(
                stored, chunk.values, version_ids, chunk.checks, strict=True
            )
            if was_stored
        }
        rows = []
        external_ids = list(new)
        for start in range(0, len(external_ids), CHECK_LOOKUP_BATCH):
            wanted = external_ids[start : start + CHECK_LOOKUP_BATCH]
            for conversation_id, external_id in self.session.exec(
                select(Conversation.id, Conversation.external_id).where(
                    Conversation.agent_id == self.agent_id,
                    col(Conversation.external_id).in_(wanted),
                )
            ):
                version_id, results = new[external_id]
                rows.append(result_row(conversation_id, self.check_set_id, version_id, results))  # type: ignore[arg-type]
        store_results(self.session, rows)

    def _version_id(self, name: str) -> int:
        found = self.version_ids.get(name)
        if found is None:
            version = ensure_version(self.session, agent=self.agent, version=name, actor=self.actor)
            found = self.version_ids[name] = version.id  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    def _close_part(self, *, complete: bool) -> None:
        total = self.report + self.part
        if not complete and total.accepted == 0:
            return  # nothing stored yet: keep going in the same transaction
        self.parts += 1
        payload: dict[str, Any] = {"agent": self.agent_name}
        if self.source:
            payload["source"] = self.source
        payload.update(self.part.as_dict(rejection_limit=REJECTIONS_IN_AUDIT))
        payload.update(part=self.parts, first=self.first, last=self.last, complete=complete)
        if complete and self.parts > 1:
            payload["total"] = {
                key: value for key, value in total.as_dict().items() if key != "rejections"
            }
        record_event(
            self.session,
            actor=self.actor,
            kind="conversations.imported",
            entity_type="agent",
            entity_id=self.agent_id,
            payload=payload,
        )
        if total.accepted:
            # An import that accepted nothing leaves its event to the caller, who rolls
            # it back (the CLI) or commits it (a scheduled pull, to show it ran).
            self.session.commit()
            self.committed = total.seen
        self.report = total
        self.part = ImportReport()
        self.first = self.last = None
