"""An optional LLM-judge check: the owner's own OpenAI-compatible chat endpoint reads a rule.

For rules code cannot read. Nothing requires it: with no endpoint reachable, or its call
budget spent, the check says "not applicable". Answers are cached by a hash of the
conversation (with the model and question), so re-checking history costs no new calls,
and at most `calls_per_hour` requests go out in any hour.
"""

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict, deque
from typing import Literal

from pydantic import Field

from agentops.checks.conversation import (
    NOT_APPLICABLE,
    PASS,
    CheckResult,
    Conversation,
    flag,
)
from agentops.checks.rules import CheckBase, Strict

CACHE_SIZE = 10_000
INSTRUCTIONS = (
    "You audit a customer-service conversation against one rule. Messages are numbered "
    '[turn]. Reply with JSON only: {"violation": true or false, "turn": the turn number '
    'of the violation or null, "quote": a short quote from that turn or ""}.'
)


class JudgeEndpoint(Strict):
    """Where the judge is: an OpenAI-compatible base URL (…/v1), model and key variable."""

    url: str = Field(pattern=r"^https?://")
    model: str = Field(min_length=1)
    api_key_env: str | None = None
    timeout_s: float = Field(default=20.0, gt=0, le=300)


class LLMJudgeCheck(CheckBase):
    """A yes/no question about the whole conversation, answered by the owner's model."""

    kind: Literal["llm_judge"]
    question: str = Field(min_length=1)
    endpoint: JudgeEndpoint
    calls_per_hour: int = Field(default=100, ge=0)

    def run(self, conversation: Conversation) -> CheckResult:
        """Flag when the judge says the rule is broken; not applicable when it cannot say."""
        return _judge_for(self).judge(conversation)


class _Judge:
    """One judge's cache and hourly call budget (shared by every run in the process)."""

    def __init__(self, check: LLMJudgeCheck) -> None:
        self.check = check
        self.cache: OrderedDict[str, CheckResult] = OrderedDict()
        self.calls: deque[float] = deque()
        self.lock = threading.Lock()

    def judge(self, conversation: Conversation) -> CheckResult:
        text = _render(conversation)
        key = hashlib.sha256(
            json.dumps([self.check.endpoint.model, self.check.question, text]).encode()
        ).hexdigest()
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
            if not self._take_call():
                return NOT_APPLICABLE  # budget spent: not cached, asked again later
        found = self._ask(text)
        if found is None:
            return NOT_APPLICABLE
        with self.lock:
            self.cache[key] = found
            while len(self.cache) > CACHE_SIZE:
                self.cache.popitem(last=False)
        return found

    def _take_call(self) -> bool:
        now = time.monotonic()
        while self.calls and now - self.calls[0] >= 3600:
            self.calls.popleft()
        if len(self.calls) >= self.check.calls_per_hour:
            return False
        self.calls.append(now)
        return True

    def _ask(self, text: str) -> CheckResult | None:
        import httpx  # only when a judge is configured and actually asked

        endpoint = self.check.endpoint
        headers = {}
        key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {
            "model": endpoint.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": f"Rule: {self.check.question}\n\n{text}"},
            ],
        }
        try:
            response = httpx.post(
                endpoint.url.rstrip("/") + "/chat/completions",
                json=body,
                headers=headers,
                timeout=endpoint.timeout_s,
            )
            response.raise_for_status()
            answer = json.loads(response.json()["choices"][0]["message"]["content"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return None  # an unreachable or confused judge says nothing, and is not cached
        if not isinstance(answer, dict) or not isinstance(answer.get("violation"), bool):
            return None
        if not answer["violation"]:
            return PASS
        turn = answer.get("turn")
        return flag(turn if isinstance(turn, int) else 0, None, str(answer.get("quote") or ""))


_JUDGES: dict[str, _Judge] = {}
_JUDGES_LOCK = threading.Lock()


def _judge_for(check: LLMJudgeCheck) -> _Judge:
    identity = check.model_dump_json()
    with _JUDGES_LOCK:
        found = _JUDGES.get(identity)
        if found is None:
            found = _JUDGES[identity] = _Judge(check)
        return found


def _render(conversation: Conversation) -> str:
    lines: list[str] = []
    for message in conversation.messages:
        if message.role == "system":
            continue
        parts = [message.text] if message.text else []
        parts += [f"-> {call.name}({call.raw_arguments})" for call in message.calls]
        lines.append(f"[{message.turn}] {message.role}: {' '.join(parts)}")
    return "\n".join(lines)


def reset_judges() -> None:
    """Forget every judge's cache and budget (tests)."""
    with _JUDGES_LOCK:
        _JUDGES.clear()
