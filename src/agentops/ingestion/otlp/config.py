"""What the OTLP intake reads from settings, parsed: keys, escalation tools, tokens."""

from agentops.errors import AgentOpsError
from agentops.ingestion.otlp.normalise import DEFAULT_CONVERSATION_KEYS


def conversation_keys(extra: str | None) -> tuple[str, ...]:
    """The standard conversation-id attributes, then the app's own if configured."""
    keys: tuple[str, ...] = DEFAULT_CONVERSATION_KEYS
    if extra and extra.strip() and extra.strip() not in keys:
        keys = (*keys, extra.strip())
    return keys


def escalation_tools(text: str) -> frozenset[str]:
    """Tool names from a comma-separated list."""
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def parse_tokens(text: str | None) -> dict[str, str]:
    """source -> token from 'source=token,...'; AgentOpsError naming a malformed pair."""
    tokens: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        source, sep, token = pair.partition("=")
        if not sep or not source.strip() or not token.strip():
            raise AgentOpsError(
                "AGENTOPS_OTLP_TOKENS must be comma-separated source=token pairs; "
                f"found an entry without a source or token ({source.strip()[:40]!r})"
            )
        tokens[source.strip()] = token.strip()
    return tokens
