"""Signed checkpoints: copies of the tree head kept outside the database.

A checkpoint file signs (tree size, chain head hash, Merkle root, time). Its sidecar
lists the hash of every event since the previous checkpoint, so when someone rewrites
the trail and recomputes every hash after their edit, verification names the first
event that no longer matches what was signed.
"""

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from agentops.audit.chain import ChainProblem
from agentops.audit.merkle import MerkleFrontier
from agentops.audit.signing import key_id, sign_document, signature_valid
from agentops.errors import AgentOpsError

CHECKPOINT_FORMAT = "agentops-audit-checkpoint/1"
_PREFIX = "checkpoint-"


class CheckpointError(AgentOpsError):
    """A checkpoint directory cannot be used."""


@dataclass(frozen=True)
class TreeHead:
    """What a checkpoint signs: how many events, the chain's last hash, the Merkle root."""

    tree_size: int
    chain_head: str
    merkle_root: str


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint file and its sidecar of event hashes."""

    path: Path
    body: dict[str, Any]
    signature: str

    @property
    def tree_size(self) -> int:
        """Events covered."""
        return int(self.body["tree_size"])

    @property
    def hashes_from_seq(self) -> int:
        """The sidecar lists events after this seq, up to tree_size."""
        return int(self.body["hashes_from_seq"])

    @property
    def hashes_path(self) -> Path:
        """The sidecar file."""
        return self.path.with_suffix(".hashes")

    @property
    def label(self) -> str:
        """How messages name this checkpoint."""
        return f"{self.path.name} (signed {self.body['signed_at']})"


def checkpoint_name(tree_size: int) -> str:
    """The file name of the checkpoint at this size; zero-padded so names sort by size."""
    return f"{_PREFIX}{tree_size:012d}.json"


def checkpoint_files(directory: Path) -> list[Path]:
    """The checkpoint files in a directory, oldest (smallest) first."""
    if not directory.exists():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    if not directory.is_dir():
        raise CheckpointError(f"{directory} is not a directory")
    return sorted(directory.glob(f"{_PREFIX}*.json"))


def latest_size(directory: Path) -> int:
    """The tree size of the newest checkpoint in the directory (0 if none yet)."""
    if not directory.exists():
        return 0
    sizes = [_size_from_name(path) for path in checkpoint_files(directory)]
    return max((size for size in sizes if size is not None), default=0)


def _size_from_name(path: Path) -> int | None:
    digits = path.stem.removeprefix(_PREFIX)
    return int(digits) if digits.isdigit() else None


def write_checkpoint(
    directory: Path,
    *,
    key: Ed25519PrivateKey,
    head: TreeHead,
    hashes_from_seq: int,
    event_hashes: Iterable[str],
    signed_at: datetime,
) -> Checkpoint:
    """Write the sidecar, then the signed checkpoint naming its digest; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / checkpoint_name(head.tree_size)
    sidecar = path.with_suffix(".hashes")
    digest = hashlib.sha256()
    count = 0
    partial = sidecar.with_name(sidecar.name + ".partial")
    with partial.open("w", encoding="ascii") as handle:
        for event_hash in event_hashes:
            line = event_hash + "\n"
            handle.write(line)
            digest.update(line.encode("ascii"))
            count += 1
    if count != head.tree_size - hashes_from_seq:
        partial.unlink()
        raise CheckpointError(
            f"expected {head.tree_size - hashes_from_seq} event hashes, read {count}"
        )
    body = {
        "format": CHECKPOINT_FORMAT,
        "tree_size": head.tree_size,
        "chain_head": head.chain_head,
        "merkle_root": head.merkle_root,
        "signed_at": signed_at.isoformat(),
        "hashes_from_seq": hashes_from_seq,
        "hashes_sha256": digest.hexdigest(),
        "key_id": key_id(key.public_key()),
    }
    checkpoint = Checkpoint(path=path, body=body, signature=sign_document(key, body))
    partial.replace(sidecar)
    path.write_text(
        json.dumps({"checkpoint": body, "signature": checkpoint.signature}, indent=2) + "\n",
        encoding="utf-8",
    )
    return checkpoint


