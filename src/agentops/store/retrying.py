"""Retry a unit of store work when the database connection drops, with backoff.

The one seam for retries of store calls: the flows wrap each unit of store work (one
transaction, or one idempotent step) in it, and nothing nests a second layer inside it.
Only errors that a fresh connection can cure are retried; a rule the store refuses, a
constraint or a bug fails at once.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from agentops.settings import get_settings
from agentops.store.db import StoreBusy, is_busy

T = TypeVar("T")
log = logging.getLogger(__name__)

# Waits double up to this (settings store_retry_*: by default nine attempts from 1 s span
# about 2.5 minutes, longer than a connection storm or a database restart, and far less
# than an evaluation interval).
MAX_DELAY_S = 30.0
# What drivers say when the server went away (psycopg often gives no SQLSTATE then).
CONNECTION_TROUBLE = (
    "server closed the connection",
    "connection refused",
    "could not connect",
    "terminating connection",
    "connection is closed",
    "connection timed out",
    "connection reset",
    "the database system is",
    "ssl syscall error",
)


def is_transient(exc: BaseException) -> bool:
    """True when a new connection may succeed: a dropped link, a restart, a busy store."""
    if isinstance(exc, StoreBusy | DisconnectionError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if is_busy(exc):
        return True
    # PostgreSQL: connection exceptions (class 08) and shutdowns (57P01-57P03).
    state = getattr(exc.orig, "sqlstate", None) or ""
    if state.startswith("08") or state in {"57P01", "57P02", "57P03"}:
        return True
    message = str(exc.orig).lower()
    return any(sign in message for sign in CONNECTION_TROUBLE)


def backoff_delays(*, attempts: int, first_s: float, cap_s: float = MAX_DELAY_S) -> list[float]:
    """The waits between attempts: doubling from first_s, each at most cap_s."""
    return [min(cap_s, first_s * 2**n) for n in range(max(0, attempts - 1))]


def with_store_retries(
    work: Callable[[], T],
    *,
    what: str,
    attempts: int | None = None,
    first_delay_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `work`; on a transient store error wait and run it again, up to `attempts` times."""
    settings = get_settings()
    delays = backoff_delays(
        attempts=attempts or settings.store_retry_attempts,
        first_s=settings.store_retry_first_delay_s if first_delay_s is None else first_delay_s,
    )
    for delay in [*delays, None]:
        try:
            return work()
        except Exception as exc:
            if delay is None or not is_transient(exc):
                raise
            kind = "busy" if isinstance(exc, StoreBusy) or is_busy(exc) else "unreachable"
            log.warning("%s: the store is %s (%s); again in %.0f s", what, kind, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises
