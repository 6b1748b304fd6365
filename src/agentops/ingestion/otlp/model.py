"""The neutral form both OTLP decoders produce: one Item per span or log record."""

from dataclasses import dataclass, field
from typing import Any

SPAN = "span"
LOG = "log"


@dataclass(slots=True)
class Item:
    """A span or a log record with its attributes flattened to plain Python values.

    Ids are lower-case hex, as OTLP/JSON writes them; times are Unix nanoseconds.
    """

    kind: str
    trace_id: str
    span_id: str
    start_ns: int
    end_ns: int = 0
    name: str = ""
    parent_span_id: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    body: Any = None

    @property
    def key(self) -> str:
        """What identifies this item across retries: its span, or its record's place in it."""
        if self.kind == SPAN:
            return f"s:{self.trace_id}:{self.span_id}"
        event = self.name or self.attributes.get("event.name", "")
        return f"l:{self.trace_id}:{self.span_id}:{self.start_ns}:{event}:{_digest(self.body)}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for staging in the store."""
        return {
            "kind": self.kind,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "name": self.name,
            "parent_span_id": self.parent_span_id,
            "attributes": self.attributes,
            "resource": self.resource,
            "body": self.body,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Item":
        """The item as_dict() wrote."""
        return cls(**data)


def _digest(value: Any) -> str:
    import hashlib

    import orjson

    try:
        raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        raw = repr(value).encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()
