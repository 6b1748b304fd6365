"""Langfuse observations as OTLP Items, so the one normaliser builds their conversations.

Pure: no I/O. A GENERATION becomes an inference span with GenAI >= 1.37 messages, a
TOOL an `execute_tool` span, an AGENT an `invoke_agent` span. The conversation is the
observation's session, else its trace.
"""

import json
from datetime import datetime
from typing import Any

from agentops.ingestion.otlp.model import SPAN, Item

SESSION_KEY = "session.id"


def observation_item(observation: dict[str, Any], *, service_name: str) -> Item | None:
    """The observation as a span Item, or None when it carries no trace id or id."""
    trace_id, observation_id = observation.get("traceId"), observation.get("id")
    if not trace_id or not observation_id:
        return None
    kind = str(observation.get("type") or "").upper()
    attributes: dict[str, Any] = {}
    if kind == "GENERATION":
        attributes["gen_ai.operation.name"] = "chat"
        attributes["gen_ai.input.messages"] = json.dumps(_messages(observation.get("input")))
        attributes["gen_ai.output.messages"] = json.dumps(_messages(observation.get("output")))
    elif kind == "TOOL":
        attributes["gen_ai.operation.name"] = "execute_tool"
        attributes["gen_ai.tool.name"] = observation.get("name") or "tool"
        if observation.get("input") is not None:
            attributes["gen_ai.tool.call.arguments"] = _text(observation["input"])
        if observation.get("output") is not None:
            attributes["gen_ai.tool.call.result"] = _text(observation["output"])
    elif kind == "AGENT":
        attributes["gen_ai.operation.name"] = "invoke_agent"
    if observation.get("sessionId"):
        attributes[SESSION_KEY] = str(observation["sessionId"])
    if observation.get("version"):
        attributes["gen_ai.agent.version"] = str(observation["version"])
    return Item(
        kind=SPAN,
        trace_id=str(trace_id),
        span_id=str(observation_id),
        parent_span_id=str(observation.get("parentObservationId") or ""),
        name=str(observation.get("name") or kind.lower()),
        start_ns=_ns(observation.get("startTime")),
        end_ns=_ns(observation.get("endTime")),
        attributes=attributes,
        resource={"service.name": service_name},
    )


def _messages(value: Any) -> list[dict[str, Any]]:
    """Chat messages (OpenAI shape, or a bare string) as GenAI messages of parts."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, dict) and "role" in value:
        value = [value]
    if isinstance(value, str):
        value = [{"role": "assistant", "content": value}]
    if not isinstance(value, list):
        return []
    found = []
    for message in value:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role") or "user")
        parts: list[dict[str, Any]] = []
        if role == "tool":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "response": message.get("content"),
                }
            )
        else:
            if message.get("content") not in (None, ""):
                parts.append({"type": "text", "content": _text(message["content"])})
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {} if isinstance(call, dict) else {}
                if function.get("name"):
                    parts.append(
                        {
                            "type": "tool_call",
                            "id": call.get("id"),
                            "name": function["name"],
                            "arguments": function.get("arguments"),
                        }
                    )
        found.append({"role": role, "parts": parts})
    return found


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _ns(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(moment.timestamp() * 1_000_000) * 1000
