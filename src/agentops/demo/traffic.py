"""Seeded, realistic airline customer-service traffic for the demo (pure: no I/O).

Each conversation is a generic-shape platform record whose transcript shows what
happened: policy violations are visible in the messages (a booking change without an
explicit "yes", acting before identifying the user, changing a basic-economy flight, a
needless transfer), and escalations are `transfer_to_human_agents` tool calls. Minor
slips (several tool calls at once, talking while calling a tool) come on top of the
profile's violation rate, as they do not count as violations under the airline rubric.
"""

import hashlib
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agentops.ingestion.transcripts import TRANSFER_TOOL

# The rubric criterion (deployments/rubric.example.yaml) each injected fault breaks.
NO_CONFIRMATION = "explicit-confirmation"
NO_USER_ID = "identify-customer-first"
INELIGIBLE_CHANGE = "booking-rule-eligibility"
NEEDLESS_TRANSFER = "appropriate-transfer"
PARALLEL_TOOLS = "one-action-per-turn"  # minor: recorded, but not a violation

SYSTEM_PROMPT = (
    "You are the customer-service assistant of a passenger airline. You can book, modify "
    "and cancel reservations using the tools provided. Identify the user by user id before "
    "changing anything, list the details of any change and wait for the user's explicit "
    "yes, make one tool call at a time, and transfer to a human agent only when the "
    "request is outside what your tools can do."
)

FIRST_NAMES = ["mia", "omar", "amelia", "noah", "sofia", "liam", "yara", "ethan", "chen", "lucas"]
LAST_NAMES = ["li", "rossi", "sanchez", "kim", "garcia", "patel", "muller", "nguyen", "silva"]
AIRPORTS = ["JFK", "SEA", "LAX", "ORD", "ATL", "DFW", "DEN", "SFO", "BOS", "MIA", "PHX", "IAH"]
CABINS = ["economy", "business"]
INTENTS = ["flight-change", "cancellation", "new-booking", "baggage"]
INTENT_WEIGHTS = [0.4, 0.25, 0.25, 0.1]
CHANNELS = ["chat", "voice", "email"]
CHANNEL_WEIGHTS = [0.7, 0.2, 0.1]

CALM_OPENINGS = {
    "flight-change": "Hi, I'd like to move my flight to {origin}-{destination} to a later date.",
    "cancellation": "Hello, I need to cancel my upcoming trip from {origin} to {destination}.",
    "new-booking": "Hi! I'm looking to book a one-way flight from {origin} to {destination}.",
    "baggage": "Hi there, I want to add checked bags to my trip from {origin} to {destination}.",
}
FRUSTRATED_OPENINGS = {
    "flight-change": "This is the third time I'm asking. I need my {origin}-{destination} "
    "flight moved, my plans changed and this is really frustrating.",
    "cancellation": "Honestly this has been a terrible week. Cancel my trip from {origin} "
    "to {destination}, I can't deal with this anymore.",
    "new-booking": "Your website keeps failing and I'm annoyed. I just need a flight from "
    "{origin} to {destination}.",
    "baggage": "I'm really upset, the app wouldn't let me add bags to my {origin} to "
    "{destination} trip. Fix it please.",
}
CALM_CLOSINGS = ["Thank you, that's perfect!", "Great, thanks a lot for the help.", "Wonderful."]
UNHAPPY_CLOSINGS = [
    "Fine. This took way too long and I'm not happy about it.",
    "Whatever. This was a frustrating experience.",
    "Okay... I'm disappointed, honestly.",
]
CONFIRMATIONS = ["Yes, please go ahead.", "Yes, that's right.", "Yes, do it."]
HUMAN_REQUESTS = [
    "This is ridiculous. I want to talk to a real person, now.",
    "I'm done with this bot. Get me a human agent please.",
    "Useless. Let me speak to a supervisor.",
]
OUT_OF_SCOPE_REQUESTS = [
    "Also, my bag never arrived on my last flight and I need to file a lost-luggage claim.",
    "And I need wheelchair assistance arranged at the departure airport.",
    "I also want to file a formal complaint about how the crew treated me last week.",
]


