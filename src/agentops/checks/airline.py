"""Python checks for the tau-bench airline policy: rules that need the tools' own data (pure)."""

from typing import Any, cast

from agentops.checks.conversation import (
    NOT_APPLICABLE,
    PASS,
    CheckResult,
    Conversation,
    ToolCall,
    flag,
)
from agentops.checks.rules import PythonCheck

# Free checked bags per passenger, by membership tier and cabin (policy: "Checked bag allowance").
FREE_BAGS = {
    "regular": {"basic_economy": 0, "economy": 1, "business": 2},
    "silver": {"basic_economy": 1, "economy": 2, "business": 3},
    "gold": {"basic_economy": 2, "economy": 3, "business": 3},
}
# At most one certificate, one credit card and three gift cards per reservation.
PAYMENT_LIMITS = {"certificate": 1, "credit_card": 1, "gift_card": 3}
WRITES_WITH_FLIGHTS = ("book_reservation", "update_reservation_flights")


def _profile(conversation: Conversation, call: ToolCall, user_id: object) -> dict[str, Any] | None:
    """The user's profile as an earlier get_user_details returned it."""
    for lookup in reversed(conversation.calls_before(call.turn, "get_user_details")):
        if lookup.arguments.get("user_id") == user_id:
            found = lookup.result_json()
            if isinstance(found, dict):
                return found
    return None


def _reservation(conversation: Conversation, call: ToolCall) -> dict[str, Any] | None:
    """The reservation as an earlier get_reservation_details returned it."""
    wanted = call.arguments.get("reservation_id")
    for lookup in reversed(conversation.calls_before(call.turn, "get_reservation_details")):
        if lookup.arguments.get("reservation_id") == wanted:
            found = lookup.result_json()
            if isinstance(found, dict):
                return found
    return None


def _source(payment_id: str, profile: dict[str, Any] | None) -> str:
    methods = (profile or {}).get("payment_methods") or {}
    method = methods.get(payment_id) if isinstance(methods, dict) else None
    if isinstance(method, dict) and isinstance(method.get("source"), str):
        return cast(str, method["source"])
    return next((kind for kind in PAYMENT_LIMITS if payment_id.startswith(kind)), "other")


def payment_limits(conversation: Conversation, options: dict[str, Any]) -> CheckResult:
    """Pay with at most 1 certificate, 1 credit card and 3 gift cards, all in the profile."""
    watched = [
        c
        for c in conversation.calls
        if c.name in (*WRITES_WITH_FLIGHTS, "update_reservation_baggages")
    ]
    if not watched:
        return NOT_APPLICABLE
    for call in watched:
        arguments = call.arguments
        if call.name == "book_reservation":
            user_id = arguments.get("user_id")
            methods = arguments.get("payment_methods") or []
            ids = [m.get("payment_id") for m in methods if isinstance(m, dict)]
        else:
            reservation = _reservation(conversation, call) or {}
            user_id = reservation.get("user_id")
            ids = [arguments.get("payment_id")] if arguments.get("payment_id") else []
        profile = _profile(conversation, call, user_id) if user_id else None
        counts: dict[str, int] = {}
        for payment_id in ids:
            if not isinstance(payment_id, str):
                return flag(call.turn, call.name, f"payment id {payment_id!r} is not text")
            kind = _source(payment_id, profile)
            counts[kind] = counts.get(kind, 0) + 1
            known = (profile or {}).get("payment_methods")
            if isinstance(known, dict) and payment_id not in known:
                return flag(call.turn, call.name, f"{payment_id} is not in {user_id}'s profile")
        for kind, limit in PAYMENT_LIMITS.items():
            if counts.get(kind, 0) > limit:
                return flag(
                    call.turn, call.name, f"{counts[kind]} {kind} payments (at most {limit})"
                )
    return PASS


def bag_allowance(conversation: Conversation, options: dict[str, Any]) -> CheckResult:
    """Non-free bags equal the bags beyond the tier's and cabin's free allowance."""
    applicable = False
    for call in conversation.calls:
        if call.name == "book_reservation":
            details = call.arguments
        elif call.name == "update_reservation_baggages":
            details = {**(_reservation(conversation, call) or {}), **call.arguments}
        else:
            continue
        profile = _profile(conversation, call, details.get("user_id"))
        tier = (profile or {}).get("membership")
        cabin = details.get("cabin")
        passengers = details.get("passengers")
        total, nonfree = details.get("total_baggages"), details.get("nonfree_baggages")
        if tier not in FREE_BAGS or cabin not in FREE_BAGS["regular"]:
            continue  # the tier or cabin is not known from the conversation
        if not (
            isinstance(passengers, list) and isinstance(total, int) and isinstance(nonfree, int)
        ):
            continue
        applicable = True
        free = FREE_BAGS[tier][cabin] * len(passengers)
        expected = max(0, total - free)
        if nonfree != expected:
            return flag(
                call.turn,
                call.name,
                f"{tier} member, {len(passengers)} {cabin} passenger(s), {total} bags: "
                f"{expected} non-free expected, {nonfree} charged",
            )
    return PASS if applicable else NOT_APPLICABLE


