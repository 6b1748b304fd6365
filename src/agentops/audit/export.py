"""Exports for auditors: events as JSON Lines and CSV, and a signed manifest over both.

`verify_export` needs only the directory and the public key, so an auditor can check an
export on another machine without access to the database.
"""

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from agentops.audit.chain import ChainedEvent, canonical_json, event_hash
from agentops.audit.checkpoints import TreeHead
from agentops.audit.signing import key_id, sign_document, signature_valid
from agentops.errors import AgentOpsError

EXPORT_FORMAT = "agentops-audit-export/1"
JSONL_NAME, CSV_NAME, MANIFEST_NAME = "events.jsonl", "events.csv", "manifest.json"
EXPORT_FIELDS = (
    "seq",
    "occurred_at",
    "actor",
    "channel",
    "correlation_id",
    "kind",
    "entity_type",
    "entity_id",
    "payload",
    "prev_hash",
    "hash",
)


class ExportError(AgentOpsError):
    """An export directory cannot be written or read."""


def event_record(
    *,
    seq: int,
    occurred_at: datetime,
    actor: str,
    kind: str,
    entity_type: str,
    entity_id: str,
    payload: dict[str, Any],
    prev_hash: str,
    hash: str,
    channel: str | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """One event as plain JSON-ready data, in export field order."""
    return {
        "seq": seq,
        "occurred_at": occurred_at.isoformat(),
        "actor": actor,
        "channel": channel,
        "correlation_id": correlation_id,
        "kind": kind,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "payload": payload,
        "prev_hash": prev_hash,
        "hash": hash,
    }


def render_events(records: Iterable[dict[str, Any]], *, fmt: str) -> str:
    """Render event records as JSON Lines ('jsonl') or CSV ('csv')."""
    if fmt not in {"jsonl", "csv"}:
        raise ValueError(f"unknown export format {fmt!r}: use jsonl or csv")
    buffer = io.StringIO()
    writer = _Writer(buffer, fmt)
    for record in records:
        writer.write(record)
    return buffer.getvalue()


class _Writer:
    def __init__(self, handle: io.TextIOBase | Any, fmt: str) -> None:
        self.fmt = fmt
        self.handle = handle
        if fmt == "csv":
            self.csv = csv.DictWriter(handle, fieldnames=EXPORT_FIELDS, lineterminator="\n")
            self.csv.writeheader()

    def write(self, record: dict[str, Any]) -> None:
        if self.fmt == "jsonl":
            self.handle.write(canonical_json(record) + "\n")
        else:
            self.csv.writerow({**record, "payload": canonical_json(record["payload"])})


@dataclass
class ExportSummary:
    """What an export wrote."""

    directory: Path
    events: int
    first_seq: int | None
    last_seq: int | None
    manifest: dict[str, Any] = field(default_factory=dict)


def prepare_directory(directory: Path) -> None:
    """Create the export directory; refuse one that already holds files."""
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory} is a file: give a new directory for the export")
    if directory.is_dir() and any(directory.iterdir()):
        raise ExportError(f"{directory} is not empty: give a new or empty directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {directory}: {exc.strerror}") from None


def write_export(
    directory: Path,
    *,
    records: Iterator[dict[str, Any]],
    key: Ed25519PrivateKey,
    head: TreeHead,
    filters: dict[str, Any],
    created_at: datetime,
) -> ExportSummary:
    """Stream records into events.jsonl and events.csv, then sign manifest.json over them."""
    prepare_directory(directory)
    summary = ExportSummary(directory=directory, events=0, first_seq=None, last_seq=None)
    by_kind: dict[str, int] = {}
    try:
        with (
            (directory / JSONL_NAME).open("w", encoding="utf-8", newline="") as jsonl,
            (directory / CSV_NAME).open("w", encoding="utf-8", newline="") as csv_file,
        ):
            writers = (_Writer(jsonl, "jsonl"), _Writer(csv_file, "csv"))
            for record in records:
                for writer in writers:
                    writer.write(record)
                summary.events += 1
                summary.first_seq = summary.first_seq or record["seq"]
                summary.last_seq = record["seq"]
                by_kind[record["kind"]] = by_kind.get(record["kind"], 0) + 1
    except OSError as exc:
        raise ExportError(f"cannot write the export to {directory}: {exc.strerror}") from None
    body = {
        "format": EXPORT_FORMAT,
        "created_at": created_at.isoformat(),
        "filters": filters,
        "counts": {"events": summary.events, "by_kind": dict(sorted(by_kind.items()))},
        "first_seq": summary.first_seq,
        "last_seq": summary.last_seq,
        "tree_head": {
            "tree_size": head.tree_size,
            "chain_head": head.chain_head,
            "merkle_root": head.merkle_root,
        },
        "files": {name: _file_facts(directory / name) for name in (JSONL_NAME, CSV_NAME)},
        "key_id": key_id(key.public_key()),
    }
    document = {"manifest": body, "signature": sign_document(key, body)}
    (directory / MANIFEST_NAME).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    summary.manifest = body
    return summary


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return str(_file_facts(path)["sha256"])


