"""Deployers agentops ships: per-agent configuration, flag deployers, and the read they share."""
