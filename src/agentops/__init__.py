"""agentops: keep live AI agents healthy after go-live."""

__version__ = "0.1.0"
