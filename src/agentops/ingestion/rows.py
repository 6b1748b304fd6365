"""Turn labelled raw records into chunks of rows ready for the bulk insert.

This is the hot path of an import: every record is validated (transcripts.parse_record),
checked against the import, its transcript serialised once with orjson, and its values
converted the way the column types convert them, so the insert can hand rows to the driver
as they are.
"""

import json
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.engine import Dialect

from agentops.agents.names import NAME_PATTERN
from agentops.checks.config import results_json, suite_from_text
from agentops.ingestion.bulk import COLUMNS, Row, bind_processors
from agentops.ingestion.files import LabelledRecord
from agentops.ingestion.transcripts import ConversationRecord, RecordError, parse_record

NO_VERSION = "no agent version: give one for the import or an 'agent_version' in the record"


@dataclass(frozen=True)
class Rejection:
    """A record that was not imported, with where it came from and why."""

    label: str
    reason: str

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


@dataclass
class Chunk:
    """Parsed records on their way to the writer, with the rejections met among them."""

    records: int = 0
    first: str | None = None
    last: str | None = None
    # COLUMNS minus agent_id, agent_version_id and imported_at, which the writer adds.
    values: list[Row] = field(default_factory=list)
    version_names: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    size: int = 0
    # Each stored row's policy-check results (when the agent has a check file).
    checks: list[dict[str, Any]] = field(default_factory=list)


VALUE_COLUMNS = COLUMNS[2:-1]
ESCALATED = VALUE_COLUMNS.index("escalated")


@dataclass(frozen=True)
class RowSettings:
    """What turning records into rows depends on; picklable, for parse processes."""

    version: str | None
    started_at: datetime
    escalation_tools: frozenset[str]
    latest_allowed: datetime
    json_checked: bool
    dialect: type[Dialect]
    chunk_records: int
    chunk_bytes: int
    # The agent's check file (text, source) to run on every record, if it has one.
    checks: tuple[str, str] | None = None


class RowBuilder:
    """Turns labelled raw records into chunks of storable rows."""

    def __init__(self, settings: RowSettings) -> None:
        self.settings = settings
        self.version = settings.version
        self.started_at = settings.started_at
        self.escalation_tools = settings.escalation_tools
        self.latest_allowed = settings.latest_allowed
        self.json_checked = settings.json_checked
        self.processors = [
            (position - 2, processor)
            for position, processor in bind_processors(settings.dialect())
            if COLUMNS[position] in VALUE_COLUMNS
        ]
        self.suite = suite_from_text(*settings.checks) if settings.checks else None

    def full(self, chunk: Chunk) -> bool:
        """Whether the chunk has reached the records or bytes a chunk may hold."""
        return (
            chunk.records >= self.settings.chunk_records or chunk.size >= self.settings.chunk_bytes
        )

    def chunks(self, records: Iterable[LabelledRecord]) -> Generator[Chunk, None, None]:
        """The records in chunks, each full() but the last."""
        chunk = Chunk()
        for label, raw in records:
            self.add(chunk, label, raw)
            if self.full(chunk):
                yield chunk
                chunk = Chunk()
        if chunk.records:
            yield chunk

    def add(self, chunk: Chunk, label: str, raw: object) -> None:
        """Add one record to the chunk: as a row to store, or as a rejection."""
        chunk.records += 1
        chunk.first = chunk.first or label
        chunk.last = label
        try:
            if isinstance(raw, RecordError):
                raise raw
            record = parse_record(
                raw, escalation_tools=self.escalation_tools, json_checked=self.json_checked
            )
            version = self._check_against_import(record)
            transcript = _transcript_text(record.messages)
        except RecordError as exc:
            chunk.rejections.append(Rejection(label, exc.reason))
            return
        values = [
            record.external_id,
            record.started_at or self.started_at,
            record.channel,
            record.intent,
            transcript,
            record.escalated,
            record.contained,
            record.sentiment,
            record.latency_ms,
            record.task_success,
        ]
        for position, processor in self.processors:
            values[position] = processor(values[position])
        chunk.values.append(tuple(values))
        chunk.version_names.append(version)
        if self.suite is not None:
            chunk.checks.append(results_json(self.suite.run(record.messages)))
        chunk.size += len(transcript)

    def _check_against_import(self, record: ConversationRecord) -> str:
        named = record.agent_version
        if named is not None and not NAME_PATTERN.fullmatch(named):
            raise RecordError(f"agent_version {named[:80]!r} is not a plain version label")
        if self.version is not None and named is not None and named != self.version:
            raise RecordError(
                f"agent_version {named!r} disagrees with the import's version "
                f"{self.version!r}; import it separately with its own version"
            )
        if record.started_at is not None and record.started_at > self.latest_allowed:
            raise RecordError(
                f"started_at {record.started_at.isoformat()} is in the future "
                f"(more than the allowed clock skew past {self.latest_allowed.isoformat()})"
            )
        version = self.version or named
        if version is None:
            raise RecordError(NO_VERSION)
        return version


def _transcript_text(messages: list[dict[str, Any]]) -> str:
    try:
        return orjson.dumps(messages).decode()
    except orjson.JSONEncodeError:
        pass
    # Beyond orjson, e.g. an integer over 64 bits from a stdlib-parsed platform page; the
    # messages were checked to be JSON, so the stdlib encoder can write them.
    text = json.dumps(messages, allow_nan=False, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError("a message is not valid Unicode (a lone surrogate)") from None
    return text
