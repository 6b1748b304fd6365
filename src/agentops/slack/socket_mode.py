"""Socket Mode: the same handlers as HTTP, over a websocket the app opens to Slack.

For a workspace with no public URL. Slack authenticates the connection with the
app-level token, so envelopes carry no request signature; each is acknowledged at once
and the work runs afterwards, exactly as for `/slack/events`.
"""

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from agentops.slack.service import SlackChannel

log = logging.getLogger(__name__)
Listener = Callable[[Any, SocketModeRequest], None]


def socket_mode_listener(channel: SlackChannel) -> Listener:
    """A listener for slack-sdk's SocketModeClient that hands interactions to the channel."""

    def listener(client: Any, request: SocketModeRequest) -> None:
        ack_body = None
        work = None
        if request.type == "interactive" and isinstance(request.payload, dict):
            ack, work = channel.acknowledge(request.payload)
            ack_body = ack.body
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=ack_body)
        )
        if work is not None:
            channel.waker.submit(work)

    return listener


def connect_socket_mode(channel: SlackChannel, *, app_token: str) -> Any:
    """Open the Socket Mode connection; returns the client (close it to disconnect)."""
    from slack_sdk.socket_mode import SocketModeClient

    client = SocketModeClient(app_token=app_token, web_client=channel.client)
    client.socket_mode_request_listeners.append(socket_mode_listener(channel))
    client.connect()
    return client
