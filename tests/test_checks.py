"""Policy checks on hand-written conversations, hostile check files and the airline pack."""

import json
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agentops.checks.config import (
    CheckConfigError,
    load_check_file,
    parse_check_text,
)
from agentops.checks.conversation import Outcome

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "deployments" / "checks.example.yaml"


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def say(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def call(
    name: str, arguments: dict[str, Any], call_id: str = "c1", text: str | None = None
) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text,
        "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": name, "arguments": json.dumps(arguments)}}
        ],
    }  # fmt: skip


def result(name: str, content: object, call_id: str = "c1") -> dict[str, Any]:
    text = content if isinstance(content, str) else json.dumps(content)
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": text}


def suite(body: str) -> Any:
    text = "version: 1\nagent: bot\nchecks:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    return parse_check_text(text, source="checks.yaml")


def run_one(body: str, messages: list[dict[str, Any]]) -> Any:
    results = suite(body).run(messages)
    assert len(results) == 1
    return next(iter(results.values()))


AFFIRM = """
- name: confirm
  kind: affirmation
  tools: [cancel_reservation]
"""


def test_affirmation_passes_on_a_yes_and_flags_a_write_without_one() -> None:
    confirmed = [
        user("cancel ABC123 please"),
        say("Cancel ABC123? Please confirm."),
        user("Yes, go ahead."),
        call("cancel_reservation", {"reservation_id": "ABC123"}),
        result("cancel_reservation", {"status": "cancelled"}),
    ]
    assert run_one(AFFIRM, confirmed).outcome is Outcome.passed
    unconfirmed = [*confirmed[:2], user("What would the refund be?"), *confirmed[3:]]
    found = run_one(AFFIRM, unconfirmed)
    assert found.outcome is Outcome.flagged
    assert found.evidence.turn == 3 and found.evidence.tool == "cancel_reservation"
    assert found.evidence.quote == "What would the refund be?"
    # "yesterday" is not a yes.
    assert run_one(AFFIRM, [*confirmed[:2], user("I booked it yesterday"), *confirmed[3:]]).flagged
    assert run_one(AFFIRM, [user("hi"), say("hello")]).outcome is Outcome.not_applicable


LOOKUP = """
- name: lookup
  kind: lookup_before
  require:
    - tools: [cancel_reservation]
      lookups: [get_reservation_details]
      same: reservation_id
"""


def test_lookup_before_needs_a_lookup_of_the_same_record() -> None:
    looked = [
        user("cancel ABC123"),
        call("get_reservation_details", {"reservation_id": "ABC123"}, "a"),
        result("get_reservation_details", {"reservation_id": "ABC123"}, "a"),
        call("cancel_reservation", {"reservation_id": "ABC123"}, "b"),
        result("cancel_reservation", "ok", "b"),
    ]
    assert run_one(LOOKUP, looked).outcome is Outcome.passed
    other = [
        looked[0],
        call("get_reservation_details", {"reservation_id": "ZZZ999"}, "a"),
        *looked[2:],
    ]
    found = run_one(LOOKUP, other)
    assert found.flagged and found.evidence.turn == 4
    assert "ABC123" in found.evidence.quote
    assert run_one(LOOKUP, [looked[0], *looked[3:]]).flagged
    assert run_one(LOOKUP, looked[:3]).outcome is Outcome.not_applicable


MAX_CALLS = """
- name: one_call
  kind: max_calls_per_turn
  max: 1
  text_with_calls: false
"""


def test_max_calls_per_turn_flags_two_calls_or_text_beside_a_call() -> None:
    single = [
        user("hi"),
        call("get_user_details", {"user_id": "u1"}),
        result("get_user_details", {}),
    ]
    assert run_one(MAX_CALLS, single).outcome is Outcome.passed
    double = call("get_user_details", {"user_id": "u1"})
    double["tool_calls"].append(
        {"id": "c2", "function": {"name": "get_reservation_details", "arguments": "{}"}}
    )
    found = run_one(MAX_CALLS, [user("hi"), double])
    assert found.flagged and found.evidence.turn == 2
    assert found.evidence.quote == "2 calls: get_user_details, get_reservation_details"
    talking = [user("hi"), call("get_user_details", {"user_id": "u1"}, text="Let me look.")]
    assert run_one(MAX_CALLS, talking).evidence.quote == "Let me look."
    assert run_one(MAX_CALLS, [user("hi")]).outcome is Outcome.not_applicable


AMOUNTS = """
- name: amounts
  kind: provenance
  pattern: '\\$(\\d[\\d,]*(?:\\.\\d+)?)'
  numeric: true
  sources: [tool, user]
"""
IDS = """
- name: ids
  kind: provenance
  pattern: '\\b[A-Z0-9]{6}\\b'
  sources: [tool]
"""


