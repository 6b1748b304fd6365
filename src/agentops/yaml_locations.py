"""Point a validation error at the YAML that caused it (pure)."""

from collections.abc import Sequence
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
