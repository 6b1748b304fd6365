"""The audit hash chain: each event's hash covers its content and the previous hash."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from json.encoder import encode_basestring_ascii
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Serialise deterministically, so the same event always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def sha256_hex(text: str) -> str:
    """The SHA-256 hex digest of the text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_sha256(value: Any) -> str:
    """The digest of a value's meaning: equal data hashes equal however it was written."""
    return sha256_hex(canonical_json(value))


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class ChainedEvent:
    """The hashed fields of one audit event."""

    seq: int
    occurred_at: datetime
    actor: str
    kind: str
    entity_type: str
    entity_id: str
    payload: dict[str, Any]
    channel: str | None = None
    correlation_id: str | None = None


def event_hash(event: ChainedEvent, prev_hash: str) -> str:
    """Hash one event chained onto the previous event's hash."""
    fields: dict[str, Any] = {
        "seq": event.seq,
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "kind": event.kind,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "payload": event.payload,
        "prev_hash": prev_hash,
    }
    # Absent rather than null, so events recorded before these fields existed hash as before.
    if event.channel is not None:
        fields["channel"] = event.channel
    if event.correlation_id is not None:
        fields["correlation_id"] = event.correlation_id
    return canonical_sha256(fields)


# json.dumps(str) with the default (ASCII) settings, without the call overhead: verify
# runs this a million times.
_quote = encode_basestring_ascii


def event_hash_from_text(
    *,
    seq: int,
    occurred_at: str,
    actor: str,
    kind: str,
    entity_type: str,
    entity_id: str,
    payload_text: str,
    prev_hash: str,
    channel: str | None = None,
    correlation_id: str | None = None,
) -> str:
    """event_hash for a payload already in canonical JSON text, without parsing it.

    Builds the same canonical document as event_hash (keys in sorted order), so the two
    agree whenever payload_text is canonical; verification falls back to event_hash when
    a stored payload is not in canonical form.
    """
    return hash_fields(
        seq, occurred_at, actor, kind, entity_type, entity_id, payload_text, prev_hash,
        channel, correlation_id,
    )  # fmt: skip


def hash_fields(
    seq: int,
    occurred_at: str,
    actor: str,
    kind: str,
    entity_type: str,
    entity_id: str,
    payload_text: str,
    prev_hash: str,
    channel: str | None,
    correlation_id: str | None,
) -> str:
    """event_hash_from_text with positional arguments, for the verify loop."""
    q = _quote
    optional = ""
    if channel is not None:
        optional = ',"channel":' + q(channel)
    if correlation_id is not None:
        optional += ',"correlation_id":' + q(correlation_id)
    document = (
        f'{{"actor":{q(actor)}{optional},"entity_id":{q(entity_id)},'
        f'"entity_type":{q(entity_type)},"kind":{q(kind)},"occurred_at":{q(occurred_at)},'
        f'"payload":{payload_text},"prev_hash":{q(prev_hash)},"seq":{seq}}}'
    )
    return sha256(document.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    """Where and how a stored chain stops verifying."""

    seq: int
    reason: str
