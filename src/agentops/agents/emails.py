"""Email addresses, the way people are identified and compared (pure)."""


def normalise_email(email: str) -> str:
    """Compare addresses the way the people table stores them."""
    return email.strip().lower()
