"""`agentops serve`: run the app (Slack endpoints, web pages, /healthz) with uvicorn."""

import typer

from agentops.cli.common import console, fail, user_errors


@user_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve agentops over HTTP until stopped (Ctrl-C)."""
    import uvicorn

    from agentops.serve.app import create_app
    from agentops.settings import get_settings
    from agentops.web.routes import sign_in_hint

    app = create_app()
    console.print(f"agentops serving on http://{host}:{port} (health: /healthz)")
    console.print(sign_in_hint(get_settings(), host=host, port=port))
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror}") from None
