"""Mask credentials in text that came from outside (error bodies, remote messages): pure."""

import re
from collections.abc import Iterable

MASK = "***"
MIN_SECRET_LENGTH = 4

# (pattern, replacement): the replacement keeps the label and masks only the value.
_CREDENTIAL_PATTERNS = (
    # "Authorization: Bearer abc", "token abc"
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{6,}"), rf"\1\2{MASK}"),
    # key=value and "key": "value" pairs whose key names a credential
    (
        re.compile(
            r"(?i)(\"?\b[\w-]*(?:token|secret|password|passwd|api[_-]?key|authorization|signature)"
            r"[\w-]*\"?\s*[:=]\s*\"?)([^\s\"',;&}]{3,})"
        ),
        rf"\1{MASK}",
    ),
    # Well-known token shapes: Slack, GitHub, OpenAI-style keys, AWS key ids, JWTs.
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9-]{8,}"), MASK),
    (re.compile(r"\b(?:ghp|gho|ghs|github_pat|sk|pk|rk)[-_][A-Za-z0-9_-]{12,}"), MASK),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}"), MASK),
)


def redact(text: str, *, secrets: Iterable[str | None] = ()) -> str:
    """The text with the given secret values and anything credential-shaped masked."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# Every credential pattern above needs one of these (in any case): text holding none
# cannot hold a credential. Substring tests are far cheaper than the patterns' scans.
_CREDENTIAL_HINTS = (
    "bearer",
    "basic",
    "token",
    "secret",
    "passw",
    "api",
    "authorization",
    "signature",
    "xox",
    "gh",
    "k-",
    "k_",
    "akia",
    "eyj",
)


def redact_credentials(text: str) -> str:
    """redact() without given secrets, returning text untouched when nothing looks like one."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _CREDENTIAL_HINTS):
        return text
    return redact(text)