def _statuses(conversation: Conversation, before: int) -> dict[tuple[str, str], str]:
    """(flight number, date) -> status, from the searches made before a turn."""
    found: dict[tuple[str, str], str] = {}
    for turn, key, status in _all_statuses(conversation):
        if turn < before:
            found[key] = status
    return found


def _all_statuses(conversation: Conversation) -> list[tuple[int, tuple[str, str], str]]:
    """Every (turn, (flight number, date), status) the searches showed, read once."""
    cached = conversation.memo.get("airline.statuses")
    if cached is not None:
        return cast("list[tuple[int, tuple[str, str], str]]", cached)
    found: list[tuple[int, tuple[str, str], str]] = []
    for call in conversation.calls:
        if call.name not in ("search_direct_flight", "search_onestop_flight", "get_flight_status"):
            continue
        date = call.arguments.get("date")
        if call.name == "get_flight_status":
            status = (call.result or "").strip().strip('"')
            found.append((call.turn, (str(call.arguments.get("flight_number")), str(date)), status))
            continue
        result = call.result_json()
        items = result if isinstance(result, list) else []
        flights = [f for item in items for f in (item if isinstance(item, list) else [item])]
        for flight_info in flights:
            if isinstance(flight_info, dict) and "flight_number" in flight_info:
                key = (str(flight_info["flight_number"]), str(flight_info.get("date", date)))
                found.append((call.turn, key, str(flight_info.get("status"))))
    conversation.memo["airline.statuses"] = found
    return found


def book_only_available(conversation: Conversation, options: dict[str, Any]) -> CheckResult:
    """Flights booked or changed to were shown with status "available"."""
    applicable = False
    for call in conversation.calls:
        if call.name not in WRITES_WITH_FLIGHTS:
            continue
        statuses = _statuses(conversation, call.turn)
        kept: set[tuple[str, str]] = set()
        if call.name == "update_reservation_flights":
            # Segments kept from the reservation were booked earlier; only new ones count.
            reservation = _reservation(conversation, call) or {}
            kept = {
                (str(f.get("flight_number")), str(f.get("date")))
                for f in reservation.get("flights") or []
                if isinstance(f, dict)
            }
        for wanted in call.arguments.get("flights") or []:
            if not isinstance(wanted, dict):
                continue
            key = (str(wanted.get("flight_number")), str(wanted.get("date")))
            if key in kept or key not in statuses:
                continue
            applicable = True
            if statuses[key] != "available":
                return flag(call.turn, call.name, f"{key[0]} on {key[1]} is {statuses[key]!r}")
    return PASS if applicable else NOT_APPLICABLE


def basic_economy_unchanged(conversation: Conversation, options: dict[str, Any]) -> CheckResult:
    """A basic economy reservation's flights are not changed (its cabin may be)."""
    applicable = False
    for call in conversation.calls:
        if call.name != "update_reservation_flights":
            continue
        reservation = _reservation(conversation, call)
        if reservation is None:
            continue
        applicable = True
        if reservation.get("cabin") != "basic_economy":
            continue
        before = {
            (f.get("flight_number"), f.get("date"))
            for f in reservation.get("flights") or []
            if isinstance(f, dict)
        }
        after = {
            (f.get("flight_number"), f.get("date"))
            for f in call.arguments.get("flights") or []
            if isinstance(f, dict)
        }
        if before != after:
            return flag(
                call.turn,
                call.name,
                f"basic economy reservation {reservation.get('reservation_id')} changed flights",
            )
    return PASS if applicable else NOT_APPLICABLE


CHECKS: dict[str, PythonCheck] = {
    "airline.payment_limits": payment_limits,
    "airline.bag_allowance": bag_allowance,
    "airline.book_only_available": book_only_available,
    "airline.basic_economy_unchanged": basic_economy_unchanged,
}
