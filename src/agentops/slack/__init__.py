"""Slack, a thin edge: owners approve or reject in Slack; rules stay in the services."""

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from agentops.actions.wakers import ServerWaker
from agentops.settings import Settings


def mount_slack(app: FastAPI, *, settings: Settings, engine: Engine, waker: ServerWaker) -> None:
    """Add /slack/events and the outbox worker to the app when Slack is configured."""
    if not settings.slack_enabled:
        app.state.slack = None
        return
    from agentops.bootstrap import make_slack_client
    from agentops.slack.endpoints import slack_router
    from agentops.slack.service import SlackChannel

    channel = SlackChannel(
        engine=engine, settings=settings, client=make_slack_client(settings), waker=waker
    )
    app.state.slack = channel
    app.include_router(slack_router(channel))
    app.router.add_event_handler("startup", channel.start)
    app.router.add_event_handler("shutdown", channel.stop)
