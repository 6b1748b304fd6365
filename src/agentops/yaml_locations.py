"""Point a validation error at the YAML that caused it (pure)."""

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import yaml


def dotted_path(parts: Sequence[str | int]) -> str:
    """A location such as ("triggers", 0, "p1") written the way people read it: triggers[0].p1."""
    rendered = ""
    for part in parts:
        rendered += f"[{part}]" if isinstance(part, int) else (f".{part}" if rendered else part)
    return rendered


def mapping_entry(node: "yaml.Node", key: str) -> "tuple[yaml.Node, yaml.Node] | None":
    """The (key node, value node) pair stored under key in a YAML mapping node, if any."""
    import yaml  # only once a YAML file is being read: importers such as `review next` don't

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if str(key_node.value) == key:
                return key_node, value_node
    return None


def duplicate_keys(node: "yaml.Node") -> "Iterator[yaml.Node]":
    """Each key node that repeats a key of its mapping, in document order.

    PyYAML silently keeps the last of two equal keys; agentops files must not.
    """
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield key_node
            seen.add(key)
            yield from duplicate_keys(value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from duplicate_keys(item)
