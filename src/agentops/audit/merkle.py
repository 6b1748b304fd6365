"""A Merkle tree over the chain's event hashes (RFC 6962 / Certificate Transparency shape).

The chain proves order; the tree adds compact proofs: that one event is in a signed tree
head (inclusion) and that a later head extends an earlier one (consistency). The tree is
kept as its right edge (the "frontier" of perfect subtrees), so appending and reading
the root take O(log n) memory however long the trail grows.
"""

import hashlib
from collections.abc import Sequence
from hashlib import sha256

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(event_hash_hex: str) -> bytes:
    """The tree leaf for one event (domain-separated from inner nodes)."""
    return hashlib.sha256(b"\x00" + bytes.fromhex(event_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An inner node over two children."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleFrontier:
    """The right edge of a growing tree: one perfect-subtree root per set bit of its size."""

    def __init__(self, nodes: Sequence[tuple[int, bytes]] = ()) -> None:
        sizes = [size for size, _ in nodes]
        self.size = sum(sizes)
        if sizes != _subtree_sizes(self.size):
            raise ValueError("not the right edge of a Merkle tree")
        # Largest subtree first; the sizes are the set bits of self.size, high to low.
        self._digests: list[bytes] = [digest for _, digest in nodes]

    @property
    def nodes(self) -> list[tuple[int, bytes]]:
        """(subtree size, root) pairs, largest first."""
        return list(zip(_subtree_sizes(self.size), self._digests, strict=True))

    def append(self, event_hash_hex: str) -> None:
        """Add one event's leaf, merging equal-sized subtrees."""
        digest = sha256(b"\x00" + bytes.fromhex(event_hash_hex)).digest()
        digests = self._digests
        count = self.size
        # Each trailing 1 bit of the old size is a subtree the same size as the new one.
        while count & 1:
            digest = sha256(b"\x01" + digests.pop() + digest).digest()
            count >>= 1
        digests.append(digest)
        self.size += 1

    def root(self) -> str:
        """The RFC 6962 tree head hash over every leaf appended so far."""
        if not self._digests:
            return EMPTY_ROOT
        digest = self._digests[-1]
        for left in reversed(self._digests[:-1]):
            digest = node_hash(left, digest)
        return digest.hex()

    def to_json(self) -> list[list[int | str]]:
        """Plain data for storing on the chain head row."""
        return [[size, digest.hex()] for size, digest in self.nodes]

    @classmethod
    def from_json(cls, data: Sequence[Sequence[int | str]]) -> "MerkleFrontier":
        """Rebuild from to_json's output."""
        return cls([(int(size), bytes.fromhex(str(digest))) for size, digest in data])


def _subtree_sizes(size: int) -> list[int]:
    return [1 << bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _largest_power_of_two_below(len(leaves))
    return node_hash(_subtree_root(leaves[:k]), _subtree_root(leaves[k:]))


def inclusion_proof(event_hashes: Sequence[str], index: int) -> list[str]:
    """The audit path proving event_hashes[index] is in the tree of all event_hashes."""
    if not 0 <= index < len(event_hashes):
        raise ValueError(f"index {index} outside a tree of {len(event_hashes)} leaves")
    return [digest.hex() for digest in _path(index, [leaf_hash(h) for h in event_hashes])]


def _path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _largest_power_of_two_below(len(leaves))
    if index < k:
        return [*_path(index, leaves[:k]), _subtree_root(leaves[k:])]
    return [*_path(index - k, leaves[k:]), _subtree_root(leaves[:k])]


def verify_inclusion(
    *, event_hash_hex: str, index: int, tree_size: int, proof: Sequence[str], root: str
) -> bool:
    """Check an inclusion proof against a tree head (RFC 9162, section 2.1.3.2)."""
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    digest = leaf_hash(event_hash_hex)
    for sibling_hex in proof:
        sibling = bytes.fromhex(sibling_hex)
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            digest = node_hash(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and digest.hex() == root
