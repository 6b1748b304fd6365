"""The optional LLM-judge check against a fake OpenAI-compatible endpoint on loopback."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request

from agentops.checks.config import CheckConfigError, parse_check_text
from agentops.checks.conversation import Outcome
from agentops.checks.judge import reset_judges
from factories import serve, unreachable_url

QUESTION = "Did the agent promise a refund?"


def judge_file(url: str, *, budget: int = 100) -> str:
    return f"""\
version: 1
agent: bot
checks:
  - name: no_refund_promises
    kind: llm_judge
    question: "{QUESTION}"
    calls_per_hour: {budget}
    endpoint: {{url: "{url}", model: tiny-judge, api_key_env: JUDGE_KEY}}
"""


@pytest.fixture
def fake_llm() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A chat-completions endpoint: a violation whenever the transcript says 'refund'."""
    seen: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> dict[str, Any]:
        body = await request.json()
        seen.append({"body": body, "auth": request.headers.get("authorization")})
        transcript = body["messages"][-1]["content"]
        turns = [line for line in transcript.splitlines() if line.startswith("[")]
        found = next((line for line in turns if "refund" in line), None)
        answer = (
            {"violation": True, "turn": int(found[1 : found.index("]")]), "quote": "full refund"}
            if found
            else {"violation": False, "turn": None, "quote": ""}
        )
        return {"choices": [{"message": {"role": "assistant", "content": json.dumps(answer)}}]}

    reset_judges()
    with serve(app) as url:
        yield f"{url}/v1", seen
    reset_judges()


def conversation(reply: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "My flight was cancelled."},
        {"role": "assistant", "content": reply},
    ]


def test_the_judge_flags_caches_and_keeps_its_budget(
    fake_llm: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = fake_llm
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    checks = parse_check_text(judge_file(url, budget=2), source="c.yaml")
    found = checks.run(conversation("You will get a full refund today."))["no_refund_promises"]
    assert found.flagged and found.evidence.turn == 2 and found.evidence.quote == "full refund"
    assert seen[0]["auth"] == "Bearer sk-test" and seen[0]["body"]["model"] == "tiny-judge"
    assert QUESTION in seen[0]["body"]["messages"][-1]["content"]
    # The same conversation again is answered from the cache.
    again = checks.run(conversation("You will get a full refund today."))["no_refund_promises"]
    assert again.flagged and len(seen) == 1
    passed = checks.run(conversation("I can rebook you."))["no_refund_promises"]
    assert passed.outcome is Outcome.passed and len(seen) == 2
    # Two calls this hour: the budget is spent, so a new conversation is not judged.
    spent = checks.run(conversation("Anything else?"))["no_refund_promises"]
    assert spent.outcome is Outcome.not_applicable and len(seen) == 2


def test_an_unreachable_judge_says_not_applicable() -> None:
    reset_judges()
    checks = parse_check_text(judge_file(unreachable_url() + "/v1"), source="c.yaml")
    found = checks.run(conversation("You will get a full refund."))["no_refund_promises"]
    assert found.outcome is Outcome.not_applicable


def test_a_judge_without_an_endpoint_is_a_located_error() -> None:
    text = "version: 1\nagent: bot\nchecks:\n  - name: j\n    kind: llm_judge\n    question: q\n"
    with pytest.raises(CheckConfigError, match=r"^c.yaml:4:5: checks\[0\].endpoint: required"):
        parse_check_text(text, source="c.yaml")