def test_provenance_needs_stated_values_to_come_earlier_from_tools_or_the_user() -> None:
    grounded = [
        user("how much, and can I spend $50?"),
        call("calculate", {"expression": "1200 + 34.5"}),
        result("calculate", "1234.50"),
        say("The total is $1,234.5 and you may spend $50."),
    ]
    assert run_one(AMOUNTS, grounded).outcome is Outcome.passed
    invented = [*grounded[:3], say("The total is $1,234.5, plus a $75 fee.")]
    found = run_one(AMOUNTS, invented)
    assert found.flagged and found.evidence.turn == 4 and "$75" in found.evidence.quote
    # Stated before the tool said it: the order matters.
    assert run_one(AMOUNTS, [user("hi"), say("That is $1234.5."), *grounded[1:3]]).flagged
    assert run_one(AMOUNTS, [user("hi"), say("hello")]).outcome is Outcome.not_applicable
    ids = [user("hi"), call("book", {}), result("book", {"reservation_id": "HATHAT"})]
    assert run_one(IDS, [*ids, say("Booked: HATHAT.")]).outcome is Outcome.passed
    assert run_one(IDS, [*ids, say("Booked: HATHAU.")]).evidence.quote.endswith("Booked: HATHAU.")


LIMITS = """
- name: limits
  kind: argument_limits
  tools: [book_reservation]
  limits:
    - {argument: passengers, max_items: 5}
    - {argument: "payment_methods[].amount", min: 0}
    - {argument: cabin, one_of: [basic_economy, economy, business]}
"""


def test_argument_limits_flag_the_first_argument_out_of_bounds() -> None:
    def booking(**changes: Any) -> list[dict[str, Any]]:
        arguments = {
            "passengers": [{"first_name": "A"}] * 2,
            "payment_methods": [{"payment_id": "gift_card_1", "amount": 20}],
            "cabin": "economy",
            **changes,
        }
        return [user("book"), call("book_reservation", arguments)]

    assert run_one(LIMITS, booking()).outcome is Outcome.passed
    assert run_one(LIMITS, booking(passengers=[{}] * 6)).evidence.quote == (
        "passengers has 6 items, more than 5"
    )
    negative = booking(payment_methods=[{"amount": 10}, {"amount": -5}])
    assert run_one(LIMITS, negative).evidence.quote == "payment_methods[].amount = -5 is below 0"
    assert "first" in run_one(LIMITS, booking(cabin="first")).evidence.quote
    assert run_one(LIMITS, [user("hi")]).outcome is Outcome.not_applicable


