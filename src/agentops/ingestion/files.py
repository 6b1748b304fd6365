"""Read raw conversation records from JSON Lines or JSON array files, with orjson."""

import json
from collections.abc import Iterator
from pathlib import Path

import orjson

from agentops.errors import AgentOpsError
from agentops.ingestion.transcripts import RecordError, parse_record
from agentops.textfiles import require_file

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
JSON_SUFFIXES = frozenset({".json"})
BOM = b"\xef\xbb\xbf"
# Lines of real transcripts run to tens of KB: a large buffer reads each in one piece.
READ_BUFFER = 1 << 20

LabelledRecord = tuple[str, object | RecordError]


class JsonRecords(Iterator[LabelledRecord]):
    """Labelled records parsed by orjson, so free of NaN, Infinity and non-JSON values.

    The importer trusts that and skips re-serialising every message to look for them.
    A JSON Lines file (`path` set) is read lazily, line by line; `size` and `bytes_read`
    say how far reading has got, for a progress bar, and `lines()` hands the raw lines
    to an importer that parses them elsewhere (see `parse_line`).
    """

    def __init__(
        self,
        *,
        path: Path | None = None,
        size: int = 0,
        items: Iterator[LabelledRecord] | None = None,
    ) -> None:
        self.path = path
        self.size = size
        self.bytes_read = 0
        self._items = items if items is not None else self._parsed_lines()

    def __next__(self) -> LabelledRecord:
        return next(self._items)

    def __iter__(self) -> "JsonRecords":
        return self

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """The JSON Lines file's raw lines with their 1-based numbers, counted in bytes_read."""
        if self.path is None:
            raise ValueError("only a JSON Lines file has lines to read")
        with self.path.open("rb", buffering=READ_BUFFER) as handle:
            for number, line in enumerate(handle, start=1):
                self.bytes_read += len(line)
                yield number, line

    def _parsed_lines(self) -> Iterator[LabelledRecord]:
        for number, line in self.lines():
            parsed = parse_line(number, line)
            if parsed is not None:
                yield parsed


def read_records(path: Path) -> JsonRecords:
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
        return JsonRecords(path=path, size=path.stat().st_size)
    return JsonRecords(items=_json_array_items(path))


def parse_line(number: int, line: bytes) -> LabelledRecord | None:
    """One JSON Lines line as ("line N", record or RecordError); None for a blank line."""
    if line.startswith(BOM):  # editors add one to the first line
        line = line[len(BOM) :]
    try:
        return f"line {number}", orjson.loads(line)
    except orjson.JSONDecodeError:
        outcome = _line_outcome(line)
        return None if outcome is None else (f"line {number}", outcome)


def _check_readable(path: Path) -> None:
    require_file(path, what="conversations file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise AgentOpsError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _line_outcome(line: bytes) -> object | RecordError | None:
    """What a line orjson refused is: a blank (None), a rejection, or a record after all.

    Only this rare path pays for the stdlib parser, so the reasons stay what they were:
    the stdlib's message for broken JSON, the validation's for NaN and Infinity, and a
    record for what orjson alone refuses (an integer beyond 64 bits).
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RecordError(f"not valid UTF-8 (byte {exc.start + 1})")
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return RecordError(f"invalid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return RecordError(TOO_DEEP)
    return _strictly_checked(record)


def _strictly_checked(record: object) -> object | RecordError:
    # The stdlib accepted what orjson refused: validate as an unchecked record would be,
    # so NaN or Infinity is rejected with the reason and place a user can act on.
    try:
        parse_record(record)
    except RecordError as exc:
        return exc
    return record


def _json_array_items(path: Path) -> Iterator[LabelledRecord]:
    # A JSON array cannot be streamed with orjson; JSON Lines is the format for big exports.
    content = path.read_bytes()
    if content.startswith(BOM):
        content = content[len(BOM) :]
    strict = True
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError:
        document = _stdlib_document(path, content)
        strict = False
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
    if strict:
        return ((f"index {index}", item) for index, item in enumerate(document))
    return ((f"index {index}", _strictly_checked(item)) for index, item in enumerate(document))


TOO_DEEP = "JSON nested too deeply (more than about a thousand levels)"


def _stdlib_document(path: Path, content: bytes) -> object:
    try:
        return json.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AgentOpsError(f"{path} is not valid UTF-8 (byte {exc.start + 1})") from exc
    except json.JSONDecodeError as exc:
        raise AgentOpsError(
            f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except RecursionError:
        raise AgentOpsError(f"{path}: {TOO_DEEP}") from None
