"""Checks on 100% of imported traffic: stored per conversation, re-run on a new file, certified."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.store.models import CheckSet, ConversationCheck, ReviewItem
from factories import chat_record

EXAMPLE = Path(__file__).resolve().parents[1] / "deployments" / "checks.example.yaml"
runner = CliRunner()

CONFIRM = """\
version: {version}
agent: airline
minimum: {{tpr: 0.5, tnr: 0.5}}
checks:
  - name: confirm
    kind: affirmation
    tools: [cancel_reservation]
"""


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def airline(session: Session) -> Session:
    code, out = run(
        "agents", "register", "airline", "--owner", "o@x.io", "--backup", "b@x.io", "--live", "v1"
    )
    assert code == 0, out
    return session


def records(count: int, *, unconfirmed: set[int]) -> list[dict[str, Any]]:
    """Cancellations; those in `unconfirmed` have no yes before the write."""
    out = []
    for number in range(count):
        record = chat_record(f"chat-{number}")
        if number not in unconfirmed:
            record["messages"][1]["content"] = "Please cancel my trip. Yes, go ahead."
        record["started_at"] = (
            datetime(2024, 5, 15, 15, tzinfo=UTC) + timedelta(minutes=number)
        ).isoformat()
        out.append(record)
    return out


def write(path: Path, content: str) -> str:
    path.write_text(content)
    return str(path)


def test_checks_run_on_every_imported_conversation_and_again_on_a_new_file(
    airline: Session, tmp_path: Path
) -> None:
    checks = write(tmp_path / "checks.yaml", CONFIRM.format(version=1))
    code, out = run("checks", "register", checks)
    assert code == 0 and "0 stored conversations checked" in out
    data = write(tmp_path / "a.json", json.dumps(records(6, unconfirmed={1, 4})))
    assert run("import", data, "--agent", "airline", "--version", "v1")[0] == 0
    code, out = run("checks", "run", "--agent", "airline", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["checks"] == [{"name": "confirm", "checked": 6, "flagged": 2}]
    assert [c["id"] for c in report["conversations"]] == ["chat-1", "chat-4"]
    assert report["conversations"][0]["flags"] == [
        {"check": "confirm", "turn": 2, "tool": "cancel_reservation",
         "evidence": "Please cancel my trip, thanks."}
    ]  # fmt: skip
    # Importing the same file again stores nothing new, and no second result.
    assert run("import", data, "--agent", "airline", "--version", "v1")[0] == 0
    airline.commit()
    assert airline.exec(select(func.count()).select_from(ConversationCheck)).one() == 6
    # The same content again is the same check set; a changed one needs a new version.
    assert run("checks", "register", checks)[0] == 0
    changed = CONFIRM.format(version=1).replace("[cancel_reservation]", "[cancel_reservation, x]")
    code, out = run("checks", "register", write(tmp_path / "c1.yaml", changed))
    assert code == 2 and out.startswith("error:") and "bump `version:` to 2" in out
    stricter = CONFIRM.format(version=2) + "    words: [confirm]\n"
    code, out = run("checks", "register", write(tmp_path / "c2.yaml", stricter))
    assert code == 0 and "6 stored conversations checked" in out
    report = json.loads(run("checks", "run", "--agent", "airline", "--version", "v1", "--json")[1])
    assert report["check_file_version"] == 2
    assert report["checks"] == [{"name": "confirm", "checked": 6, "flagged": 6}]


def test_checks_commands_refuse_bad_input_with_one_line(airline: Session, tmp_path: Path) -> None:
    code, out = run("checks", "run", "--agent", "airline", "--json")
    assert code == 2 and out.startswith("error:") and "checks register" in out
    bad = write(tmp_path / "bad.yaml", "version: 1\nagent: airline\nchecks:\n  - name: x\n")
    code, out = run("checks", "register", bad)
    assert code == 2 and out.strip().count("\n") == 0
    assert out.startswith(f"error: {bad}:4:5: checks[0]: required key 'kind' is missing")
    other = write(tmp_path / "other.yaml", CONFIRM.format(version=1).replace("airline", "nobody"))
    code, out = run("checks", "register", other)
    assert code == 2 and out.startswith("error:")
    airline.commit()
    assert airline.exec(select(func.count()).select_from(CheckSet)).one() == 0


def test_a_sample_stratified_by_flags_certifies_the_check_by_weighted_reviews(
    airline: Session, tmp_path: Path
) -> None:
    assert run("checks", "register", write(tmp_path / "c.yaml", CONFIRM.format(version=1)))[0] == 0
    flagged = set(range(0, 40, 4))  # 10 of 40
    data = write(tmp_path / "a.json", json.dumps(records(40, unconfirmed=flagged)))
    assert run("import", data, "--agent", "airline", "--version", "v1")[0] == 0
    assert run("rubric", "add", str(EXAMPLE.parent / "rubric.example.yaml"))[0] == 0
    plan = write(tmp_path / "plan.yaml", "strata: [flagged]\nfloor: 6\nmax_size: 16\n")
    code, out = run(
        "sample", "airline", "--end", "2024-05-16T00:00:00", "--hours", "24", "--plan", plan,
        "--max", "40", "--seed", "1",
    )  # fmt: skip
    assert code == 0, out
    airline.commit()
    items = airline.exec(select(ReviewItem)).all()
    by_stratum = Counter(item.stratum for item in items)
    probability = {item.stratum: item.inclusion_probability for item in items}
    # Both strata reviewed, each with its own known inclusion probability n_h / N_h.
    assert set(by_stratum) == {"flagged", "unflagged"}
    assert probability["flagged"] == pytest.approx(by_stratum["flagged"] / 10)
    assert probability["unflagged"] == pytest.approx(by_stratum["unflagged"] / 30)
    from agentops.store.models import Conversation

    number = {
        item.id: int(airline.get(Conversation, item.conversation_id).external_id.split("-")[1])  # type: ignore[union-attr]
        for item in items
    }
    # The reviewers agree with the check on all but one flagged conversation.
    wrong = min(n for n in number.values() if n in flagged)
    for item in items:
        item.final_violation = number[item.id] in flagged and number[item.id] != wrong
        airline.add(item)
    airline.commit()
    code, out = run("checks", "status", "--agent", "airline", "--json")
    assert code == 0, out
    status = json.loads(out)
    (check,) = status["versions"][0]["checks"]
    assert check["checked"] == 40 and check["flagged"] == 10 and check["reviewed"] == len(items)
    assert check["tpr"]["estimate"] == 1.0
    # One false positive weighted by 1/p of the flagged stratum, against the unflagged
    # stratum's true negatives weighted by theirs.
    weight_fp = 1 / probability["flagged"]
    true_negatives = by_stratum["unflagged"] / probability["unflagged"]
    assert check["tnr"]["estimate"] == pytest.approx(true_negatives / (true_negatives + weight_fp))
    assert 0 < check["tnr"]["lower"] <= check["tnr"]["estimate"]
    assert by_stratum["flagged"] >= 6
    assert check["certified"] is (check["tpr"]["lower"] >= 0.5 and check["tnr"]["lower"] >= 0.5)
    # The estimate: all 10 flagged conversations but one are violations, no unflagged one.
    estimate = status["versions"][0]["estimate"]
    assert estimate["reviewed"] == len(items) and estimate["conversations"] == 40
    assert estimate["lower"] <= 9 / 40 <= estimate["upper"]
    code, out = run("checks", "status", "--agent", "airline")
    assert code == 0 and "confirm" in out and "violation rate (PPI++" in out
    code, out = run("checks", "status", "--json")
    assert code == 0 and [a["agent"] for a in json.loads(out)["agents"]] == ["airline"]


def test_the_airline_pack_on_imported_tau_conversations(
    airline: Session, tau_airline: Path, tmp_path: Path
) -> None:
    pack = EXAMPLE.read_text().replace("agent: airline-assistant", "agent: airline")
    assert run("checks", "register", write(tmp_path / "checks.yaml", pack))[0] == 0
    conversations = str(tau_airline / "conversations.json")
    assert run("import", conversations, "--agent", "airline", "--version", "v1")[0] == 0
    report = json.loads(run("checks", "run", "--agent", "airline", "--json")[1])
    flagged = {check["name"]: check["flagged"] for check in report["checks"]}
    assert flagged["confirm_before_write"] == 18 and flagged["bag_allowance"] == 10
    ids = {conversation["id"] for conversation in report["conversations"]}
    assert all(identifier.startswith("tau-") for identifier in ids)
    bag = next(
        flag
        for conversation in report["conversations"]
        for flag in conversation["flags"]
        if conversation["id"] == "tau-0-0" and flag["check"] == "bag_allowance"
    )
    assert bag["tool"] == "book_reservation" and "0 non-free expected, 1 charged" in bag["evidence"]


CRITERION_RUBRIC = """\
name: confirm-rubric
version: 1
criteria:
  - key: grounded
    severity: major
    description: No invented facts.
  - key: confirm-yes
    severity: minor
    description: An explicit yes before a cancellation.
    checks: [confirm]
