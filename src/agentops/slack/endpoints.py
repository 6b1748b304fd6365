"""`POST /slack/events`: signed Slack requests only, verified over the raw body first."""

import json

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import JSONResponse

from agentops.slack.service import SlackChannel, parse_interaction

# Slack's interaction payloads are a few kilobytes; anything this large is not from Slack.
MAX_BODY = 512 * 1024


def slack_router(channel: SlackChannel) -> APIRouter:
    """The router that serves Slack's interactivity and events requests."""
    router = APIRouter()

    @router.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request, background: BackgroundTasks) -> Response:
        """Verify, acknowledge within Slack's 3 seconds, then do the work."""
        body = await request.body()
        if len(body) > MAX_BODY or not channel.verified(body, request.headers):
            # Nothing is parsed, let alone acted on, before the signature checks out.
            return JSONResponse({"ok": False, "error": "invalid signature"}, status_code=401)
        if request.headers.get("content-type", "").startswith("application/json"):
            return _event(body)
        payload = parse_interaction(body)
        if payload is None:
            return JSONResponse({"ok": False, "error": "no payload"}, status_code=400)
        ack, work = channel.acknowledge(payload)
        if work is not None:
            background.add_task(work)  # runs after the response is sent
        if ack.body is not None:
            return JSONResponse(ack.body)
        return Response(status_code=200)

    return router


def _event(body: bytes) -> Response:
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, RecursionError, UnicodeDecodeError):
        return JSONResponse({"ok": False, "error": "not JSON"}, status_code=400)
    if isinstance(event, dict) and event.get("type") == "url_verification":
        return JSONResponse({"challenge": str(event.get("challenge", ""))})
    return Response(status_code=200)  # no event subscriptions are acted on yet