def load_checkpoints(
    directory: Path, *, public_key: Ed25519PublicKey
) -> tuple[list[Checkpoint], list[str]]:
    """Checkpoints whose signature and sidecar check out, and a message per one that fails."""
    good: list[Checkpoint] = []
    problems: list[str] = []
    for path in checkpoint_files(directory):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            body, signature = document["checkpoint"], document["signature"]
            if body.get("format") != CHECKPOINT_FORMAT:
                raise ValueError
            checkpoint = Checkpoint(path=path, body=body, signature=signature)
            checkpoint.tree_size, checkpoint.hashes_from_seq  # noqa: B018 (validates both)
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            problems.append(f"{path.name}: not a readable agentops checkpoint")
            continue
        if not signature_valid(public_key, body, signature):
            problems.append(
                f"{path.name}: signature does not match (edited, or signed with another key)"
            )
            continue
        if _file_sha256(checkpoint.hashes_path) != body["hashes_sha256"]:
            problems.append(f"{checkpoint.hashes_path.name}: missing or changed since signing")
            continue
        good.append(checkpoint)
    return good, problems


def _file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


@dataclass
class _Active:
    checkpoint: Checkpoint
    handle: IO[str]
    lines: Iterator[str]
    next_seq: int
    differed: bool = False


@dataclass
class CheckpointMatcher:
    """Compares the trail with each checkpoint as the events stream past, in seq order."""

    checkpoints: list[Checkpoint]
    problems: list[ChainProblem] = field(default_factory=list)
    _waiting: list[Checkpoint] = field(default_factory=list)
    _active: list[_Active] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._waiting = sorted(self.checkpoints, key=lambda c: c.hashes_from_seq, reverse=True)

    def observe(self, seq: int, stored_hash: str, frontier: MerkleFrontier) -> None:
        """Check one event (already appended to frontier) against every checkpoint covering it."""
        while self._waiting and self._waiting[-1].hashes_from_seq < seq:
            checkpoint = self._waiting.pop()
            handle = checkpoint.hashes_path.open("r", encoding="ascii")
            self._active.append(
                _Active(checkpoint, handle, iter(handle), checkpoint.hashes_from_seq + 1)
            )
        if not self._active:
            return
        for active in list(self._active):
            if seq > active.checkpoint.tree_size:
                self._close(active)
                continue
            signed = ""
            while active.next_seq <= seq:
                signed = next(active.lines, "").strip()
                active.next_seq += 1
            if signed != stored_hash and not active.differed:
                active.differed = True
                self.problems.append(
                    ChainProblem(
                        seq,
                        f"differs from signed checkpoint {active.checkpoint.label}: "
                        "the first event changed after it was signed",
                    )
                )
            if seq == active.checkpoint.tree_size:
                body = active.checkpoint.body
                if not active.differed and (
                    stored_hash != body["chain_head"] or frontier.root() != body["merkle_root"]
                ):
                    self.problems.append(
                        ChainProblem(seq, f"tree head differs from {active.checkpoint.label}")
                    )
                self._close(active)

    def finish(self, last_seq: int) -> list[ChainProblem]:
        """Report checkpoints the trail no longer reaches; return every problem found."""
        for active in list(self._active):
            self._close(active)
            self._missing(active.checkpoint, last_seq)
        for checkpoint in self._waiting:
            self._missing(checkpoint, last_seq)
        self._waiting = []
        return self.problems

    def _missing(self, checkpoint: Checkpoint, last_seq: int) -> None:
        self.problems.append(
            ChainProblem(
                last_seq + 1,
                f"missing: {checkpoint.label} covers {checkpoint.tree_size} events, "
                f"the trail ends at {last_seq}",
            )
        )

    def _close(self, active: _Active) -> None:
        active.handle.close()
        self._active.remove(active)
