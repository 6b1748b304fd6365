"""A refusal the rules wrote to the audit trail is committed, then raised: in one place."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session


@contextmanager
def refusal_kept(session: Session, refusal: type[Exception]) -> Iterator[None]:
    """Commit what the block wrote when it raises `refusal`, then let the refusal go on.

    Services record why they refused (an approval by the wrong person, an execution
    without proof) in the caller's transaction; without this commit the error that
    reports the refusal would roll its own trail entry back.
    """
    try:
        yield
    except refusal:
        session.commit()
        raise
