"""Every CLI command on bad input: a clear message, a non-zero exit, nothing half-written."""

import json
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.store.models import (
    Agent,
    AuditEvent,
    Conversation,
    Evaluation,
    Outcome,
    Person,
    ReviewFinding,
)
from audit_tamper import rewrite_forward

RUBRIC = Path(__file__).resolve().parents[1] / "deployments" / "rubric.example.yaml"
TRIGGERS = Path(__file__).resolve().parents[1] / "deployments" / "triggers.example.yaml"

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    output = " ".join(result.output.split())
    assert "Traceback" not in output
    return result.exit_code, output


def count(session: Session, model: type) -> int:
    session.commit()  # end the test's transaction so the CLI's commits are visible
    return session.exec(select(func.count()).select_from(model)).one()


@pytest.fixture
def registered(session: Session) -> Session:
    code, out = run(
        "agents", "register", "airline", "--owner", "o@x.io", "--backup", "b@x.io", "--live", "v1"
    )
    assert code == 0, out
    code, out = run("people", "add", "r@x.io", "--role", "reviewer")
    assert code == 0, out
    return session


def test_register_records_who_ran_it_and_refuses_unknown_or_unentitled(session: Session) -> None:
    code, out = run("people", "add", "ada@x.io", "--role", "admin")
    assert code == 0, out
    code, out = run(
        "agents", "register", "hotel", "--owner", "o@x.io", "--backup", "b@x.io",
        "--live", "v1", "--as", "ada@x.io",
    )  # fmt: skip
    assert code == 0, out
    session.commit()
    events = session.exec(
        select(AuditEvent).where(AuditEvent.kind.in_(["agent.registered", "version.live"]))  # type: ignore[attr-defined]
    ).all()
    assert {e.actor for e in events} == {"ada@x.io"}  # who ran it, not the owner
    people = count(session, Person)
    code, out = run("agents", "register", "x", "--owner", "p@x.io", "--backup", "q@x.io",
                    "--as", "ghost@x.io")  # fmt: skip
    assert code == 2 and out.startswith("error: ghost@x.io is not registered")
    code, out = run("agents", "register", "x", "--owner", "p@x.io", "--backup", "q@x.io",
                    "--as", "o@x.io")  # fmt: skip
    assert code == 2 and "registering agents is for admin; you are registered as a owner" in out
    assert count(session, Person) == people and count(session, Agent) == 1


def test_register_refuses_owner_as_backup_and_writes_nothing(session: Session) -> None:
    code, out = run("agents", "register", "airline", "--owner", "o@x.io", "--backup", "O@x.io")
    assert code == 2
    assert "backup approver must be a different person" in out
    assert count(session, Agent) == 0 and count(session, Person) == 0
    assert count(session, AuditEvent) == 0


def test_register_refuses_bad_email_and_duplicates(registered: Session) -> None:
    code, out = run("agents", "register", "other", "--owner", "nobody", "--backup", "b@x.io")
    assert code == 2 and "not an email address" in out
    code, out = run("agents", "register", "airline", "--owner", "p@x.io", "--backup", "q@x.io")
    assert code == 2 and "already registered" in out
    assert count(registered, Agent) == 1


def test_list_and_show(registered: Session) -> None:
    code, out = run("agents", "list")
    assert code == 0 and "airline" in out and "v1" in out
    code, out = run("agents", "show", "nope")
    assert code == 2 and "no agent named 'nope'" in out


def test_import_bad_inputs(registered: Session, tmp_path: Path) -> None:
    code, out = run(
        "import", str(tmp_path / "missing.jsonl"), "--agent", "airline", "--version", "v1"
    )
    assert code == 2 and "missing.jsonl" in out

    good = {
        "id": "c1",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    }
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({"id": "c2"}) + "\n")
    code, out = run("import", str(path), "--agent", "ghost", "--version", "v1")
    assert code == 2 and "no agent named 'ghost'" in out
    assert count(registered, Conversation) == 0

    code, out = run("import", str(path), "--agent", "airline", "--version", "v1")
    assert code == 0, out
    assert "1 imported" in out and "2 rejected" in out
    assert "line 2" in out and "line 3" in out
    assert count(registered, Conversation) == 1


