"""Post a checkpoint to a Slack channel: a copy of the tree head outside the database.

An edge adapter (HTTP); the checkpoint itself is built and signed in audit/checkpoints.py.
"""

import json

import httpx

from agentops.audit.checkpoints import Checkpoint
from agentops.http_client import excerpt
from agentops.settings import get_settings


def checkpoint_message(checkpoint: Checkpoint) -> str:
    """The Slack text: the signed body and its signature, verbatim."""
    body = json.dumps({"checkpoint": checkpoint.body, "signature": checkpoint.signature})
    return f"agentops audit checkpoint ({checkpoint.tree_size} events)\n```{body}```"


def post_checkpoint(
    checkpoint: Checkpoint,
    *,
    token: str,
    channel: str,
    base_url: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Send the checkpoint with chat.postMessage; raises RuntimeError when Slack refuses.

    The API base defaults to AGENTOPS_SLACK_API_URL, like every other Slack call.
    """
    base_url = base_url or get_settings().slack_api_url
    with httpx.Client(base_url=base_url, timeout=10, transport=transport) as client:
        response = client.post(
            "/chat.postMessage",
            headers={"Authorization": f"Bearer {token}"},
            json={"channel": channel, "text": checkpoint_message(checkpoint)},
        )
    if response.status_code != 200 or not response.json().get("ok"):
        raise RuntimeError(f"Slack refused the checkpoint: {excerpt(response.text)}")
