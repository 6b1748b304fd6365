"""`agentops serve`: the long-running process that hosts the Slack endpoints and web pages."""
