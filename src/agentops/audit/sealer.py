"""Seal audit entries promptly without putting the sequencer on any writer's path.

A writer's commit only wakes this process's sealer thread (one per engine) and returns.
The thread waits a few milliseconds so that other writers' entries join the same batch,
then seals every committed entry up to the newest one it was woken for, in its own
transactions. It shares the chain head with other processes' sequencers: when one of
them holds it (`FOR UPDATE SKIP LOCKED` finds it taken), the thread waits a moment and
looks again, then queues for the head; it is done as soon as nothing it was woken for
is still pending. It stops after a few idle seconds, when its engine is disposed
(sealing what it was woken for first) and at interpreter exit, so a short CLI command
leaves nothing behind.

PostgreSQL uses this. SQLite has one writer at a time, so there a writer seals inside
its own transaction just before it commits (see audit/service.py), which costs no extra
lock and no extra commit; a background writer would only queue for the same lock.
"""

import atexit
import logging
import os
import threading
import time
import weakref

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, text

from agentops.store.core_tables import AuditPending

log = logging.getLogger(__name__)

# Long enough to gather a burst of commits into one sealing transaction, short enough
# that `audit log` right after a click rarely has anything left to seal itself.
DEBOUNCE_S = 0.05
# How long to let another process's sequencer finish its batch before looking again,
# and then how long to queue for the head before leaving the rest to readers and the
# seal-audit-trail schedule.
RETRY_S = 0.05
LOCK_WAIT_S = 10.0
IDLE_S = 5.0
STOP_TIMEOUT_S = 10.0


class Sealer:
    """One engine's background sealing thread, started on demand."""

    def __init__(self, engine: Engine) -> None:
        self._engine = weakref.ref(engine)
        self._changed = threading.Condition()
        self._asked = 0  # wake-ups so far
        self._done = 0  # wake-ups whose entries are sealed (or given up on)
        self._through = 0  # the newest pending entry id any wake-up named
        self._stopping = False
        self._thread: threading.Thread | None = None

    def wake(self, *, through: int) -> None:
        """Seal, soon, every committed entry up to pending id `through`."""
        with self._changed:
            self._asked += 1
            self._through = max(self._through, through)
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="agentops-audit-sealer", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """Block until everything asked for so far is sealed; False on timeout."""
        with self._changed:
            target = self._asked
            return self._changed.wait_for(lambda: self._done >= target, timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Seal what was asked for, then let the thread end."""
        with self._changed:
            thread = self._thread
            self._stopping = True
            self._changed.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                busy = self._changed.wait_for(
                    lambda: self._asked > self._done or self._stopping, IDLE_S
                )
                if not busy or (self._stopping and self._asked == self._done):
                    self._thread = None
                    self._changed.notify_all()
                    return
                stopping = self._stopping
            if not stopping:
                time.sleep(DEBOUNCE_S)
            with self._changed:
                target, through = self._asked, self._through
            self._seal(through)
            with self._changed:
                self._done = max(self._done, target)
                self._changed.notify_all()

    def _seal(self, through: int) -> None:
        engine = self._engine()
        if engine is None:
            return
        try:
            seal_through(engine, through=through)
        except Exception:  # the entries are committed: the next reader or the schedule seals
            log.warning("could not seal the audit trail now; it is sealed later", exc_info=True)
            return
        from agentops.audit.auto_checkpoint import checkpoint_if_due

        checkpoint_if_due(engine)


def seal_through(engine: Engine, *, through: int) -> None:
    """Seal until no committed entry with id <= through is pending (sharing the head).

    When another sequencer holds the head it is probably sealing these very entries, so
    this looks again a moment later before queueing for the head itself: with many
    processes, most of them then find their entries sealed and take no lock at all.
    """
    from agentops.audit.service import seal_pending

    wait = False
    while True:
        with Session(engine) as session:
            if not _pending_through(session, through):
                return
            if wait and engine.dialect.name == "postgresql":
                session.exec(text(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT_S * 1000)}ms'"))  # type: ignore[call-overload]
            sealed = seal_pending(session, wait=wait)
            session.commit()
        if sealed is None:
            time.sleep(RETRY_S)
            wait = True


def _pending_through(session: Session, through: int) -> bool:
    found = session.exec(
        select(AuditPending.id).where(col(AuditPending.id) <= through).limit(1)
    ).first()
    return found is not None


# --- one sealer per engine in this process ----------------------------------------------

_sealers: "weakref.WeakKeyDictionary[Engine, Sealer]" = weakref.WeakKeyDictionary()
_registry = threading.Lock()


def _base(engine: Engine) -> Engine:
    # engine.execution_options(...) makes a proxy sharing the pool; one sealer serves both.
    while (proxied := getattr(engine, "_proxied", None)) is not None:
        engine = proxied
    return engine


def sealer_for(engine: Engine) -> Sealer:
    """This process's sealer for the engine (created on first use)."""
    base = _base(engine)
    with _registry:
        sealer = _sealers.get(base)
        if sealer is None:
            sealer = _sealers[base] = Sealer(base)
            event.listen(base, "engine_disposed", _stop_on_dispose)
        return sealer


def wake_sealer(engine: Engine, *, through: int) -> None:
    """After a commit that recorded entries up to pending id `through`: seal them soon."""
    sealer_for(engine).wake(through=through)


def wait_until_sealed(engine: Engine, *, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Block until this process's sealer has sealed what it was woken for so far."""
    with _registry:
        sealer = _sealers.get(_base(engine))
    return True if sealer is None else sealer.wait(timeout)


def _stop_on_dispose(engine: Engine) -> None:
    with _registry:
        sealer = _sealers.get(engine)
    if sealer is not None:
        sealer.stop()


@atexit.register
def _stop_all() -> None:
    with _registry:
        sealers = list(_sealers.values())
    for sealer in sealers:
        sealer.stop()


def _forget_all() -> None:
    # A forked child has none of the parent's threads; it starts its own on demand.
    global _registry
    _registry = threading.Lock()
    _sealers.clear()


os.register_at_fork(after_in_child=_forget_all)
