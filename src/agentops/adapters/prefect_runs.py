"""Wake a Prefect flow run waiting on an action: the Prefect side of the approval gate.

An edge adapter (the Prefect API). The gate flow in flows/approval_gate.py suspends or
pauses on an action; a decision from any channel wakes it through these functions, which
the composition root hands to the wakers, so nothing below the channels imports a flow.
"""

import logging
import time
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from prefect.flow_runs import resume_flow_run

log = logging.getLogger(__name__)


def resume_waiting_run(*, flow_run_id: str, action_id: int, grace_s: float = 5.0) -> bool:
    """Wake the flow run waiting on this action; False (logged) if it is not waiting."""
    try:
        run_id = UUID(flow_run_id)
    except ValueError:
        log.warning("action #%s: %r is not a flow run id", action_id, flow_run_id)
        return False
    # A decision can land just before the flow reaches its suspend (or while a woken run
    # is starting again on its way to the next one): give it a moment.
    give_up_at = time.monotonic() + grace_s
    while True:
        try:
            resume_flow_run(run_id, run_input={"action_id": action_id})
            return True
        except ObjectNotFound:
            log.warning("action #%s: flow run %s not found", action_id, run_id)
            return False
        except FlowPauseTimeout:
            log.warning("action #%s: flow run %s already gave up waiting", action_id, run_id)
            return False
        except NotPausedError:
            if _is_unfinished(run_id) and time.monotonic() < give_up_at:
                time.sleep(0.2)
                continue
            log.info("action #%s: flow run %s is not waiting any more", action_id, run_id)
            return False
        except RuntimeError as exc:
            log.warning("action #%s: flow run %s refused to resume: %s", action_id, run_id, exc)
            return False


def run_is_waiting(flow_run_id: str) -> bool:
    """True when the flow run is paused or suspended (and so can be resumed)."""
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(flow_run_id)).state
    except (ObjectNotFound, ValueError):
        return False
    return state is not None and state.is_paused()


def _is_unfinished(run_id: UUID) -> bool:
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
    except ObjectNotFound:
        return False
    return state is not None and not state.is_final()
