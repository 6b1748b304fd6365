"""Email addresses, the way people are identified and compared (pure)."""

from agentops.identity import normalise_email as normalise_email
