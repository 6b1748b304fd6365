"""A fake OpenAI-compatible chat completions server on loopback, scripted by the last message."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from otlp_server import free_port

# What the assistant answers, by the last message of the request.
SCRIPT: dict[str, dict[str, Any]] = {
    "Cancel booking ABC123": {
        "tool": ("call_1", "cancel_reservation", '{"reservation_id": "ABC123"}')
    },
    "call_1": {"text": "Done, it is cancelled."},
    "Now get me a human": {"tool": ("call_2", "transfer_to_human_agents", "{}")},
    "call_2": {"text": "A colleague will take over."},
}


def _answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
    last = messages[-1]
    key = last.get("tool_call_id") if last["role"] == "tool" else last.get("content")
    step = SCRIPT[key]
    if "tool" in step:
        call_id, name, arguments = step["tool"]
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        }
        finish = "tool_calls"
    else:
        message = {"role": "assistant", "content": step["text"]}
        finish = "stop"
    return {
        "id": f"chatcmpl-{len(messages)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "gpt-fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


@contextmanager
def fake_openai() -> Iterator[str]:
    """The base URL (…/v1) of a running fake; stopped on exit."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> dict[str, Any]:
        return _answer((await request.json())["messages"])

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": name,
            "parameters": {"type": "object", "properties": {}},
        },
    }
    for name in ("cancel_reservation", "transfer_to_human_agents")
]
RESULTS = {
    "cancel_reservation": '{"status": "cancelled"}',
    "transfer_to_human_agents": "transferred",
}


def run_agent(client: Any, turn: Any) -> None:
    """Two user turns, each: ask, run the tool the model calls, ask again. `turn` wraps each."""
    messages: list[dict[str, Any]] = []
    for user_text in ("Cancel booking ABC123", "Now get me a human"):
        with turn():
            messages.append({"role": "user", "content": user_text})
            while True:
                reply = (
                    client.chat.completions.create(model="gpt-fake", messages=messages, tools=TOOLS)
                    .choices[0]
                    .message
                )
                if not reply.tool_calls:
                    messages.append({"role": "assistant", "content": reply.content})
                    break
                messages.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": c.id,
                                "type": "function",
                                "function": {
                                    "name": c.function.name,
                                    "arguments": c.function.arguments,
                                },
                            }
                            for c in reply.tool_calls
                        ],
                    }
                )
                for call in reply.tool_calls:
                    messages.append(
                        {
                            "role": "tool",
                            "tool_call_id": call.id,
                            "content": RESULTS[call.function.name],
                        }
                    )