def test_a_python_check_comes_from_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real installed distribution (a .dist-info on sys.path) declaring the entry point.
    (tmp_path / "mychecks.py").write_text(
        "from agentops.checks.conversation import PASS, flag\n"
        "def no_transfer(conversation, options):\n"
        "    for call in conversation.calls:\n"
        "        if call.name == options['tool']:\n"
        "            return flag(call.turn, call.name, 'transferred')\n"
        "    return PASS\n"
    )
    info = tmp_path / "mychecks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mychecks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[agentops.checks]\nno_transfer = mychecks:no_transfer\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    body = """
    - name: stays
      kind: python
      check: no_transfer
      options: {tool: transfer_to_human_agents}
    """
    moved = [user("human please"), call("transfer_to_human_agents", {"summary": "x"})]
    found = run_one(body, moved)
    assert found.flagged and found.evidence.tool == "transfer_to_human_agents"
    assert run_one(body, [user("hi"), say("hello")]).outcome is Outcome.passed
    sys.modules.pop("mychecks", None)


HOSTILE = [
    ("", "checks.yaml:1:1: the check file is empty"),
    ("version: 1\nagent: [", "checks.yaml:2:9: YAML syntax error"),
    (
        "version: 1\nagent: bot\nchecks: []\n",
        "checks.yaml:3:9: checks: List should have at least 1 item",
    ),
    ("version: 1\nagent: bot\nagent: x\nchecks: []\n", "checks.yaml:3:1: duplicate key 'agent'"),
    (
        "version: 1\nagent: bot\nchecks:\n  - name: a\n    kind: telepathy\n",
        "checks.yaml:5:11: checks[0].kind: unknown kind 'telepathy'",
    ),
    (
        "version: 1\nagent: bot\nchecks:\n  - name: a\n    kind: max_calls_per_turn\n    max: 0\n",
        "checks.yaml:6:10: checks[0].max: Input should be greater than or equal to 1",
    ),
    (
        "version: 1\nagent: bot\nchecks:\n  - name: a\n    kind: provenance\n    pattern: '(['\n",
        "checks.yaml:6:14: checks[0].pattern: not a regular expression",
    ),
    (
        "version: 1\nagent: bot\nchecks:\n  - {name: a, kind: max_calls_per_turn, max: 1}\n"
        "  - {name: a, kind: max_calls_per_turn, max: 2}\n",
        "checks.yaml:5:12: checks[1].name: duplicate check name 'a'",
    ),
    (
        "version: 1\nagent: bot\nchecks:\n  - name: a\n    kind: python\n    check: nowhere\n",
        "checks.yaml:6:12: checks[0].check: no Python check named 'nowhere'",
    ),
    (
        "version: 1\nagent: bot\nchecks:\n  - name: a\n    kind: max_calls_per_turn\n"
        "    max: 1\n    maxx: 2\n",
        "checks.yaml:7:5: checks[0].maxx: unknown key",
    ),
    ("- just\n- a list\n", "checks.yaml:1:1: expected a mapping of keys to values"),
    ("a: &a [*a]\n", "checks.yaml:1:8: YAML syntax error: aliases (*name) are not allowed"),
    (  # a billion laughs in a few hundred bytes: refused at the first alias, never expanded
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(
            f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n"
            for p, n in zip("abcdef", "bcdefg", strict=True)
        ),
        "checks.yaml:2:8: YAML syntax error: aliases (*name) are not allowed",
    ),
    ("x: " + "[" * 5000 + "]" * 5000, "checks.yaml:1:1:"),
]


@pytest.mark.parametrize(("text", "expected"), HOSTILE)
def test_a_hostile_check_file_gets_one_located_line(text: str, expected: str) -> None:
    with pytest.raises(CheckConfigError) as caught:
        parse_check_text(text, source="checks.yaml")
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_the_example_pack_names_the_airline_checks() -> None:
    loaded, _ = load_check_file(EXAMPLE)
    assert loaded.names == [
        "one_call_at_a_time", "lookup_before_write", "payment_limits", "bag_allowance",
        "book_only_available", "basic_economy_unchanged", "confirm_before_write",
        "amount_provenance",
    ]  # fmt: skip
    assert loaded.file.agent == "airline-assistant"


def test_the_airline_pack_on_the_tau_conversations(tau_airline: Path) -> None:
    records = json.loads((tau_airline / "conversations.json").read_text())
    loaded, _ = load_check_file(EXAMPLE)
    counts: Counter[tuple[str, str]] = Counter()
    flagged: dict[str, list[tuple[int, float, Any]]] = {}
    for record in records:
        for name, found in loaded.run(record["traj"]).items():
            counts[name, found.outcome.value] += 1
            if found.flagged:
                flagged.setdefault(name, []).append((record["task_id"], record["reward"], found))
    # Counts verified by reading the flagged conversations (see docs/checks.md).
    assert {name: counts[name, "flag"] for name in loaded.names} == {
        "one_call_at_a_time": 28, "lookup_before_write": 3, "payment_limits": 3,
        "bag_allowance": 10, "book_only_available": 0, "basic_economy_unchanged": 6,
        "confirm_before_write": 18, "amount_provenance": 27,
    }  # fmt: skip
    assert counts["book_only_available", "pass"] == 41
    # Task 0: a gold member's third bag charged although gold economy has three free...
    bags = {task: found.evidence.quote for task, _, found in flagged["bag_allowance"]}
    assert bags[0] == "gold member, 1 economy passenger(s), 3 bags: 0 non-free expected, 1 charged"
    # ...and two certificates offered where one is allowed.
    payments = {task: found.evidence.quote for task, _, found in flagged["payment_limits"]}
    assert payments[0] == "2 certificate payments (at most 1)"
    # The write-path flags are enriched for failed tasks, as the issue measured.
    overall = sum(record["reward"] == 0 for record in records) / len(records)
    confirm = flagged["confirm_before_write"]
    assert sum(reward == 0 for _, reward, _ in confirm) / len(confirm) > overall


@pytest.mark.parametrize(
    ("value", "text", "found"),
    [
        ("255", "255.0", True),
        ("255", "paid 255.", True),
        ("255", "1255", False),
        ("255", "2,55", False),
        ("1,234", "total 1234.00 x", True),
        ("3,538", "3538", True),
        ("12", "12.5", False),
        ("12.5", "12.50", True),
        ("12", "12,345", False),
    ],
)
def test_a_stated_amount_matches_the_number_however_written(
    value: str, text: str, found: bool
) -> None:
    body = AMOUNTS
    messages = [user("hi"), call("calculate", {}), result("calculate", text), say(f"${value}")]
    assert run_one(body, messages).outcome is (Outcome.passed if found else Outcome.flagged)
