"""Wakers for `decide_and_wake`: what a long-running process does once a decision lands."""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from sqlalchemy.engine import Engine

from agentops.actions.decisions import DecisionOutcome
from agentops.actions.deployer import Deployer
from agentops.actions.executor import execute_approved
from agentops.errors import RuleViolation
from agentops.store.models import Decision

log = logging.getLogger(__name__)


class ResumeRun(Protocol):
    """Wake the orchestrator's run waiting on an action; False when it is not waiting."""

    def __call__(self, *, flow_run_id: str, action_id: int) -> bool:
        """Resume the run (or say why not, by returning False)."""


class ServerWaker:
    """In `agentops serve`: wake the gate run waiting on the action, or execute it here.

    A gate run re-reads the store after waking, so it (not this process) deploys what it
    gates; an approval nobody waits on is executed in a worker thread. Either way the
    executor's compare-and-set on the action's status lets exactly one execution start.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        deployer: Callable[[], Deployer | None],
        health_timeout_s: float,
        resume_run: ResumeRun | None = None,
        after: Callable[[], None] = lambda: None,
        workers: int = 4,
    ) -> None:
        self.engine = engine
        self.deployer = deployer
        # The orchestrator's side (adapters/prefect_runs.py), handed in by the composition
        # root; without it the gate polls the store and finds the decision by itself.
        self.resume_run = resume_run
        self.health_timeout_s = health_timeout_s
        self.after = after
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agentops-exec")
        # One deployer client for every execution: its connection pool is thread-safe,
        # and building a client per click would cost a TLS context each time.
        self._deployer: Deployer | None = None
        self._deployer_lock = threading.Lock()

    def wake(self, outcome: DecisionOutcome) -> None:
        """Hand the decision to whatever runs it next, without blocking the caller."""
        if outcome.flow_run_id:
            self.pool.submit(self._resume, outcome)
        elif outcome.decision == Decision.approve:
            self.pool.submit(self._execute, outcome.action_id)
        self.after()

    def submit(self, work: Callable[[], object]) -> Future[object]:
        """Run other work on the same pool (used for Slack follow-ups)."""
        return self.pool.submit(work)

    def close(self) -> None:
        """Let running executions finish, then stop the pool and the deployer client."""
        self.pool.shutdown(wait=True)
        close = getattr(self._deployer, "close", None)
        if close is not None:
            close()

    def _shared_deployer(self) -> Deployer | None:
        with self._deployer_lock:
            if self._deployer is None:
                self._deployer = self.deployer()
            return self._deployer

    def _execute(self, action_id: int) -> None:
        deployer = self._shared_deployer()
        if deployer is None:
            # Executing without a deployer would close the action as failed: leave it
            # approved for `agentops actions run` (the sweeper lists it as not run yet).
            log.warning("action #%s approved; no deployer configured to run it", action_id)
            self.after()
            return
        try:
            execute_approved(
                self.engine,
                action_id=action_id,
                deployer=deployer,
                health_timeout_s=self.health_timeout_s,
            )
        except RuleViolation as exc:  # someone else started it, or it was refused (audited)
            log.info("action #%s not executed here: %s", action_id, exc)
        except Exception:
            log.exception("action #%s: execution failed; the sweeper reconciles it", action_id)
        finally:
            self.after()

    def _resume(self, outcome: DecisionOutcome) -> None:
        if self.resume_run is None:
            return  # the gate polls the store and finds the decision by itself
        try:
            self.resume_run(flow_run_id=outcome.flow_run_id or "", action_id=outcome.action_id)
        except Exception as exc:  # the decision is stored; the gate's poll picks it up
            log.warning("action #%s: could not resume its gate run: %s", outcome.action_id, exc)