@dataclass(frozen=True)
class VersionProfile:
    """How one agent version behaves: violation and escalation rates and latency."""

    version: str
    violation_rate: float
    escalation_rate: float
    latency_ms_median: int
    latency_ms_p95: int

    def __post_init__(self) -> None:
        for name in ("violation_rate", "escalation_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")
        if not 0 < self.latency_ms_median <= self.latency_ms_p95:
            raise ValueError("latency needs 0 < latency_ms_median <= latency_ms_p95")


DEMO_PROFILES: dict[str, VersionProfile] = {
    "v1": VersionProfile("v1", violation_rate=0.02, escalation_rate=0.08,
                         latency_ms_median=1200, latency_ms_p95=2500),
    "v2": VersionProfile("v2", violation_rate=0.30, escalation_rate=0.30,
                         latency_ms_median=2200, latency_ms_p95=5000),
    "v3": VersionProfile("v3", violation_rate=0.02, escalation_rate=0.07,
                         latency_ms_median=1150, latency_ms_p95=2400),
}  # fmt: skip


@dataclass(frozen=True)
class LabelledConversation:
    """A generated record plus the generator's hidden truth (for tests, never reviewers)."""

    record: dict[str, Any]
    broken: frozenset[str]
    escalated: bool


@dataclass(frozen=True)
class _Scenario:
    """The facts one conversation is about."""

    intent: str
    user_id: str
    first_name: str
    last_name: str
    reservation_id: str
    origin: str
    destination: str
    travel_date: str
    new_date: str
    cabin: str
    flight_number: str
    new_flight_number: str
    price: int
    payment_id: str


class _Transcript:
    """Builds an OpenAI-style message list with deterministic tool-call ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]

    def user(self, text: str) -> None:
        """The customer says something."""
        self.messages.append({"role": "user", "content": text})

    def say(self, text: str) -> None:
        """The assistant answers in words."""
        self.messages.append({"role": "assistant", "content": text})

    def call(
        self, name: str, arguments: dict[str, Any], result: Any, *, content: str | None = None
    ) -> None:
        """The assistant calls one tool and gets its result."""
        self.calls([(name, arguments, result)], content=content)

    def calls(
        self, calls: list[tuple[str, dict[str, Any], Any]], *, content: str | None = None
    ) -> None:
        """The assistant calls several tools in one turn; the results follow in order."""
        tool_calls, answers = [], []
        for name, arguments, result in calls:
            call_id = f"call_{self.rng.getrandbits(64):016x}"
            tool_calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            )
            text = result if isinstance(result, str) else json.dumps(result)
            answers.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": text})
        self.messages.append({"role": "assistant", "content": content, "tool_calls": tool_calls})
        self.messages.extend(answers)


def generate_conversations(
    *,
    agent: str,
    version: str,
    profile: VersionProfile,
    start: datetime,
    count: int,
    spacing: timedelta,
    seed: int,
) -> list[dict[str, Any]]:
    """Generic-shape conversation records, one every `spacing` from `start`, fully seeded."""
    labelled = labelled_conversations(
        agent=agent,
        version=version,
        profile=profile,
        start=start,
        count=count,
        spacing=spacing,
        seed=seed,
    )
    return [item.record for item in labelled]


def labelled_conversations(
    *,
    agent: str,
    version: str,
    profile: VersionProfile,
    start: datetime,
    count: int,
    spacing: timedelta,
    seed: int,
) -> list[LabelledConversation]:
    """Like generate_conversations, but each record comes with what the generator injected."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    if count < 0:
        raise ValueError("count must not be negative")
    if spacing <= timedelta(0):
        raise ValueError("spacing must be positive")
    rng = random.Random(f"{agent}|{version}|{seed}")
    start = start.astimezone(UTC)
    return [
        _one_conversation(
            rng, agent=agent, version=version, profile=profile, started_at=start + index * spacing
        )
        for index in range(count)
    ]


