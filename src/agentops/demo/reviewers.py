"""Simulated reviewers: rule-based judges that read the transcript itself (pure).

`judge_conversation` applies rubric criteria to an OpenAI-style transcript with
transparent textual heuristics; it never sees how a conversation was generated.
Criterion keys follow deployments/rubric.example.yaml; the shorter names from the
original brief are accepted as aliases. A criterion with no heuristic, or with
nothing to check in this transcript, is judged passed.
"""

import hashlib
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentops.ingestion.transcripts import TRANSFER_TOOL
from agentops.signals.sentiment import message_text

STATE_CHANGING_PREFIXES = ("book_", "cancel_", "update_", "modify_")
STATE_CHANGING_TOOLS = frozenset({"send_certificate"})
BOOKING_LOOKUP_TOOLS = frozenset({"get_reservation_details"})

# "yes" and its unmistakable equivalents; "sounds good" or "ok" alone do not count.
EXPLICIT_YES = re.compile(r"\b(yes|yeah|yep|yup|i confirm|confirmed|go ahead)\b", re.IGNORECASE)
USER_ID_TOKEN = re.compile(r"\b[a-z]+(?:_[a-z]+)+_\d{2,}\b")
USER_ID_STATED = re.compile(r"\buser\s*-?id\b\W{0,3}(?:is\s+)?[\"']?\w*\d", re.IGNORECASE)
HUMAN_REQUEST = re.compile(
    r"\b(human|real person|representative|supervisor|manager|someone else|live agent|"
    r"transfer me|speak to an agent|talk to an agent)\b",
    re.IGNORECASE,
)
OUT_OF_SCOPE = re.compile(
    r"\b(unable to|not able to|cannot|can't|can not|outside (?:of )?(?:my|the|what)|"
    r"beyond (?:my|what)|not (?:permitted|allowed|possible))\b",
    re.IGNORECASE,
)
COMPENSATION_ASKED = re.compile(
    r"\b(compensat\w*|refund|voucher|certificate|make (?:it|this) right|gesture)\b", re.IGNORECASE
)
TOOL_ERROR = re.compile(r"^\s*error\b", re.IGNORECASE)


def _tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    if message.get("role") != "assistant":
        return []
    calls = message.get("tool_calls") or []
    return [call for call in calls if isinstance(call, dict)]


