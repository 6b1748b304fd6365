"""Stored conversations, as people and tools see them."""
