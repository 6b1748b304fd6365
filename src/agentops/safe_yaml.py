"""YAML for the files users hand over: no aliases (so no alias bombs), bounded nesting."""

from typing import Any

import yaml


class NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses `*alias` references instead of expanding them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Refuse an alias before it is expanded: a few hundred bytes can name billions."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # types-PyYAML leaves Parser.peek_event unannotated
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in agentops files", event.start_mark
            )
        return super().compose_node(parent, index)


def safe_load(text: str) -> Any:
    """The YAML document's data, without aliases; deep nesting is a YAMLError."""
    try:
        return yaml.load(text, Loader=NoAliasLoader)
    except RecursionError:
        raise yaml.YAMLError("the YAML is nested too deeply") from None


def compose(text: str) -> Any:
    """The YAML document's node tree (for line numbers), without aliases."""
    try:
        return yaml.compose(text, Loader=NoAliasLoader)
    except RecursionError:
        raise yaml.YAMLError("the YAML is nested too deeply") from None
