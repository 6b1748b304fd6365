"""Read raw conversation records from JSON Lines or JSON array files."""

import json
from collections.abc import Iterator
from pathlib import Path

from agentops.errors import AgentOpsError
from agentops.ingestion.transcripts import RecordError
from agentops.textfiles import require_file

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
JSON_SUFFIXES = frozenset({".json"})

LabelledRecord = tuple[str, object | RecordError]


def read_records(path: Path) -> Iterator[LabelledRecord]:
    """Yield (label, raw record or RecordError) from a .jsonl/.ndjson or .json file.

    JSON Lines files are streamed line by line and labelled "line N" (1-based); a line that
    is not valid JSON becomes a RecordError so the rest still imports. JSON files hold an
    array (or an object with a "conversations" array), labelled "index N" (0-based).
    A missing or unreadable file, or a JSON file of the wrong shape, raises AgentOpsError
    straight away, before anything is imported.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in JSONL_SUFFIXES | JSON_SUFFIXES:
        raise AgentOpsError(
            f"cannot read {path}: unsupported file type {suffix or '(none)'!r}; "
            "use .jsonl/.ndjson (one conversation per line) or .json (an array)"
        )
    _check_readable(path)
    if suffix in JSONL_SUFFIXES:
        return _stream_jsonl(path)
    return _json_array_items(path)


def _check_readable(path: Path) -> None:
    require_file(path, what="conversations file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise AgentOpsError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _stream_jsonl(path: Path) -> Iterator[LabelledRecord]:
    with path.open("rb") as handle:
        for number, raw_line in enumerate(handle, start=1):
            label = f"line {number}"
            try:
                # utf-8-sig drops a byte-order mark, which editors add to the first line.
                line = raw_line.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                yield label, RecordError(f"not valid UTF-8 (byte {exc.start + 1})")
                continue
            if not line.strip():
                continue
            try:
                yield label, json.loads(line)
            except json.JSONDecodeError as exc:
                yield label, RecordError(f"invalid JSON: {exc.msg} (column {exc.colno})")


def _json_array_items(path: Path) -> Iterator[LabelledRecord]:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise AgentOpsError(f"{path} is not valid UTF-8 (byte {exc.start + 1})") from exc
    except json.JSONDecodeError as exc:
        raise AgentOpsError(
            f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if isinstance(document, dict) and isinstance(document.get("conversations"), list):
        document = document["conversations"]
    if not isinstance(document, list):
        found = (
            "an object without a 'conversations' array"
            if isinstance(document, dict)
            else "a single value"
        )
        raise AgentOpsError(
            f"{path} must hold a JSON array of conversations "
            f"(or an object with a 'conversations' array); found {found}. "
            "For one conversation per line, name the file .jsonl"
        )
    return ((f"index {index}", item) for index, item in enumerate(document))
