"""What agent names, version labels and email addresses may look like (pure)."""

import re

from agentops.errors import RuleViolation

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
EMAIL_PATTERN = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+\.[^\s@<>()\[\],;:\"\\]+")


def check_name(value: str, *, what: str) -> str:
    """The name unchanged if it is a plain label (letters, digits, '.', '_', '-'), else refuse."""
    if not NAME_PATTERN.fullmatch(value):
        raise RuleViolation(
            f"{what} {value[:80]!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def check_email(value: str) -> str:
    """The address unchanged if it looks like one plain email address, else refuse."""
    if len(value) > 254 or not EMAIL_PATTERN.fullmatch(value):
        raise RuleViolation(f"not an email address: {value[:80]!r}")
    return value
