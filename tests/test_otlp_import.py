"""`agentops import --format otlp` and `agentops conversations list/show`."""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.ingestion.otlp.normalise import CONTENT_NOT_CAPTURED
from agentops.store.models import AgentVersion, Conversation
from otlp_payloads import genai_latest, legacy_events, openinference

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.output


def write_lines(path: Path, documents: list[dict[str, Any]], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in documents) + extra)
    return path


@pytest.fixture
def registered(session: Session) -> Session:
    code, _, out = run(
        "agents", "register", "airline", "--owner", "o@x.io", "--backup", "b@x.io", "--live", "v1"
    )
    assert code == 0, out
    return session


def stored(session: Session) -> list[Conversation]:
    session.commit()
    return list(session.exec(select(Conversation).order_by(Conversation.external_id)).all())


def test_import_groups_lines_and_traces_into_conversations(
    registered: Session, tmp_path: Path
) -> None:
    # Logs before spans, turns in separate lines: the file exporter writes them as they come.
    documents = [*reversed(legacy_events()), *genai_latest(), *openinference()]
    path = write_lines(tmp_path / "otel.jsonl", documents, extra="{broken\n")
    code, _, out = run("import", str(path), "--agent", "airline", "--format", "otlp")
    assert code == 0, out
    assert "3 imported" in " ".join(out.split()) and "1 rejected" in out and "line 6" in out
    rows = stored(registered)
    assert [row.external_id for row in rows] == [f"{7:032x}", "conv-1", "sess-9"]
    assert all(row.escalated and len(row.transcript) == 8 for row in rows)
    versions = {
        row.external_id: registered.get(AgentVersion, row.agent_version_id).version  # type: ignore[union-attr]
        for row in rows
    }
    assert versions == {f"{7:032x}": "v3", "conv-1": "v7", "sess-9": "oi-1"}

    # Again: everything is a duplicate, nothing changes.
    code, _, out = run("import", str(path), "--agent", "airline", "--format", "otlp")
    assert code == 0 and "3 already stored" in " ".join(out.split())
    assert len(stored(registered)) == 3


def test_show_json_has_messages_tool_calls_and_tool_results(
    registered: Session, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "otel.jsonl", legacy_events(captured=False))
    code, _, out = run("import", str(path), "--agent", "airline", "--format", "otlp")
    assert code == 0, out
    trace = f"{7:032x}"
    code, stdout, out = run("conversations", "show", trace, "--agent", "airline", "--json")
    assert code == 0, out
    shown = json.loads(stdout)
    assert set(shown) >= {"id", "agent", "version", "started_at", "messages"}
    assert (shown["id"], shown["agent"], shown["version"]) == (trace, "airline", "v3")
    assert shown["started_at"].startswith("2026-01-01T00:00:00")
    messages = shown["messages"]
    assert [m["role"] for m in messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert messages[1]["tool_calls"] == [{"name": "cancel_reservation", "arguments": None}]
    assert messages[0]["content"] == CONTENT_NOT_CAPTURED
    assert messages[6] == {"role": "tool", "content": CONTENT_NOT_CAPTURED, "tool_calls": []}

    code, stdout, _ = run("conversations", "list", "--agent", "airline", "--json")
    assert code == 0
    (listed,) = json.loads(stdout)
    assert listed["id"] == trace and listed["messages"] == 8 and listed["version"] == "v3"
    code, stdout, _ = run("conversations", "list", "--agent", "airline", "--version", "v1")
    assert code == 0 and "No conversations" in stdout
    code, _, out = run("conversations", "list", "--agent", "airline")
    assert code == 0 and trace[:20] in out
    code, _, out = run("conversations", "show", trace, "--agent", "airline")
    assert code == 0 and "cancel_reservation" in out and CONTENT_NOT_CAPTURED in out


def test_user_errors_are_one_line_and_store_nothing(registered: Session, tmp_path: Path) -> None:
    code, _, out = run("conversations", "show", "nope", "--agent", "airline")
    assert code == 2 and out.startswith("error:") and "no conversation 'nope'" in out
    code, _, out = run("conversations", "list", "--agent", "airline", "--version", "v9")
    assert code == 2 and out.startswith("error:")
    bad = write_lines(tmp_path / "bad.jsonl", [{"resourceSpans": {}}])
    code, _, out = run("import", str(bad), "--agent", "airline", "--format", "otlp")
    assert code == 2 and "every record was rejected" in out and "must be an array" in out
    code, _, out = run("import", str(bad), "--agent", "airline")
    assert code == 2 and "--version is required" in out
    code, _, out = run("import", str(bad), "--agent", "airline", "--format", "xml")
    assert code == 2 and "unknown --format" in out
    registered.commit()
    assert registered.exec(select(func.count()).select_from(Conversation)).one() == 0


def test_the_web_shows_the_same_conversation_to_reviewers(
    registered: Session, engine: Any, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from agentops.serve.app import create_app
    from agentops.settings import Settings
    from agentops.store.models import Role
    from factories import login_token

    path = write_lines(tmp_path / "otel.jsonl", openinference())
    code, _, out = run("import", str(path), "--agent", "airline", "--format", "otlp")
    assert code == 0, out
    settings = Settings(database_url=str(engine.url))
    with TestClient(create_app(settings=settings, engine=engine)) as client:
        assert (
            client.get("/agents/airline/conversations", follow_redirects=False).status_code == 303
        )
        with Session(engine) as session:
            token = login_token(session, "rita@x.io", role=Role.reviewer)
        assert (
            client.post("/signin", data={"token": token}, follow_redirects=False).status_code == 303
        )
        listing = client.get("/agents/airline/conversations")
        assert listing.status_code == 200 and "sess-9" in listing.text
        page = client.get("/agents/airline/conversations/sess-9")
        assert page.status_code == 200
        assert (
            "transfer_to_human_agents" in page.text and "A colleague will take over." in page.text
        )
        assert "version oi-1" in page.text
        assert client.get("/agents/airline/conversations/nope").status_code == 404
        assert client.get("/agents/ghost/conversations").status_code == 404
