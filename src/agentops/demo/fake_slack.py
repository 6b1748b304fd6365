"""A small fake Slack on loopback: the Web API methods agentops calls, and signed clicks.

slack-sdk's real WebClient talks to it through `base_url`, so the demo and the tests
exercise the real client (retries, 429 handling) over real HTTP. It can also play a
person clicking: it signs an interaction exactly as Slack does and POSTs it to the app.
"""

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from agentops.demo.fake_services import LoopbackServer

FAKE_BOT_TOKEN = "xoxb-fake-agentops-demo"
FAKE_SIGNING_SECRET = "fake-signing-secret-for-the-demo"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Slack's v0 request signature over the raw body."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_form(
    payload: dict[str, Any], *, secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """An interaction as Slack sends it: form-encoded `payload=` JSON, with its signature."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": sign(secret, timestamp, body),
    }
    return body, headers


@dataclass
class Posted:
    """A message the fake Slack holds, with every version it was updated to."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: int = 0
    replies: list[str] = field(default_factory=list)

    def button(self, action_id: str) -> dict[str, Any] | None:
        """The button with this action id, if the message still shows it."""
        for block in self.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == action_id:
                    return element  # type: ignore[no-any-return]
        return None


class FakeSlack(LoopbackServer):
    """chat.postMessage/update/postEphemeral, users.lookupByEmail, views.open, conversations.open.

    `users` maps emails to Slack user ids. `rate_limit(n)` answers the next n calls with
    429 and Retry-After: 0; `down = True` answers every call with 503 (an outage); a
    channel id starting with CGONE does not exist.
    """

    def __init__(self, *, users: dict[str, str], token: str = FAKE_BOT_TOKEN) -> None:
        self.users = dict(users)
        self.token = token
        self.messages: dict[tuple[str, str], Posted] = {}
        self.ephemerals: list[dict[str, str]] = []
        self.views: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.down = False
        self._throttle = 0
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        # One pooled client for the clicks it sends, as Slack keeps its connections warm.
        self._http = httpx.Client(timeout=10)
        app = FastAPI()
        app.post("/api/{method}")(self._api)
        super().__init__(app, thread_name="fake-slack")

    @property
    def api_url(self) -> str:
        """The base URL to give slack-sdk's WebClient."""
        return f"{self.url}/api/"

    def rate_limit(self, calls: int) -> None:
        """Answer the next `calls` API calls with 429 Too Many Requests."""
        with self._lock:
            self._throttle = calls

    def dm_channel(self, user_id: str) -> str:
        """The id of the DM channel between the bot and a user."""
        return f"D{user_id}"

    def messages_in(self, channel: str) -> list[Posted]:
        """Top-level messages in a channel, oldest first."""
        with self._lock:
            return [m for m in self.messages.values() if m.channel == channel and not m.thread_ts]

    def ephemerals_for(self, user_id: str) -> list[str]:
        """Texts of the ephemeral messages shown to a user."""
        with self._lock:
            return [e["text"] for e in self.ephemerals if e["user"] == user_id]

    def click(
        self,
        app_url: str,
        *,
        user_id: str,
        message: Posted,
        action_id: str,
        secret: str = FAKE_SIGNING_SECRET,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """Press a button of a message as `user_id`, signed as Slack signs it."""
        button = message.button(action_id) or {"action_id": action_id, "value": "0"}
        payload = block_actions(user_id=user_id, message=message, button=button)
        body, headers = signed_form(payload, secret=secret, timestamp=timestamp)
        return self._http.post(f"{app_url}/slack/events", content=body, headers=headers)

    def submit_reason(
        self, app_url: str, *, user_id: str, reason: str, secret: str = FAKE_SIGNING_SECRET
    ) -> httpx.Response:
        """Submit the last modal opened for this user with a reason."""
        view = next(v for v in reversed(self.views) if v["user"] == user_id)["view"]
        payload = view_submission(user_id=user_id, view=view, reason=reason)
        body, headers = signed_form(payload, secret=secret)
        return self._http.post(f"{app_url}/slack/events", content=body, headers=headers)

    async def _api(self, method: str, request: Request) -> JSONResponse:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            args: dict[str, Any] = json.loads(raw or b"{}")
        else:
            args = dict(parse_qsl(raw.decode()))
        args.update(request.query_params)
        with self._lock:
            self.calls.append(method)
            if self.down:
                return JSONResponse({"ok": False, "error": "service_unavailable"}, 503)
            if self._throttle > 0:
                self._throttle -= 1
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"}, 429, headers={"Retry-After": "0"}
                )
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"ok": False, "error": "invalid_auth"})
            return JSONResponse(self._answer(method, args))

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        match method:
            case "users.lookupByEmail":
                user_id = self.users.get(str(args.get("email", "")).lower())
                if user_id is None:
                    return {"ok": False, "error": "users_not_found"}
                return {"ok": True, "user": {"id": user_id, "profile": {"email": args["email"]}}}
            case "conversations.open":
                return {"ok": True, "channel": {"id": self.dm_channel(str(args["users"]))}}
            case "chat.postMessage" if str(args.get("channel", "")).startswith("CGONE"):
                return {"ok": False, "error": "channel_not_found"}
            case "chat.postMessage":
                ts = f"{int(time.time())}.{next(self._ts):06d}"
                blocks = _json_arg(args.get("blocks")) or []
                posted = Posted(
                    channel=str(args["channel"]),
                    ts=ts,
                    text=str(args.get("text", "")),
                    blocks=blocks,
                    thread_ts=args.get("thread_ts"),
                )
                self.messages[(posted.channel, ts)] = posted
                if posted.thread_ts:
                    parent = self.messages.get((posted.channel, posted.thread_ts))
                    if parent is not None:
                        parent.replies.append(posted.text)
                return {"ok": True, "channel": posted.channel, "ts": ts}
            case "chat.update":
                posted = self.messages.get((str(args["channel"]), str(args["ts"])))  # type: ignore[assignment]
                if posted is None:
                    return {"ok": False, "error": "message_not_found"}
                posted.text = str(args.get("text", posted.text))
                posted.blocks = _json_arg(args.get("blocks")) or []
                posted.updates += 1
                return {"ok": True, "channel": posted.channel, "ts": posted.ts}
            case "chat.postEphemeral":
                self.ephemerals.append(
                    {
                        "channel": str(args["channel"]),
                        "user": str(args["user"]),
                        "text": args["text"],
                    }
                )
                return {"ok": True, "message_ts": f"{time.time():.6f}"}
            case "views.open":
                view = _json_arg(args.get("view")) or {}
                self.views.append(
                    {
                        "trigger_id": args.get("trigger_id"),
                        "view": view,
                        "user": _trigger_user(str(args.get("trigger_id", ""))),
                    }
                )
                return {"ok": True, "view": {"id": f"V{len(self.views)}", **view}}
        return {"ok": False, "error": "unknown_method"}


