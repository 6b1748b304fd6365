import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from agentops.agents.service import ensure_version, list_versions
from agentops.audit.service import iter_events, verify_chain
from agentops.errors import AgentOpsError
from agentops.ingestion import service
from agentops.ingestion.files import read_records
from agentops.ingestion.service import (
    ImportReport,
    Rejection,
    import_conversations,
    records_from_platform,
)
from agentops.ingestion.transcripts import RecordError, parse_record
from agentops.store.models import Agent, AgentVersion, Conversation
from factories import agent_named, calls_transfer
from factories import chat_record as generic


@pytest.fixture
def agent(session: Session) -> Agent:
    return agent_named(session)


@pytest.fixture
def v1(session: Session, agent: Agent) -> AgentVersion:
    return ensure_version(session, agent=agent, version="v1", actor="t")


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_tau_airline_file_imports_and_reimport_is_all_duplicates(
    session: Session, agent: Agent, v1: AgentVersion, tau_airline: Path
) -> None:
    path = tau_airline / "conversations.json"
    raw = json.loads(path.read_text())
    expected_escalated = sum(calls_transfer(record["traj"]) for record in raw)
    assert expected_escalated > 0

    report = import_conversations(
        session,
        agent=agent,
        version=v1,
        records=read_records(path),
        actor="tester",
        source=str(path),
    )
    session.commit()
    assert (report.imported, report.escalated, report.rejected) == (100, expected_escalated, [])
    stored = session.exec(select(Conversation)).all()
    assert len(stored) == 100
    assert sum(c.escalated for c in stored) == expected_escalated
    assert all(c.contained is not c.escalated for c in stored)
    assert {c.task_success for c in stored} <= {0.0, 1.0}
    assert all(c.latency_ms is None and -1 <= c.sentiment <= 1 for c in stored)
    first = next(c for c in stored if c.external_id == f"tau-{raw[0]['task_id']}-{raw[0]['trial']}")
    assert first.transcript == raw[0]["traj"]

    again = import_conversations(
        session, agent=agent, version=v1, records=read_records(path), actor="tester"
    )
    session.commit()
    assert (again.imported, again.duplicates, again.rejected) == (0, 100, [])
    assert len(session.exec(select(Conversation)).all()) == 100

    # One chunk each: one event per import, saying it is complete and which records it holds.
    events = list(iter_events(session, kind_prefix="conversations.imported"))
    assert [e.payload["imported"] for e in events] == [100, 0]
    assert events[0].payload["escalated"] == expected_escalated
    assert events[0].payload["source"] == str(path)
    assert events[0].payload["versions"] == {"v1": 100}
    assert (events[0].payload["first"], events[0].payload["last"]) == ("index 0", "index 99")
    assert all(e.payload["part"] == 1 and e.payload["complete"] for e in events)
    assert events[1].payload["duplicates"] == 100
    assert verify_chain(session) == []


def test_jsonl_mixed_lines_keep_good_and_report_bad_by_line(
    session: Session, agent: Agent, v1: AgentVersion, tmp_path: Path
) -> None:
    bad_role = generic("c-bad-role")
    bad_role["messages"][1]["role"] = "bot"
    path = write_jsonl(
        tmp_path / "export.jsonl",
        [
            json.dumps(generic("c-1", latency_ms=1200)),  # line 1
            '{"id": "c-2", "messages": [',  # line 2: truncated JSON
            "",  # line 3: blank, skipped
            json.dumps({"id": "c-3"}),  # line 4
            json.dumps(bad_role),  # line 5
            json.dumps(generic("c-4", latency_ms=-5)),  # line 6
            json.dumps(generic("c-5", channel="voice", intent="refund")),  # line 7
        ],
    )
    report = import_conversations(
        session, agent=agent, version=v1, records=read_records(path), actor="tester"
    )
    session.commit()

    assert report.imported == 2
    reasons = {r.label: r.reason for r in report.rejected}
    assert list(reasons) == ["line 2", "line 4", "line 5", "line 6"]
    assert reasons["line 2"].startswith("invalid JSON")
    assert reasons["line 4"] == "missing 'messages'"
    assert "message 2 has unknown role 'bot'" in reasons["line 5"]
    assert reasons["line 6"] == "latency_ms must be a non-negative integer"

    stored = {c.external_id: c for c in session.exec(select(Conversation))}
    assert set(stored) == {"c-1", "c-5"}
    assert stored["c-1"].latency_ms == 1200
    assert stored["c-1"].intent == "cancellation"  # derived from cancel_reservation
    assert stored["c-1"].started_at == datetime(2024, 5, 15, 15, 0, tzinfo=UTC)
    assert (stored["c-5"].channel, stored["c-5"].intent) == ("voice", "refund")
    assert (
        report.summary()
        == "imported 2 (0 escalated), 0 duplicates skipped, 4 rejected, versions v1: 2"
    )