def _one_conversation(
    rng: random.Random, *, agent: str, version: str, profile: VersionProfile, started_at: datetime
) -> LabelledConversation:
    violated = rng.random() < profile.violation_rate
    escalated = rng.random() < profile.escalation_rate
    slipped = rng.random() < profile.violation_rate / 2
    scenario = _scenario(rng, started_at)
    kind = _violation_kind(rng, scenario, escalated=escalated) if violated else None
    if kind == INELIGIBLE_CHANGE:
        scenario = replace(scenario, cabin="basic_economy")
    frustrated = rng.random() < (0.75 if violated or escalated else 0.08)
    transcript = _Transcript(rng)
    slipped = _play(
        transcript,
        rng,
        scenario,
        kind=kind,
        escalated=escalated,
        frustrated=frustrated,
        slip=slipped,
    )
    started = started_at.isoformat()
    record = {
        "id": _conversation_id(agent, version, started, rng),
        "messages": transcript.messages,
        "started_at": started,
        "channel": rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0],
        "intent": scenario.intent,
        "latency_ms": _latency_ms(rng, profile),
        "agent_version": version,
    }
    broken = frozenset(label for label in (kind, PARALLEL_TOOLS if slipped else None) if label)
    return LabelledConversation(record=record, broken=broken, escalated=escalated)


def _conversation_id(agent: str, version: str, started: str, rng: random.Random) -> str:
    digest = hashlib.sha256(f"{agent}|{version}|{started}|{rng.getrandbits(64)}".encode())
    return f"conv-{digest.hexdigest()[:16]}"


def _latency_ms(rng: random.Random, profile: VersionProfile) -> int:
    """Log-normal latency whose median and 95th percentile match the profile."""
    sigma = (math.log(profile.latency_ms_p95) - math.log(profile.latency_ms_median)) / 1.6449
    return max(1, round(rng.lognormvariate(math.log(profile.latency_ms_median), sigma)))


def _violation_kind(rng: random.Random, scenario: _Scenario, *, escalated: bool) -> str:
    kinds = [NO_CONFIRMATION]
    if scenario.intent != "new-booking":
        kinds.append(NO_USER_ID)  # a booking cannot be made without a user id at all
    if scenario.intent == "flight-change":
        kinds.append(INELIGIBLE_CHANGE)
    if escalated:
        kinds.append(NEEDLESS_TRANSFER)
    return rng.choice(kinds)


def _scenario(rng: random.Random, started_at: datetime) -> _Scenario:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    origin, destination = rng.sample(AIRPORTS, 2)
    travel_day = started_at.date() + timedelta(days=rng.randint(3, 40))
    return _Scenario(
        intent=rng.choices(INTENTS, INTENT_WEIGHTS)[0],
        user_id=f"{first}_{last}_{rng.randint(1000, 9999)}",
        first_name=first.capitalize(),
        last_name=last.capitalize(),
        reservation_id="".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=6)),
        origin=origin,
        destination=destination,
        travel_date=travel_day.isoformat(),
        new_date=(travel_day + timedelta(days=rng.randint(1, 5))).isoformat(),
        cabin=rng.choice(CABINS),
        flight_number=f"HAT{rng.randint(100, 299)}",
        new_flight_number=f"HAT{rng.randint(300, 499)}",
        price=rng.randint(90, 900),
        payment_id=f"credit_card_{rng.randint(1000000, 9999999)}",
    )


