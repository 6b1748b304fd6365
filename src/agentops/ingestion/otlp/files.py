"""Read OTLP JSON Lines files, as the OpenTelemetry Collector's file exporter writes them.

Each line is one export request (traces or logs). A conversation may span many lines
(one trace per user turn, logs apart from spans), so the whole file is read before the
first conversation is built; only the decoded items are kept, not the lines.
"""

from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from agentops.errors import AgentOpsError
from agentops.ingestion.files import BOM, READ_BUFFER, JsonRecords, LabelledRecord
from agentops.ingestion.otlp.model import Item
from agentops.ingestion.otlp.normalise import DEFAULT_CONVERSATION_KEYS, normalise_all
from agentops.ingestion.otlp.otlp_json import OtlpDecodeError, decode_request
from agentops.ingestion.transcripts import RecordError
from agentops.textfiles import require_file


class OtlpRecords(JsonRecords):
    """Conversation records built from an OTLP JSON Lines file, labelled by conversation.

    A line that is not an export request becomes a rejection labelled "line N"; a
    conversation that cannot be built becomes one labelled "conversation ID". `size` and
    `bytes_read` say how far reading has got, for a progress bar. Everything is parsed
    by orjson (the lines and the JSON inside attributes), so, like JsonRecords, the
    records hold no NaN or Infinity and the importer need not re-check them.
    """

    def __init__(self, path: Path, *, keys: Iterable[str] = DEFAULT_CONVERSATION_KEYS) -> None:
        self.keys = tuple(keys)
        self.otlp_path = path
        super().__init__(size=path.stat().st_size, items=self._built())

    def _built(self) -> Iterator[LabelledRecord]:
        items: list[Item] = []
        bad: list[LabelledRecord] = []
        with self.otlp_path.open("rb", buffering=READ_BUFFER) as handle:
            for number, line in enumerate(handle, start=1):
                self.bytes_read += len(line)
                if number == 1 and line.startswith(BOM):
                    line = line[len(BOM) :]
                if not line.strip():
                    continue
                try:
                    items.extend(decode_request(orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    bad.append((f"line {number}", RecordError(f"invalid JSON: {exc}")))
                except OtlpDecodeError as exc:
                    bad.append((f"line {number}", RecordError(str(exc))))
        yield from bad
        for found in normalise_all(items, keys=self.keys):
            if isinstance(found, tuple):
                key, error = found
                yield f"conversation {key}", error
            else:
                yield f"conversation {found.key}", found.record


def read_otlp_records(
    path: Path, *, keys: Iterable[str] = DEFAULT_CONVERSATION_KEYS
) -> OtlpRecords:
    """Conversation records from an OTLP JSON Lines file; AgentOpsError if unreadable."""
    path = Path(path)
    require_file(path, what="OTLP file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise AgentOpsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return OtlpRecords(path, keys=keys)