def _call_name(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else ""


def _call_arguments(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    raw = function.get("arguments") if isinstance(function, dict) else None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _is_state_changing(name: str) -> bool:
    return name.startswith(STATE_CHANGING_PREFIXES) or name in STATE_CHANGING_TOOLS


def _calls_in_order(messages: Sequence[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Every assistant tool call with the index of the message that made it."""
    return [
        (index, call) for index, message in enumerate(messages) for call in _tool_calls(message)
    ]


def _speaks_to_user(message: dict[str, Any]) -> bool:
    """An assistant turn that hands the conversation back to the user (text, no tool call)."""
    return (
        message.get("role") == "assistant"
        and not _tool_calls(message)
        and bool(message_text(message).strip())
    )


def _confirmed_before(messages: Sequence[dict[str, Any]], index: int) -> bool:
    """A user said an explicit yes after the assistant last spoke to them, before `index`."""
    for message in reversed(messages[:index]):
        if message.get("role") == "user" and EXPLICIT_YES.search(message_text(message)):
            return True
        if _speaks_to_user(message):
            return False
    return False


def check_explicit_confirmation(messages: Sequence[dict[str, Any]]) -> bool:
    """Every state-changing tool call follows an explicit user "yes" to the latest proposal."""
    return all(
        _confirmed_before(messages, index)
        for index, call in _calls_in_order(messages)
        if _is_state_changing(_call_name(call))
    )


def check_identify_customer_first(messages: Sequence[dict[str, Any]]) -> bool:
    """The user id is known (looked up or stated) before bookings are looked up or changed."""
    identified = False
    for message in messages:
        if message.get("role") == "user":
            text = message_text(message)
            identified = identified or bool(
                USER_ID_TOKEN.search(text) or USER_ID_STATED.search(text)
            )
        for call in _tool_calls(message):
            name = _call_name(call)
            touches_booking = _is_state_changing(name) or name in BOOKING_LOOKUP_TOOLS
            if touches_booking and not identified:
                return False
            if name == "get_user_details":
                identified = True
    return True


def check_one_action_per_turn(messages: Sequence[dict[str, Any]]) -> bool:
    """No assistant turn makes several tool calls, or talks to the user while calling a tool."""
    for message in messages:
        calls = _tool_calls(message)
        if len(calls) > 1 or (calls and message_text(message).strip()):
            return False
    return True


def _transfer_justified(messages: Sequence[dict[str, Any]], index: int) -> bool:
    for message in messages[:index]:
        role, text = message.get("role"), message_text(message)
        if role == "user" and HUMAN_REQUEST.search(text):
            return True
        if role == "assistant" and OUT_OF_SCOPE.search(text):
            return True
        if role == "tool" and TOOL_ERROR.search(text):
            return True
    return False


def check_appropriate_transfer(messages: Sequence[dict[str, Any]]) -> bool:
    """A transfer to a human follows a request for one, a stated limit, or a tool error."""
    return all(
        _transfer_justified(messages, index)
        for index, call in _calls_in_order(messages)
        if _call_name(call) == TRANSFER_TOOL
    )


def _looked_up_cabins(messages: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Reservation id -> cabin, from get_reservation_details results in the transcript."""
    cabins: dict[str, str] = {}
    for message in messages:
        if message.get("role") != "tool":
            continue
        try:
            result = json.loads(message_text(message))
        except ValueError:
            continue
        if isinstance(result, dict) and isinstance(result.get("reservation_id"), str):
            cabin = result.get("cabin")
            if isinstance(cabin, str):
                cabins.setdefault(result["reservation_id"], cabin)
    return cabins


def check_booking_rule_eligibility(messages: Sequence[dict[str, Any]]) -> bool:
    """No flight change on a basic-economy reservation unless the cabin is upgraded with it."""
    cabins = _looked_up_cabins(messages)
    for _, call in _calls_in_order(messages):
        if _call_name(call) != "update_reservation_flights":
            continue
        arguments = _call_arguments(call)
        booked_cabin = cabins.get(str(arguments.get("reservation_id")))
        if booked_cabin == "basic_economy" and arguments.get("cabin") == "basic_economy":
            return False
    return True


def check_compensation_rules(messages: Sequence[dict[str, Any]]) -> bool:
    """A travel certificate is only sent after the user asked for compensation."""
    for index, call in _calls_in_order(messages):
        if _call_name(call) != "send_certificate":
            continue
        asked = any(
            message.get("role") == "user" and COMPENSATION_ASKED.search(message_text(message))
            for message in messages[:index]
        )
        if not asked:
            return False
    return True


CHECKS: dict[str, Callable[[Sequence[dict[str, Any]]], bool]] = {
    "explicit-confirmation": check_explicit_confirmation,
    "identify-customer-first": check_identify_customer_first,
    "one-action-per-turn": check_one_action_per_turn,
    "appropriate-transfer": check_appropriate_transfer,
    "booking-rule-eligibility": check_booking_rule_eligibility,
    "compensation-rules": check_compensation_rules,
}
ALIASES = {
    "identify-user-first": "identify-customer-first",
    "one-tool-call-at-a-time": "one-action-per-turn",
    "transfer-only-when-needed": "appropriate-transfer",
}


def judge_conversation(
    messages: list[dict[str, Any]], criteria: Sequence[tuple[str, str]]
) -> dict[str, bool]:
    """Judge each (key, description) criterion on the transcript: True = passed."""
    readable = [message for message in messages if isinstance(message, dict)]
    verdicts: dict[str, bool] = {}
    for key, _description in criteria:
        check = CHECKS.get(ALIASES.get(key, key))
        verdicts[key] = check(readable) if check is not None else True
    return verdicts


@dataclass(frozen=True)
class SimulatedReviewer:
    """A reviewer who judges by the rules but gets a judgement wrong with `error_rate`."""

    email: str
    error_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, got {self.error_rate}")

    def review(
        self, messages: list[dict[str, Any]], criteria: Sequence[tuple[str, str]]
    ) -> dict[str, bool]:
        """The rule-based verdicts, each flipped with probability error_rate."""
        verdicts = judge_conversation(messages, criteria)
        # Seeded by reviewer and transcript: the same reviewer judges the same chat the same way.
        transcript = json.dumps(messages, sort_keys=True, default=str).encode()
        digest = hashlib.sha256(transcript).hexdigest()
        rng = random.Random(f"{self.seed}|{self.email}|{digest}")
        return {
            key: verdict != (rng.random() < self.error_rate) for key, verdict in verdicts.items()
        }