def _play(
    t: _Transcript,
    rng: random.Random,
    s: _Scenario,
    *,
    kind: str | None,
    escalated: bool,
    frustrated: bool,
    slip: bool,
) -> bool:
    """Write the whole conversation; returns whether the minor tool-call slip made it in."""
    openings = FRUSTRATED_OPENINGS if frustrated else CALM_OPENINGS
    t.user(openings[s.intent].format(origin=s.origin, destination=s.destination))
    if escalated and kind is None and rng.random() < 0.5:
        # The user wants a person straight away: a legitimate early transfer.
        t.say("I'm sorry for the trouble. I can help with that here if you share your user id.")
        t.user(rng.choice(HUMAN_REQUESTS))
        _transfer(t, s, reason="User asked for a human agent.")
        return False
    _identify(t, rng, s, skip_user_id=kind == NO_USER_ID, slip=slip)
    if kind == NEEDLESS_TRANSFER:
        # v2's failure mode: punting a routine, in-scope request to a human.
        _transfer(t, s, reason=f"User needs help with a {s.intent.replace('-', ' ')}.")
        return slip
    if escalated and kind is None:
        t.user(rng.choice(OUT_OF_SCOPE_REQUESTS))
        t.say(
            "I'm sorry, that is outside what I'm able to do with my tools. Would you like me "
            "to transfer you to a human agent who can look into it?"
        )
        t.user("Yes, please transfer me to a human agent.")
        _transfer(t, s, reason="Request outside the assistant's scope.")
        return slip
    _act(t, rng, s, skip_confirmation=kind == NO_CONFIRMATION)
    if escalated:
        if kind == NO_CONFIRMATION:
            t.user("Wait, I never agreed to that! I want to talk to a human agent right now.")
        else:
            t.user(rng.choice(HUMAN_REQUESTS))
        _transfer(t, s, reason="User is unhappy and asked for a human agent.")
        return slip
    unhappy = frustrated or kind is not None
    t.user(rng.choice(UNHAPPY_CLOSINGS if unhappy else CALM_CLOSINGS))
    t.say("I'm sorry for the trouble. Have a safe trip." if unhappy else "You're welcome!")
    return slip


def _identify(
    t: _Transcript, rng: random.Random, s: _Scenario, *, skip_user_id: bool, slip: bool
) -> None:
    """Get the user id (unless skipped), then look up what the request is about."""
    reservation_lookup = (
        "get_reservation_details",
        {"reservation_id": s.reservation_id},
        _reservation(s),
    )
    if skip_user_id:
        t.say("I can help with that. What is the reservation number?")
        t.user(f"It's {s.reservation_id}.")
        t.call(*reservation_lookup, content="Let me pull that up for you." if slip else None)
        return
    t.say("I can help with that. Could you please share your user id first?")
    if s.intent == "new-booking":
        t.user(f"Sure, my user id is {s.user_id}. I'd like to travel on {s.travel_date}.")
        lookup = (
            "search_direct_flight",
            {"origin": s.origin, "destination": s.destination, "date": s.travel_date},
            _flights(s, s.travel_date, s.flight_number),
        )
    else:
        t.user(f"Sure, it's {s.user_id} and the reservation number is {s.reservation_id}.")
        lookup = reservation_lookup  # type: ignore[assignment]
    profile = ("get_user_details", {"user_id": s.user_id}, _user(s))
    if slip and rng.random() < 0.5:
        t.calls([profile, lookup])
    elif slip:
        t.call(*profile, content="Thanks! One moment while I look up your profile.")
        t.call(*lookup)
    else:
        t.call(*profile)
        t.call(*lookup)


def _act(t: _Transcript, rng: random.Random, s: _Scenario, *, skip_confirmation: bool) -> None:
    """Propose the change, get (or skip) the user's yes, and perform it."""
    action, arguments, result, summary = _ACTIONS[s.intent](s)
    if s.intent == "flight-change":
        search = {"origin": s.origin, "destination": s.destination, "date": s.new_date}
        t.call("search_direct_flight", search, _flights(s, s.new_date, s.new_flight_number))
    if skip_confirmation and rng.random() < 0.5:
        t.call(action, arguments, result)  # acts without proposing anything
    else:
        t.say(f"Here is what I will do: {summary}. Shall I go ahead?")
        if skip_confirmation:
            t.user("Hmm, what would that cost me in total? I'm not sure yet.")
            t.call(action, arguments, result)  # acts on a question, not a yes
        else:
            t.user(rng.choice(CONFIRMATIONS))
            t.call(action, arguments, result)
    t.say(f"Done: {summary}. Is there anything else I can help with?")