def test_rubric_and_triggers_bad_files(session: Session, tmp_path: Path) -> None:
    code, out = run("rubric", "add", str(tmp_path / "none.yaml"))
    assert code == 2 and "none.yaml" in out
    bad = tmp_path / "triggers.yaml"
    bad.write_text("version: 1\nagent: airline\ntriggers:\n  - name: x\n    kind: nonsense\n")
    code, out = run("triggers", "check", str(bad))
    assert code == 2 and "triggers.yaml:" in out
    code, out = run("triggers", "check", str(TRIGGERS))
    assert code == 0 and "valid" in out
    old = tmp_path / "old.yaml"
    old.write_text(
        "version: 1\nagent: airline\ntriggers:\n  - name: x\n    kind: escalation_rate\n"
        "    max_rate: 0.25\n"
    )
    code, out = run("triggers", "check", str(old))
    assert code == 2 and "max_rate belong to the old trigger format; write instead:" in out
    assert "degraded_rates: [0.15, 0.40]" in out


def test_triggers_check_reports_intervals_and_delays(tmp_path: Path) -> None:
    code, out = run("triggers", "check", str(TRIGGERS), "--rates", "0.08,0.22")
    assert code == 0
    assert "real false-alarm interval" in out and "years" in out
    assert "8.0%" in out and "22.0%" in out
    result = runner.invoke(app, ["triggers", "check", str(TRIGGERS), "--json"])
    assert result.exit_code == 0
    report = json.loads(result.output)
    policy = report["triggers"][0]
    assert policy["name"] == "policy-adherence" and policy["unit"] == "reviews"
    assert policy["false_alarm_every"] >= policy["promised_false_alarm_every"] * 0.99
    assert policy["delays"][0]["rate"] == 0.06
    delays = [d["expected_delay"] for d in policy["delays"]]
    assert delays == sorted(delays, reverse=True) and delays[-1] > 0
    assert len(policy["thresholds"]) == 4
    for bad, message in (
        ("abc", "'abc' is not a number"),
        ("inf", "inf is not a rate strictly between 0 and 1"),
        ("0.1,1.5", "1.5 is not a rate"),
        ("nan", "nan is not a rate"),
    ):
        code, out = run("triggers", "check", str(TRIGGERS), "--rates", bad)
        assert code == 2 and message in out
    measured = tmp_path / "measured.yaml"
    measured.write_text(
        TRIGGERS.read_text().replace(
            "    healthy_rate: 0.10\n",
            "    healthy_from: last_known_good\n    expected_healthy_rate: 0.10\n",
        )
    )
    code, out = run("triggers", "check", str(measured))
    assert code == 0 and "healthy rate measured on" in out and "3,000 conversations" in out


