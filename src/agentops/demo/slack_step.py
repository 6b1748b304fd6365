"""The demo's approval step in (fake) Slack: the real server, a fake Slack, a signed click.

`agentops serve`'s app runs on loopback with the Slack channel switched on; its outbox
worker posts each approval request to the fake Slack, the demo prints the card as the
owner sees it, and the simulated owner presses Approve: a request signed exactly as
Slack signs it, attributed by the owner's Slack id, never by anything in the payload.
"""

import time
from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.panel import Panel
from rich.text import Text
from sqlalchemy.engine import Engine

from agentops.demo.fake_services import LoopbackServer
from agentops.demo.fake_slack import FAKE_SIGNING_SECRET, FakeSlack, Posted
from agentops.settings import Settings
from agentops.slack import messaging

DEMO_CHANNEL = "C0AGENTOPS"
WAIT_S = 30.0


class DemoSlack:
    """A fake Slack and the agentops server, wired together for the demo."""

    def __init__(self, *, engine: Engine, people: dict[str, str], agent: str) -> None:
        self.engine = engine
        self.people = people  # email -> Slack user id
        self.agent = agent
        self.slack = FakeSlack(users=people)
        self.server: LoopbackServer | None = None
        self.channel: Any = None

    def __enter__(self) -> Self:
        from agentops.serve.app import create_app

        self.slack.start()
        settings = Settings(
            database_url=self.engine.url.render_as_string(hide_password=False),
            slack_bot_token=self.slack.token,  # type: ignore[arg-type]
            slack_signing_secret=FAKE_SIGNING_SECRET,  # type: ignore[arg-type]
            slack_api_url=self.slack.api_url,
            slack_agent_channels={self.agent: DEMO_CHANNEL},
        )
        app = create_app(settings=settings, engine=self.engine)
        self.channel = app.state.slack
        self.server = LoopbackServer(app, thread_name="agentops-serve")
        self.server.start()
        # `agentops serve` sends its outbox from a worker thread; the demo sends it at the
        # moments the story needs it, so no write of its own races the demo's reviewers.
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.channel is not None:
            self.channel.stop()
        if self.server is not None:
            self.server.stop()
        self.slack.stop()

    @property
    def url(self) -> str:
        """Where the agentops server listens."""
        assert self.server is not None
        return self.server.url

    def request_for(self, *, action_id: int, email: str) -> Posted:
        """Wait for the approval request in this person's DM and return it."""
        dm = self.slack.dm_channel(self.people[email])
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            self.channel.pump_once()
            for message in self.slack.messages_in(dm):
                button = message.button(messaging.APPROVE)
                if button is not None and button.get("value") == str(action_id):
                    return message
            time.sleep(0.05)
        raise TimeoutError(f"no Slack request for action {action_id} reached {email}")

    def show(self, console: Console, message: Posted, *, email: str) -> None:
        """Print the card as the person sees it in Slack (text only, no markup)."""
        text = messaging.as_text(message.blocks).replace("*", "")
        for who, slack_id in self.people.items():  # Slack shows a mention as the name
            text = text.replace(f"<@{slack_id}>", f"@{who.split('@')[0]}")
        console.print(Panel(Text(text), title=f"Slack DM to {email}", expand=False))

    def approve(self, message: Posted, *, email: str) -> int:
        """Press Approve as this person; returns the HTTP status agentops answered."""
        answer = self.slack.click(
            self.url,
            user_id=self.people[email],
            message=message,
            action_id=messaging.APPROVE,
        )
        return answer.status_code

    def result_reply(self, message: Posted) -> str | None:
        """The execution result posted in the message's thread, once it is there."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            self.channel.pump_once()
            if message.replies:
                return message.replies[-1]
            time.sleep(0.05)
        return None
