"""`agentops serve`: run the app (Slack endpoints, web pages, /healthz) with uvicorn."""

import typer

from agentops.cli.common import console, fail, user_errors


@user_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    socket_mode: bool = typer.Option(
        False,
        "--socket-mode",
        help="Receive Slack clicks over Socket Mode (AGENTOPS_SLACK_APP_TOKEN), no public URL.",
    ),
    sign_in: str | None = typer.Option(
        None, "--sign-in", help="Print a one-time sign-in link for this registered person."
    ),
) -> None:
    """Serve agentops over HTTP until stopped (Ctrl-C)."""
    import uvicorn

    from agentops.cli.people_cmd import issue_link
    from agentops.serve.app import create_app
    from agentops.serve.memory import freeze_startup_objects
    from agentops.serve.proxy import uvicorn_options
    from agentops.settings import get_settings

    settings = get_settings()
    if socket_mode and settings.slack_app_token is None:
        raise fail("--socket-mode needs AGENTOPS_SLACK_APP_TOKEN (an xapp- app-level token)")
    base = settings.web_base_url or f"http://{host}:{port}"
    app = create_app(settings=settings)
    socket_client = None
    if socket_mode:
        from agentops.slack.socket_mode import connect_socket_mode

        assert settings.slack_app_token is not None and app.state.slack is not None
        socket_client = connect_socket_mode(
            app.state.slack, app_token=settings.slack_app_token.get_secret_value()
        )
    slack = "Slack: " + (
        "Socket Mode" if socket_mode else "/slack/events" if app.state.slack else "not configured"
    )
    console.print(f"agentops serving on http://{host}:{port} (health: /healthz; {slack})")
    if sign_in:
        console.print(f"Sign in as {sign_in}: {issue_link(sign_in, base_url=base)}", soft_wrap=True)
    else:
        console.print(
            f"Sign in: open the link printed by `agentops people login-link EMAIL --base-url "
            f"{base}` (register people with `agentops people add EMAIL --role reviewer`), "
            "or start with `agentops serve --sign-in EMAIL`.",
            soft_wrap=True,
        )
    freeze_startup_objects()
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            **uvicorn_options(settings.web_trusted_proxies),
        )
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    finally:
        if socket_client is not None:
            socket_client.close()