"""


def test_a_rubric_criterion_naming_a_check_is_its_ground_truth(
    airline: Session, tmp_path: Path
) -> None:
    from agentops.review import service as review
    from factories import as_person, login_token

    assert run("checks", "register", write(tmp_path / "c.yaml", CONFIRM.format(version=1)))[0] == 0
    unconfirmed = {0, 3, 6}
    data = write(tmp_path / "a.json", json.dumps(records(12, unconfirmed=unconfirmed)))
    assert run("import", data, "--agent", "airline", "--version", "v1")[0] == 0
    assert run("rubric", "add", write(tmp_path / "r.yaml", CRITERION_RUBRIC))[0] == 0
    # The same rubric again is the same content (its hash includes the named checks).
    assert run("rubric", "add", write(tmp_path / "r2.yaml", CRITERION_RUBRIC))[0] == 0
    code, out = run(
        "sample", "airline", "--end", "2024-05-16T00:00:00", "--hours", "24", "--max", "12",
        "--margin", "0.01",
    )  # fmt: skip
    assert code == 0, out
    login_token(airline, "rita@x.io")
    rita = as_person(airline, "rita@x.io")
    airline.commit()
    from agentops.store.models import Conversation

    while (item := review.claim_next(airline, reviewer=rita)) is not None:
        number = int(airline.get(Conversation, item.conversation_id).external_id.split("-")[1])  # type: ignore[union-attr]
        # A missing yes fails the minor criterion only: the verdict stays "no violation".
        review.submit_review(
            airline,
            item_id=item.id,  # type: ignore[arg-type]
            reviewer=rita,
            findings={"grounded": True, "confirm-yes": number not in unconfirmed},
        )
        airline.commit()
    status = json.loads(run("checks", "status", "--agent", "airline", "--json")[1])
    (check,) = status["versions"][0]["checks"]
    assert check["criteria"] == ["confirm-yes"] and check["reviewed"] == 12
    # Judged by the criterion, the check is perfect; by the verdict it would have no positives.
    assert check["tpr"]["estimate"] == 1.0 and check["tnr"]["estimate"] == 1.0
    assert check["tpr"]["reviews"] == 3 and check["tnr"]["reviews"] == 9
