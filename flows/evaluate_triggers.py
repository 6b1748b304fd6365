"""Flow: evaluate the written rollback triggers for an agent's live version."""

from prefect import flow, get_run_logger, task
from prefect.runtime import deployment

from agentops.actions.service import record_flow_run
from agentops.agents import service as agents
from agentops.reactions import evaluate_live_version
from agentops.store.db import engine_scope, write_session
from agentops.store.retrying import with_store_retries
from agentops.textfiles import read_text_file
from agentops.triggers.service import register_trigger_set
from agentops.worker_paths import require_absolute_paths

ACTOR = "flow:evaluate-triggers"


@task(name="evaluate-live-version")
def evaluate_agent(*, agent_name: str, triggers_file: str | None) -> dict[str, object]:
    """Run every trigger on the live version; propose a rollback on a breach."""
    # One transaction: a dropped connection rolls it back whole, and it runs again.
    return with_store_retries(
        lambda: _evaluate(agent_name=agent_name, triggers_file=triggers_file),
        what=f"evaluating {agent_name}",
    )


def _evaluate(*, agent_name: str, triggers_file: str | None) -> dict[str, object]:
    # The write lock first: on SQLite two evaluations then take turns instead of one
    # failing on a stale read (PostgreSQL locks each trigger's chart row instead).
    with engine_scope() as engine, write_session(engine) as session:
        agent = agents.get_agent(session, name=agent_name)
        trigger_set = None
        if triggers_file:
            trigger_set = register_trigger_set(
                session,
                agent=agent,
                text=read_text_file(triggers_file, what="trigger file"),
                source=triggers_file,
                actor=ACTOR,
            )
        version, report = evaluate_live_version(
            session, agent=agent, actor=ACTOR, trigger_set=trigger_set
        )
        session.flush()
        action = report.proposed_action
        summary = {
            "version": version.version,
            "outcomes": {e.trigger_name: e.outcome.value for e in report.evaluations},
            "evaluation_ids": [e.id for e in report.evaluations],
            "breached": [e.trigger_name for e in report.breached],
            "action_id": action.id if action else None,
            "marked_known_good": report.marked_known_good,
            "not_proposed_reason": report.not_proposed_reason,
        }
    return summary


@flow(name="evaluate-triggers")
def evaluate_triggers(
    agent_name: str,
    triggers_file: str | None = None,
    rollback_deployment: str | None = None,
) -> dict[str, object]:
    """Evaluate triggers; on a breach propose a rollback and optionally start its gate."""
    logger = get_run_logger()
    require_absolute_paths(in_deployment=deployment.id is not None)
    summary = evaluate_agent(agent_name=agent_name, triggers_file=triggers_file)
    logger.info("evaluation: %s", summary)
    if summary["action_id"] is not None and rollback_deployment:
        from prefect.deployments import run_deployment

        # timeout=0: start the approval-gated rollback without waiting for the owner here.
        # run_deployment fails loudly when the server is down, where an event could be lost.
        # as_subflow=False: a subflow cannot suspend, and the gate must outlive this run.
        started = run_deployment(
            name=rollback_deployment,
            parameters={"action_id": summary["action_id"]},
            timeout=0,
            as_subflow=False,
        )

        def record() -> None:
            with engine_scope() as engine, write_session(engine) as session:
                record_flow_run(
                    session, action_id=int(summary["action_id"]), flow_run_id=str(started.id)
                )

        with_store_retries(record, what=f"recording the gate of #{summary['action_id']}")
        logger.info(
            "started %s (flow run %s) for action %s",
            rollback_deployment,
            started.id,
            summary["action_id"],
        )
    return summary