def test_json_array_reports_bad_items_by_index(
    session: Session, agent: Agent, v1: AgentVersion, tmp_path: Path
) -> None:
    no_name = generic("c-2")
    no_name["messages"][2]["tool_calls"][0]["function"] = {"arguments": "{}"}
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"conversations": [generic("c-1"), "oops", no_name]}))
    report = import_conversations(
        session, agent=agent, version=v1, records=read_records(path), actor="tester"
    )
    assert report.imported == 1
    assert report.rejected == [
        Rejection("index 1", "record must be a JSON object, not a string"),
        Rejection("index 2", "message 3 tool_calls[0] has no function name"),
    ]


def test_nan_and_infinity_are_rejected_by_line_and_the_rest_imports(
    session: Session, agent: Agent, v1: AgentVersion, tmp_path: Path
) -> None:
    # json.loads accepts these tokens, but PostgreSQL's json type refuses them: stored
    # as-is, one such record used to fail the whole import there.
    nan_arguments = generic("c-nan")
    nan_arguments["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"refund": math.nan}
    infinite_content = generic("c-inf")
    infinite_content["messages"][4]["content"] = [{"type": "text", "score": -math.inf}]
    path = write_jsonl(
        tmp_path / "export.jsonl",
        [
            json.dumps(generic("c-1")),
            json.dumps(nan_arguments),
            json.dumps(infinite_content),
        ],
    )
    assert "NaN" in path.read_text() and "-Infinity" in path.read_text()

    report = import_conversations(
        session, agent=agent, version=v1, records=read_records(path), actor="tester"
    )
    session.commit()

    assert report.imported == 1
    assert report.rejected == [
        Rejection(
            "line 2",
            "message 3 contains NaN (at tool_calls[0].function.arguments.refund), "
            "which is not valid JSON",
        ),
        Rejection(
            "line 3",
            "message 5 contains -Infinity (at content[0].score), which is not valid JSON",
        ),
    ]
    stored = session.exec(select(Conversation)).all()
    assert [c.external_id for c in stored] == ["c-1"]
    assert stored[0].transcript == generic("c-1")["messages"]


def test_parse_record_rejects_non_json_values_from_any_source() -> None:
    # Platform API items and JSON arrays reach parse_record without a file in between.
    record = generic("c-1")
    record["messages"][1]["content"] = [{"type": "text", "weight": math.inf}]
    with pytest.raises(
        RecordError, match=r"message 2 contains Infinity \(at content\[0\]\.weight\)"
    ):
        parse_record(record)
    tau = {"task_id": 1, "trial": 0, "reward": 1.0, "traj": generic("c-1")["messages"]}
    tau["traj"][3]["extra"] = {"when": datetime(2024, 1, 1, tzinfo=UTC)}
    with pytest.raises(RecordError, match=r"message 4 is not valid JSON: .*datetime"):
        parse_record(tau)
    with pytest.raises(RecordError, match="reward must be a number between 0 and 1"):
        parse_record({**tau, "traj": generic("c-1")["messages"], "reward": math.nan})


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "no such conversations file"),
        ("object.json", '{"id": "c-1"}', "must hold a JSON array"),
        ("broken.json", "[{", "is not valid JSON"),
        ("notes.txt", "hello", "unsupported file type"),
    ],
)
def test_unusable_files_raise_agentops_error_at_once(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(AgentOpsError, match=message):
        read_records(path)


def test_jsonl_is_streamed_not_loaded(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "big.ndjson", [json.dumps(generic("c-1")), "{not json"])
    records = read_records(path)
    label, first = next(records)
    assert (label, first["id"]) == ("line 1", "c-1")  # type: ignore[index]
    # Appending after the first read shows the file is read lazily.
    with path.open("a") as handle:
        handle.write(json.dumps(generic("c-3")) + "\n")
    rest = list(records)
    assert [label for label, _ in rest] == ["line 2", "line 3"]
    assert isinstance(rest[0][1], RecordError)


def test_versions_come_from_records_when_none_is_given(
    session: Session, agent: Agent, tmp_path: Path
) -> None:
    records = [
        ("a", generic("c-1", agent_version="v2")),
        ("b", generic("c-2", agent_version="v3")),
        ("c", generic("c-3", agent_version="v2")),
        ("d", generic("c-4")),
        ("e", generic("c-1", agent_version="v2")),  # repeated inside the same import
    ]
    default = datetime(2024, 1, 1, tzinfo=UTC)
    del records[0][1]["started_at"]
    report = import_conversations(
        session,
        agent=agent,
        version=None,
        records=records,
        actor="tester",
        default_started_at=default,
    )
    session.commit()
    assert (report.imported, report.duplicates) == (3, 1)
    assert report.versions == {"v2": 2, "v3": 1}
    assert [r.label for r in report.rejected] == ["d"]
    assert "no agent version" in report.rejected[0].reason
    assert [v.version for v in list_versions(session, agent=agent)] == ["v2", "v3"]
    first = session.exec(select(Conversation).where(Conversation.external_id == "c-1")).one()
    assert first.started_at == default


def test_progress_and_report_merge(
    session: Session, agent: Agent, v1: AgentVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHUNK_RECORDS", 500)
    calls: list[int] = []
    records = [(f"item {i}", generic(f"c-{i}")) for i in range(1203)]
    report = import_conversations(
        session, agent=agent, version=v1, records=records, actor="tester", progress=calls.append
    )
    assert report.imported == 1203
    assert calls == [500, 1000, 1203]
    merged = report + ImportReport(duplicates=2, rejected=[Rejection("line 9", "bad")])
    assert (merged.imported, merged.duplicates, merged.seen) == (1203, 2, 1206)
    assert merged.as_dict()["rejections"] == [{"label": "line 9", "reason": "bad"}]


def test_a_report_keeps_the_first_rejections_and_counts_them_all(
    session: Session, agent: Agent, v1: AgentVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "REJECTIONS_KEPT", 3)
    records = [(f"item {i}", {"id": f"c-{i}"}) for i in range(5)]
    records.append(("item 5", generic("c-5")))
    report = import_conversations(session, agent=agent, version=v1, records=records, actor="t")
    assert [r.label for r in report.rejected] == ["item 0", "item 1", "item 2"]
    assert (report.rejected_count, report.imported, report.seen) == (5, 1, 6)
    assert report.as_dict()["rejected"] == 5
    assert report.summary().startswith("imported 1 (0 escalated), 0 duplicates skipped, 5 rejected")


def test_records_from_platform_labels_items() -> None:
    labelled = list(records_from_platform([{"id": "abc"}, {"messages": []}, {"id": 7}]))
    assert [label for label, _ in labelled] == ["item abc", "item 2", "item 7"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"started_at": "2024-05-15T15:00:00"}, "has no timezone"),
        ({"started_at": "yesterday"}, "is not an ISO-8601 timestamp"),
        ({"task_success": 2}, "task_success must be a number between 0 and 1"),
        ({"messages": []}, "'messages' is empty"),
        ({"id": ""}, "'id' must be a non-empty string"),
        ({"channel": 5}, "channel must be a string"),
    ],
)
def test_parse_record_reasons(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_record({**generic("c-1"), **change})


def test_parse_record_message_rules() -> None:
    record = generic("c-1")
    record["messages"][1]["content"] = None
    with pytest.raises(RecordError, match=r"message 2 \(user\) has no content"):
        parse_record(record)
    record = generic("c-1")
    record["messages"][2]["tool_calls"][0]["function"]["arguments"] = 5
    with pytest.raises(RecordError, match="arguments must be a JSON string or an object"):
        parse_record(record)


def test_parse_record_escalation_intent_and_timezone() -> None:
    record = generic("c-1", started_at="2024-05-15T10:00:00-05:00")
    record["messages"].insert(
        3,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"function": {"name": "transfer_to_human_agents", "arguments": "{}"}}],
        },
    )
    parsed = parse_record(record)
    assert parsed.escalated and not parsed.contained
    assert parsed.started_at == datetime(2024, 5, 15, 15, 0, tzinfo=UTC)
    assert parsed.intent == "cancellation"
    assert parsed.sentiment > 0  # "thanks"
    assert parse_record(record, escalation_tools=frozenset({"page_supervisor"})).contained

    tau = {"task_id": 4, "trial": 1, "reward": 0.0, "info": {}, "traj": record["messages"]}
    parsed_tau = parse_record(tau)
    assert (parsed_tau.external_id, parsed_tau.task_success) == ("tau-4-1", 0.0)
    assert parsed_tau.started_at is None and parsed_tau.latency_ms is None