def _file_facts(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"sha256": digest.hexdigest(), "bytes": size}


@dataclass
class ExportCheck:
    """The outcome of verify_export."""

    manifest: dict[str, Any]
    events: int
    problems: list[str]


def verify_export(directory: Path, *, public_key: Ed25519PublicKey) -> ExportCheck:
    """Check the manifest's signature, each file's digest, and every event's hash."""
    body = _read_manifest(directory)
    problems: list[str] = []
    document_signature = body.pop("_signature")
    if not signature_valid(public_key, body, document_signature):
        problems.append(
            f"{MANIFEST_NAME}: signature does not match (edited, or signed with another key)"
        )
    for name, facts in body.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _file_facts(path) != facts:
            problems.append(f"{name}: changed since export (its SHA-256 differs from the manifest)")
    if problems:
        return ExportCheck(manifest=body, events=0, problems=problems)
    events = _check_events(directory, body, problems)
    return ExportCheck(manifest=body, events=events, problems=problems)


def _read_manifest(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise ExportError(f"{directory} is not a directory holding an agentops export")
    try:
        document = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
        body, signature = document["manifest"], document["signature"]
        if body["format"] != EXPORT_FORMAT:
            raise ValueError
    except FileNotFoundError:
        raise ExportError(f"{directory} is not an agentops export: no {MANIFEST_NAME}") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ExportError(
            f"{directory / MANIFEST_NAME} is not a readable agentops export manifest"
        ) from None
    return {**body, "_signature": signature}


def _check_events(directory: Path, manifest: dict[str, Any], problems: list[str]) -> int:
    count = 0
    previous: dict[str, Any] | None = None
    with (
        (directory / JSONL_NAME).open(encoding="utf-8") as jsonl,
        (directory / CSV_NAME).open(encoding="utf-8", newline="") as csv_file,
    ):
        csv_rows = csv.DictReader(csv_file)
        for number, line in enumerate(jsonl, start=1):
            try:
                record = json.loads(line)
                recomputed = event_hash(_as_chained(record), record["prev_hash"])
            except (ValueError, KeyError, TypeError):
                problems.append(f"{JSONL_NAME} line {number}: not an exported event")
                continue
            seq = record["seq"]
            if recomputed != record["hash"]:
                problems.append(f"event {seq}: content does not match its hash")
            if previous is not None:
                if seq <= previous["seq"]:
                    problems.append(f"event {seq}: out of order after event {previous['seq']}")
                elif seq == previous["seq"] + 1 and record["prev_hash"] != previous["hash"]:
                    problems.append(
                        f"event {seq}: prev_hash does not match event {previous['seq']}"
                    )
            row = next(csv_rows, None)
            if row is None or _csv_as_record(row) != record:
                problems.append(f"event {seq}: {CSV_NAME} row differs from {JSONL_NAME}")
            previous = record
            count += 1
    expected = manifest["counts"]["events"]
    if count != expected:
        problems.append(f"{JSONL_NAME}: {count} events, the manifest says {expected}")
    head = manifest["tree_head"]
    if previous is not None:
        if previous["seq"] != manifest["last_seq"]:
            problems.append(
                f"last event is {previous['seq']}, the manifest says {manifest['last_seq']}"
            )
        if previous["seq"] == head["tree_size"] and previous["hash"] != head["chain_head"]:
            problems.append(f"event {previous['seq']}: does not match the signed chain head")
    return count


def _as_chained(record: dict[str, Any]) -> ChainedEvent:
    return ChainedEvent(
        seq=int(record["seq"]),
        occurred_at=datetime.fromisoformat(record["occurred_at"]),
        actor=record["actor"],
        kind=record["kind"],
        entity_type=record["entity_type"],
        entity_id=record["entity_id"],
        payload=record["payload"],
        channel=record.get("channel"),
        correlation_id=record.get("correlation_id"),
    )


def _csv_as_record(row: dict[str, str]) -> dict[str, Any]:
    try:
        payload = json.loads(row["payload"])
        seq = int(row["seq"])
    except (ValueError, KeyError, TypeError):
        return {}
    return {
        **row,
        "seq": seq,
        "payload": payload,
        "channel": row.get("channel") or None,
        "correlation_id": row.get("correlation_id") or None,
    }
