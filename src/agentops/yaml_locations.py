"""Point a validation error at the YAML that caused it (pure)."""

from collections.abc import Callable, Iterator, Sequence
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


def node_at(
    root: "yaml.Node",
    loc: Sequence[str | int],
    *,
    key_itself: bool,
    is_tag: "Callable[[yaml.Node, str | int], bool]",
) -> "tuple[yaml.Node, list[str | int]]":
    """The YAML node a pydantic error location is about, and the path walked to reach it.

    The walk stops at the first part the YAML does not have (which still joins the path),
    except a part is_tag says is a union tag pydantic added, which is skipped. With
    key_itself, a location that reaches its last key points at the key, not at its value.
    """
    import yaml

    node = root
    path: list[str | int] = []
    for position, part in enumerate(loc, start=1):
        if isinstance(part, int) and isinstance(node, yaml.SequenceNode):
            if part >= len(node.value):
                break
            node = node.value[part]
            path.append(part)
            continue
        found = mapping_entry(node, str(part))
        if found is None:
            if is_tag(node, part):
                continue
            path.append(part)
            break
        key_node, value_node = found
        path.append(part)
        is_last = position == len(loc)
        node = key_node if is_last and key_itself else value_node
    return node, path