def test_review_bad_inputs(registered: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTOPS_USER_EMAIL", raising=False)
    code, out = run("review", "next")
    assert code == 2 and "--as EMAIL" in out
    code, out = run("review", "next", "--as", "r@x.io")
    assert code == 0 and "queue is empty" in out
    code, out = run("review", "submit", "999", "--as", "r@x.io")
    assert code == 2 and "999" in out


def test_actions_bad_inputs(registered: Session) -> None:
    code, out = run("actions", "show", "42")
    assert code == 2 and "42" in out
    code, out = run("approve", "42", "--as", "o@x.io")
    assert code == 2 and "42" in out
    code, _ = run("reject", "42", "--as", "o@x.io")
    assert code == 2  # --reason is required: a usage error, not a traceback
    code, out = run("actions", "redeploy", "airline", "v9", "--as", "o@x.io", "--reason", "fix")
    assert code == 2 and "v9" in out
    # --as names who you are: an unknown email is refused in one line, never created.
    people = count(registered, Person)
    code, out = run("approve", "42", "--as", "d@x.io")
    assert code == 2
    assert out == "error: d@x.io is not registered with agentops: ask an admin to add you"
    code, out = run("review", "next", "--as", "d@x.io")
    assert code == 2 and "d@x.io is not registered" in out
    assert count(registered, Person) == people


def test_audit_export_verify_and_tamper(
    registered: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentops.settings import get_settings

    monkeypatch.setenv("AGENTOPS_AUDIT_SIGNING_KEY", str(tmp_path / "keys" / "audit.key"))
    get_settings.cache_clear()
    code, out = run("audit", "export", "-o", str(tmp_path / "first"))
    assert code == 2 and "no signing key" in out and "agentops audit keygen" in out
    code, out = run("audit", "keygen")
    assert code == 0 and "Key id" in out
    code, out = run("audit", "keygen")
    assert code == 2 and "already exists" in out
    code, out = run("audit", "export", "-o", str(tmp_path / "trail"), "--since", "30x")
    assert code == 2 and "30x" in out
    code, out = run("audit", "export", "-o", str(tmp_path))
    assert code == 2 and "not empty" in out
    target = tmp_path / "trail"
    code, out = run("audit", "export", "-o", str(tmp_path / "mine"), "--agent", "airline")
    assert code == 0, out
    mine = (tmp_path / "mine" / "events.jsonl").read_text().splitlines()
    code, out = run("audit", "export", "-o", str(target), "--since", "1d")
    assert code == 0, out
    lines = (target / "events.jsonl").read_text().splitlines()
    assert len(lines) == count(registered, AuditEvent) > len(mine) > 0
    code, out = run("audit", "verify-export", str(target))
    assert code == 0 and "export verified" in out
    code, out = run("audit", "verify-export", str(tmp_path / "keys"))
    assert code == 2 and "not an agentops export" in out
    code, out = run("audit", "checkpoint", "--dir", str(tmp_path / "cp"))
    assert code == 0 and "Checkpoint of" in out
    code, out = run("audit", "verify", "--checkpoints", str(tmp_path / "cp"))
    assert code == 0 and "1 signed checkpoint(s) match" in out
    code, out = run("audit", "verify", "--checkpoints", str(tmp_path / "nowhere"))
    assert code == 2 and "does not exist" in out

    for name in ("events.jsonl", "events.csv", "manifest.json"):
        path = target / name
        original = path.read_bytes()
        changed = bytearray(original)
        changed[len(changed) // 2] ^= 0x01  # one bit of one byte
        path.write_bytes(bytes(changed))
        code, out = run("audit", "verify-export", str(target))
        assert code != 0 and ("does not verify" in out or "not a readable" in out), (name, out)
        path.write_bytes(original)
    code, out = run("audit", "verify-export", str(target))
    assert code == 0

    rewrite_forward(registered, seq=2, actor="mallory")
    code, out = run("audit", "verify")
    assert code == 0 and "intact" in out  # a forward rewrite fools the chain alone...
    code, out = run("audit", "verify", "--checkpoints", str(tmp_path / "cp"))
    assert code == 1 and "tampered" in out and "event 2: differs from signed checkpoint" in out
    get_settings.cache_clear()


def test_bad_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOPS_DATABASE_URL", "mysql://nobody@localhost/x")
    from agentops.settings import get_settings

    get_settings.cache_clear()
    code, out = run("agents", "list")
    assert code == 2 and "unsupported database" in out
    get_settings.cache_clear()


def test_review_next_and_submit(registered: Session, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from agentops.agents.service import get_agent, get_version
    from agentops.review.rubric import latest_rubric
    from agentops.sampling.service import sample_window
    from agentops.store.models import Review

    code, out = run("rubric", "add", str(RUBRIC))
    assert code == 0 and "is stored" in out
    started = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    path = tmp_path / "convs.jsonl"
    path.write_text(
        json.dumps(
            {
                "id": "c1",
                "started_at": started.isoformat(),
                "messages": [
                    {"role": "user", "content": "Cancel my trip please"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "t1",
                                "type": "function",
                                "function": {
                                    "name": "cancel_reservation",
                                    "arguments": '{"reservation_id": "ABC123"}',
                                },
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "t1", "content": "cancelled"},
                    {"role": "assistant", "content": "Done."},
                ],
            }
        )
        + "\n"
    )
    code, out = run("import", str(path), "--agent", "airline", "--version", "v1")
    assert code == 0 and "1 imported" in out
    agent = get_agent(registered, name="airline")
    sample_window(
        registered,
        agent=agent,
        version=get_version(registered, agent=agent, version="v1"),
        rubric=latest_rubric(registered),
        window_start=started,  # type: ignore[arg-type]
        window_end=started + timedelta(hours=1),
        seed=1,
        actor="test",
    )
    registered.commit()

    code, out = run("review", "next", "--as", "r@x.io")
    assert code == 0 and "cancel_reservation" in out and "explicit-confirmation" in out
    assert count(registered, Review) == 0
    code, out = run("review", "submit", "1", "--as", "someone@x.io")
    assert code == 2 and "someone@x.io is not registered" in out
    code, out = run("people", "add", "rob@x.io", "--role", "reviewer")
    code, out = run("review", "submit", "1", "--as", "rob@x.io")
    assert code == 2 and "claimed by r@x.io, not rob@x.io" in out
    code, out = run("review", "submit", "1", "--as", "r@x.io", "--fail", "nonsense")
    assert code == 2 and "unknown criteria: nonsense; this rubric has:" in out
    assert count(registered, Review) == 0
    fail = ("review", "submit", "1", "--as", "r@x.io", "--fail", "explicit-confirmation")
    code, out = run(*fail)
    assert code == 2 and "a failed critical or major criterion needs a note" in out
    assert "--note explicit-confirmation=WHY" in out
    code, out = run(*fail, "--note", "no-equals-sign")
    assert code == 2 and "--note takes CRITERION=WHY" in out
    assert count(registered, Review) == 0
    code, out = run(*fail, "--note", "explicit-confirmation=cancelled without asking")
    assert code == 0 and "policy violation" in out
    registered.commit()
    note = registered.exec(select(ReviewFinding.note).where(ReviewFinding.passed == False)).one()  # noqa: E712
    assert note == "cancelled without asking"
    code, out = run("review", "submit", "1", "--as", "r@x.io")
    assert code == 2 and "already" in out
    assert count(registered, Review) == 1
    code, out = run("review", "status")
    assert code == 0 and "│ 0 │ 0 │ 1 │" in out  # open, claimed, reviewed


def test_sample_and_evaluate_bad_inputs(registered: Session) -> None:
    code, out = run("sample", "ghost")
    assert code == 2 and "no agent named 'ghost'" in out
    code, out = run("sample", "airline")
    assert code == 2 and "agentops rubric add" in out
    assert run("rubric", "add", str(RUBRIC))[0] == 0
    code, out = run("sample", "airline", "--end", "2020-01-01T00:00:00")
    assert code == 2 and "no conversations between" in out
    code, out = run("sample", "airline", "--hours", "-1")
    assert code == 2  # a usage error from the option's range, not a traceback
    code, out = run("evaluate", "airline")
    assert code == 2 and "no triggers registered" in out


def test_sample_then_evaluate_on_tau_airline(
    registered: Session, tau_airline: Path, tmp_path: Path
) -> None:
    conversations = str(tau_airline / "conversations.json")
    assert run("import", conversations, "--agent", "airline", "--version", "v1")[0] == 0
    assert run("rubric", "add", str(RUBRIC))[0] == 0
    triggers = TRIGGERS.read_text().replace("agent: airline-assistant", "agent: airline")
    trigger_file = tmp_path / "triggers.yaml"
    trigger_file.write_text(triggers)
    assert run("triggers", "register", str(trigger_file))[0] == 0
    code, out = run("sample", "airline", "--seed", "4", "--max", "30")
    assert code == 0 and "│ v1 │ 100 │ 30 │" in out
    code, out = run("evaluate", "airline")
    assert code == 0 and "insufficient_data" in out  # no reviews yet, no latencies at all
    # 18 of the 100 tau-bench conversations escalate: well under the 25% trigger.
    registered.commit()
    escalation = registered.exec(
        select(Evaluation).where(Evaluation.trigger_name == "escalation-rate")
    ).one()
    assert escalation.outcome == Outcome.ok
    assert (escalation.evidence["events"], escalation.evidence["observations"]) == (18, 100)
    code, out = run("evaluate", "airline", "--explain")
    assert code == 0 and "escalation-rate: 100 conversations, 18 escalations" in out
    assert "highest chart over time" in out and "15.0%" in out
    code, out = run("triggers", "backtest", str(trigger_file), "--agent", "airline")
    assert code == 0 and "v1" in out and "never" in out


def test_audit_archive_exports_checkpoints_and_records_it(
    registered: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentops.settings import get_settings

    monkeypatch.setenv("AGENTOPS_AUDIT_SIGNING_KEY", str(tmp_path / "keys" / "audit.key"))
    get_settings.cache_clear()
    assert run("audit", "keygen")[0] == 0
    assert run("people", "add", "adm@x.io", "--role", "admin")[0] == 0
    code, out = run("audit", "archive", "--before", "2099-01-01", "-o", str(tmp_path / "a"))
    assert code == 2 and "--as" in out
    code, out = run(
        "audit", "archive", "--before", "2099-01-01", "-o", str(tmp_path / "a"), "--as", "o@x.io"
    )
    assert code == 2 and "needs the admin role" in out
    code, out = run(
        "audit", "archive", "--before", "2099-01-01", "-o", str(tmp_path / "a"), "--as", "adm@x.io"
    )
    assert code == 0 and "nothing was deleted" in out, out
    assert run("audit", "verify-export", str(tmp_path / "a"))[0] == 0
    code, out = run("audit", "verify", "--checkpoints", str(tmp_path / "a" / "checkpoints"))
    assert code == 0 and "1 signed checkpoint(s) match" in out
    code, out = run("audit", "log", "--kind", "audit.archived")
    assert code == 0 and "adm@x.io" in out
    code, out = run("audit", "export", "-o", str(tmp_path / "x"), "--key", str(tmp_path / "nope"))
    assert code == 2 and "no signing key" in out
    get_settings.cache_clear()
