"""Ed25519 keys and signatures over canonical JSON documents (checkpoints, manifests)."""

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from agentops.audit.chain import canonical_json
from agentops.errors import AgentOpsError


class SigningKeyError(AgentOpsError):
    """A signing or verification key is missing or unreadable."""


def public_key_path(private_key: Path) -> Path:
    """Where keygen puts the public half: next to the private key, with .pub added."""
    return private_key.with_name(private_key.name + ".pub")


def generate_key(path: Path) -> Path:
    """Create an Ed25519 key pair (private key readable by its owner only); return the .pub path."""
    pub = public_key_path(path)
    if path.exists() or pub.exists():
        raise SigningKeyError(f"{path} already exists: refusing to replace a signing key")
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pub


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read the private key keygen wrote."""
    data = _read_key_file(path, "signing key", hint="create one with `agentops audit keygen`")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a public key (the .pub file keygen wrote)."""
    data = _read_key_file(
        path, "public key", hint="pass the .pub file `agentops audit keygen` wrote"
    )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} is not an Ed25519 public key")
    return key


MAX_KEY_BYTES = 64 * 1024  # a PEM key is a few hundred bytes


def _read_key_file(path: Path, what: str, *, hint: str) -> bytes:
    if path.exists() and not path.is_dir() and not path.is_file():
        raise SigningKeyError(f"{path} is not a regular file (a pipe or device cannot be a {what})")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_BYTES + 1)
        if len(data) > MAX_KEY_BYTES:
            raise SigningKeyError(f"{path} is too large to be a {what}")
        return data
    except FileNotFoundError:
        raise SigningKeyError(f"no {what} at {path}: {hint}") from None
    except IsADirectoryError:
        raise SigningKeyError(f"{path} is a directory, not a {what} file") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read {what} {path}: {exc.strerror}") from None


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key, printed so people can compare keys."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_document(key: Ed25519PrivateKey, document: dict[str, Any]) -> str:
    """Sign a document's canonical JSON; base64 signature."""
    return base64.b64encode(key.sign(canonical_json(document).encode("utf-8"))).decode("ascii")


def signature_valid(public_key: Ed25519PublicKey, document: dict[str, Any], signature: str) -> bool:
    """Whether the signature is the key's over this document."""
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, canonical_json(document).encode("utf-8"))
    except (InvalidSignature, ValueError):
        return False
    return True