def block_actions(*, user_id: str, message: Posted, button: dict[str, Any]) -> dict[str, Any]:
    """A block_actions payload in the shape Slack sends for a button press."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"{int(time.time())}.{user_id}.trigger",
        "channel": {"id": message.channel, "name": "directmessage"},
        "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
        "state": {"values": {}},
        "response_url": "https://hooks.slack.invalid/actions/fake",
        "actions": [
            {
                "type": "button",
                "action_id": button.get("action_id"),
                "block_id": "agentops_decision",
                "value": button.get("value"),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def view_submission(*, user_id: str, view: dict[str, Any], reason: str) -> dict[str, Any]:
    """A view_submission payload for the reject modal, with the typed reason."""
    return {
        "type": "view_submission",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "trigger_id": f"{int(time.time())}.{user_id}.trigger",
        "view": {
            **view,
            "id": "V0FAKE",
            "state": {
                "values": {
                    "reason": {"reason_input": {"type": "plain_text_input", "value": reason}}
                }
            },
        },
        "response_urls": [],
    }


def _trigger_user(trigger_id: str) -> str:
    parts = trigger_id.split(".")
    return parts[1] if len(parts) == 3 else ""


def _json_arg(value: Any) -> Any:
    # slack-sdk sends JSON bodies for most methods, but form fields hold JSON as text.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value
