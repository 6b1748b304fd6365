"""Langfuse, both ways: pull observations into agentops, write review verdicts back as scores."""