def _transfer(t: _Transcript, s: _Scenario, *, reason: str) -> None:
    summary = f"{reason} Reservation {s.reservation_id}."
    t.call(TRANSFER_TOOL, {"summary": summary}, "Transfer successful")
    t.say("YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON.")


def _change_flight(s: _Scenario) -> tuple[str, dict[str, Any], Any, str]:
    arguments = {
        "reservation_id": s.reservation_id,
        "cabin": s.cabin,
        "flights": [{"flight_number": s.new_flight_number, "date": s.new_date}],
        "payment_id": s.payment_id,
    }
    summary = (
        f"move reservation {s.reservation_id} to flight {s.new_flight_number} on {s.new_date} "
        f"in {s.cabin}, charging any fare difference to your card"
    )
    return "update_reservation_flights", arguments, {**_reservation(s), **arguments}, summary


def _cancel(s: _Scenario) -> tuple[str, dict[str, Any], Any, str]:
    summary = f"cancel reservation {s.reservation_id} and refund ${s.price} to the original card"
    result = {**_reservation(s), "status": "cancelled"}
    return "cancel_reservation", {"reservation_id": s.reservation_id}, result, summary


def _book(s: _Scenario) -> tuple[str, dict[str, Any], Any, str]:
    arguments = {
        "user_id": s.user_id,
        "origin": s.origin,
        "destination": s.destination,
        "flight_type": "one_way",
        "cabin": s.cabin,
        "flights": [{"flight_number": s.flight_number, "date": s.travel_date}],
        "passengers": [{"first_name": s.first_name, "last_name": s.last_name}],
        "payment_methods": [{"payment_id": s.payment_id, "amount": s.price}],
        "total_baggages": 0,
        "nonfree_baggages": 0,
        "insurance": "no",
    }
    summary = (
        f"book flight {s.flight_number} from {s.origin} to {s.destination} on {s.travel_date} "
        f"in {s.cabin} for {s.first_name} {s.last_name} at ${s.price}"
    )
    result = {**arguments, "reservation_id": s.reservation_id}
    return "book_reservation", arguments, result, summary


def _add_bags(s: _Scenario) -> tuple[str, dict[str, Any], Any, str]:
    arguments = {
        "reservation_id": s.reservation_id,
        "total_baggages": 2,
        "nonfree_baggages": 1,
        "payment_id": s.payment_id,
    }
    summary = f"add 2 checked bags to reservation {s.reservation_id}, one of them at $50"
    return "update_reservation_baggages", arguments, {**_reservation(s), **arguments}, summary


_ACTIONS: dict[str, Callable[[_Scenario], tuple[str, dict[str, Any], Any, str]]] = {
    "flight-change": _change_flight,
    "cancellation": _cancel,
    "new-booking": _book,
    "baggage": _add_bags,
}


def _user(s: _Scenario) -> dict[str, Any]:
    return {
        "user_id": s.user_id,
        "name": {"first_name": s.first_name, "last_name": s.last_name},
        "email": f"{s.first_name.lower()}.{s.last_name.lower()}@example.com",
        "membership": "silver",
        "payment_methods": {s.payment_id: {"source": "credit_card", "id": s.payment_id}},
        "reservations": [s.reservation_id],
    }


def _reservation(s: _Scenario) -> dict[str, Any]:
    return {
        "reservation_id": s.reservation_id,
        "user_id": s.user_id,
        "origin": s.origin,
        "destination": s.destination,
        "flight_type": "one_way",
        "cabin": s.cabin,
        "flights": [
            {
                "flight_number": s.flight_number,
                "origin": s.origin,
                "destination": s.destination,
                "date": s.travel_date,
                "price": s.price,
            }
        ],
        "passengers": [{"first_name": s.first_name, "last_name": s.last_name}],
        "insurance": "no",
    }


def _flights(s: _Scenario, date: str, flight_number: str) -> list[dict[str, Any]]:
    return [
        {
            "flight_number": flight_number,
            "origin": s.origin,
            "destination": s.destination,
            "date": date,
            "status": "available",
            "prices": {s.cabin: s.price},
        }
    ]
