"""OpenTelemetry (OTLP) spans and log records turned into agentops conversations."""
