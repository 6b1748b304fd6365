"""Web pages for reviewers, owners, managers and admins, on the `agentops serve` app."""
