"""The demo's story, step by step: each step calls the same flows and services users run."""

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agentops.actions import service as actions
from agentops.adapters.prefect_runs import resume_waiting_run
from agentops.agents import service as agents
from agentops.agents.actors import Channel, person_actor
from agentops.audit.service import iter_events, verify_chain
from agentops.checks.detection import plan_detection
from agentops.checks.service import load_suite, register_check_set, require_check_set, run_report
from agentops.demo.fake_services import FakeServices
from agentops.demo.reviewers import SimulatedReviewer
from agentops.demo.runner import DemoResult, Stopwatch
from agentops.demo.slack_step import DemoSlack
from agentops.demo.traffic import DEMO_PROFILES, generate_conversations
from agentops.flows.evaluate_triggers import evaluate_triggers
from agentops.flows.redeploy_agent import redeploy_agent
from agentops.flows.rollback_agent import rollback_agent
from agentops.flows.sample_conversations import sample_conversations
from agentops.packaged import example_text
from agentops.review import service as review
from agentops.review.rubric import register_rubric
from agentops.store.db import make_engine, write_session
from agentops.store.migrate import ensure_schema
from agentops.store.models import Action, ActionStatus, Decision, Evaluation, Outcome, Role
from agentops.triggers.service import register_trigger_set

DEMO_AGENT = "airline-assistant"
OWNER = "olivia.owner@example.com"
BACKUP = "bashir.backup@example.com"
RELEASE_MANAGER = "rene.release@example.com"
REVIEWERS = ("rita.reviewer@example.com", "raj.reviewer@example.com")
SLACK_USERS = {OWNER: "U0OLIVIA", BACKUP: "U0BASHIR"}
CONVERSATIONS_PER_HOUR = 60
SAMPLE_PER_WINDOW = 20
HOURS_ON_V1 = 2
MAX_HOURS_ON_V2 = 6
APPROVAL_WAIT_LIMIT_S = 60
# Reviewers are human: a rare wrong judgement per criterion keeps the statistics honest.
REVIEWER_ERROR_RATE = 0.003


class Scenario:
    """v1 healthy, v2 degrades, triggers fire, the owner approves, v1 returns, v3 ships."""

    def __init__(
        self,
        *,
        services: FakeServices,
        seed: int,
        console: Console,
        watch: Stopwatch,
        result: DemoResult,
    ) -> None:
        self.services = services
        self.seed = seed
        self.console = console
        self.watch = watch
        self.result = result
        self.engine = make_engine()
        self.clock = simulated_start()
        self.hour = 0
        self.reviewers = [
            SimulatedReviewer(email=email, error_rate=REVIEWER_ERROR_RATE, seed=seed + offset)
            for offset, email in enumerate(REVIEWERS)
        ]
        self.rollback_action_id: int | None = None
        # The approval step runs in (fake) Slack when given; otherwise through the CLI path.
        self.slack: DemoSlack | None = None

    def in_slack(self) -> DemoSlack:
        """The fake Slack and the agentops server the approval steps go through."""
        self.slack = DemoSlack(engine=self.engine, people=SLACK_USERS, agent=DEMO_AGENT)
        return self.slack

    def say(self, message: str) -> None:
        """One progress line, prefixed with the simulated clock."""
        self.console.print(f"[dim]{self.clock:%a %H:%M}[/] {message}", highlight=False)

    def set_up(self) -> None:
        """Register the agent, its owners, rubric and triggers; v1 is live and known good."""
        ensure_schema(self.engine)
        with Session(self.engine) as session:
            agent = agents.register_agent(
                session, name=DEMO_AGENT, owner_email=OWNER, backup_email=BACKUP, actor=OWNER
            )
            v1 = agents.ensure_version(session, agent=agent, version="v1", actor=RELEASE_MANAGER)
            agents.set_live(session, agent=agent, version=v1, actor=RELEASE_MANAGER)
            agents.mark_known_good(session, agent=agent, version=v1, actor=OWNER)
            rubric = register_rubric(
                session,
                text=example_text("rubric.example.yaml"),
                source="deployments/rubric.example.yaml",
                actor=OWNER,
            )
            triggers = register_trigger_set(
                session,
                agent=agent,
                text=example_text("triggers.example.yaml"),
                source="deployments/triggers.example.yaml",
                actor=OWNER,
            )
            # Every conversation the demo imports is checked with the airline pack.
            register_check_set(
                session,
                agent=agent,
                text=example_text("checks.example.yaml"),
                source="deployments/checks.example.yaml",
                actor=OWNER,
            )
            session.commit()
            self.say(
                f"registered [bold]{DEMO_AGENT}[/]: owner {OWNER}, backup {BACKUP}; "
                f"rubric {rubric.name} v{rubric.version}; trigger set v{triggers.version}; "
                "v1 live"
            )
        self.services.set_live_version(DEMO_AGENT, "v1")
        self.say(f"fake platform and deployer listening on {self.services.url}")

    def run_until_rollback(self) -> None:
        """Serve traffic hour by hour; v2 goes live, then degrades until a trigger fires."""
        for _ in range(HOURS_ON_V1):
            self.serve_hour()
        self.release("v2")
        v2_live_at = self.clock
        for _ in range(MAX_HOURS_ON_V2):
            summary = self.serve_hour()
            self.result.v2_conversations_before_detection += CONVERSATIONS_PER_HOUR
            if summary["action_id"] is not None:
                self.result.detected = True
                self.result.simulated_time_to_detect = self.clock - v2_live_at
                self.result.breached_triggers = list(summary["breached"])
                self.result.reviews_to_detect = self.reviews_to_detect(summary)
                self.rollback_action_id = int(summary["action_id"])
                break
        if self.rollback_action_id is None:
            self.say("[red]no trigger fired: nothing to roll back[/]")
            return
        self.result.rollback = self.watch.run(
            "rollback (gate + execute)",
            lambda: self.gate(rollback_agent, self.rollback_action_id, approver=OWNER),
        )
        self.serve_hour()

    def release(self, version: str) -> None:
        """A routine release outside agentops: the new version simply goes live."""
        with Session(self.engine) as session:
            agent = agents.get_agent(session, name=DEMO_AGENT)
            created = agents.ensure_version(
                session, agent=agent, version=version, actor=RELEASE_MANAGER
            )
            agents.set_live(session, agent=agent, version=created, actor=RELEASE_MANAGER)
            session.commit()
        self.services.set_live_version(DEMO_AGENT, version)
        self.say(f"[bold yellow]{version} goes live[/] (routine release by {RELEASE_MANAGER})")

    def serve_hour(self, *, simulated_reviews: bool = True) -> dict[str, Any]:
        """One hour of traffic, then the scheduled sampling, reviews and evaluation."""
        version = self.services.live_version(DEMO_AGENT)
        records = generate_conversations(
            agent=DEMO_AGENT,
            version=version,  # type: ignore[arg-type]
            profile=DEMO_PROFILES[version],  # type: ignore[index]
            start=self.clock,
            count=CONVERSATIONS_PER_HOUR,
            spacing=timedelta(minutes=60 / CONVERSATIONS_PER_HOUR),
            seed=self.seed + self.hour,
        )
        self.services.add_conversations(DEMO_AGENT, records)
        window_end = self.clock + timedelta(hours=1)
        sampled = self.watch.run(
            "sample (pull + draw)",
            lambda: sample_conversations(
                agent_name=DEMO_AGENT,
                window_end=window_end,
                seed=self.seed,
                max_sample=SAMPLE_PER_WINDOW,
                platform_url=self.services.url,
            ),
        )
        reviewed, violations = (
            self.watch.run("review", self.work_queue) if simulated_reviews else (0, 0)
        )
        summary = self.watch.run(
            "evaluate triggers", lambda: evaluate_triggers(agent_name=DEMO_AGENT)
        )
        self.clock = window_end
        self.hour += 1
        pulled = (sampled.get("pulled") or {}).get("imported", 0)
        queued = sum(int(s["sampled"]) for s in sampled["samples"])
        outcomes = "  ".join(
            f"{name}: {_outcome_style(outcome)}" for name, outcome in summary["outcomes"].items()
        )
        self.say(
            f"{version}: {pulled} conversations pulled, {queued} sampled, "
            f"{reviewed} reviewed ({violations} violations) | {outcomes}"
        )
        if summary["marked_known_good"]:
            self.say(f"[green]{summary['version']} passed every trigger: now last known good[/]")
        if summary["action_id"] is not None:
            self.say(
                f"[bold red]breach[/] on {summary['version']}: rollback proposed "
                f"as action {summary['action_id']}"
            )
        elif summary["not_proposed_reason"]:
            self.say(f"[yellow]breach, no rollback proposed:[/] {summary['not_proposed_reason']}")
        return summary  # type: ignore[no-any-return]

    def work_queue(self) -> tuple[int, int]:
        """Simulated reviewers work the queue empty."""
        return work_review_queue(engine=self.engine, reviewers=self.reviewers)

    def reviews_to_detect(self, summary: dict[str, Any]) -> int | None:
        """How many of v2's reviews the charts needed, from the policy breach's evidence."""
        with Session(self.engine) as session:
            for evaluation_id in summary["evaluation_ids"]:
                evaluation = session.get(Evaluation, evaluation_id)
                if (
                    evaluation
                    and evaluation.outcome == Outcome.breach
                    and evaluation.evidence.get("unit") == "reviews"
                ):
                    return int(evaluation.evidence["alarm"]["position"])
        return None

    def gate(self, flow: Any, action_id: int | None, *, approver: str) -> dict[str, Any]:
        """Run an approval-gated flow and approve it as the owner would, from Slack or the CLI."""
        outcome: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: outcome.update(
                flow(action_id=action_id, deployer_url=self.services.url)
            ),
            daemon=True,
        )
        runner.start()
        flow_run_id = self.wait_for_approval_request(action_id)  # type: ignore[arg-type]
        self.say(f"approval requested from {approver} for action {action_id}")
        if self.slack is None:
            self._approve_from_cli(action_id, approver)  # type: ignore[arg-type]
        else:
            request = self.slack.request_for(action_id=action_id, email=approver)  # type: ignore[arg-type]
            self.slack.show(self.console, request, email=approver)
            time.sleep(1.0)  # the owner reads the evidence before deciding
            status = self.slack.approve(request, email=approver)
            self.say(f"{approver} pressed Approve in Slack (signed request, HTTP {status})")
        self._wait_for_decision(action_id)  # type: ignore[arg-type]
        # What the server's waker does against a Prefect API: wake the paused gate now.
        resume_waiting_run(flow_run_id=flow_run_id, action_id=action_id)  # type: ignore[arg-type]
        self.say(f"{approver} approved action {action_id}")
        runner.join(timeout=APPROVAL_WAIT_LIMIT_S)
        self.say(f"action {action_id}: [bold]{outcome.get('status', 'unfinished')}[/]")
        outcome["approval_channel"] = self._approval_channel(action_id)  # type: ignore[arg-type]
        if self.slack is not None:
            reply = self.slack.result_reply(request)
            if reply:
                self.say(f"Slack thread reply: {escape(reply)}")
        return outcome

    def _approve_from_cli(self, action_id: int, approver: str) -> None:
        time.sleep(1.0)  # the owner reads the evidence before deciding
        # The write lock up front: the waiting flow polls the same SQLite file meanwhile.
        with write_session(self.engine) as session:
            actions.decide(
                session,
                action_id=action_id,
                actor=person_actor(session, email=approver, channel=Channel.cli),
                decision=Decision.approve,
                reason="evidence reviewed",
            )
            session.commit()

    def _wait_for_decision(self, action_id: int) -> None:
        deadline = time.monotonic() + APPROVAL_WAIT_LIMIT_S
        while time.monotonic() < deadline:
            with Session(self.engine) as session:
                if actions.get_approval(session, action_id=action_id) is not None:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"action {action_id} was not decided")

    def _approval_channel(self, action_id: int) -> str | None:
        with Session(self.engine) as session:
            approval = actions.get_approval(session, action_id=action_id)
            return approval.channel if approval else None

    def wait_for_approval_request(self, action_id: int) -> str:
        """Block until the flow has paused and recorded its run id on the action."""
        deadline = time.monotonic() + APPROVAL_WAIT_LIMIT_S
        while time.monotonic() < deadline:
            with Session(self.engine) as session:
                action = session.get(Action, action_id)
                if (
                    action
                    and action.flow_run_id
                    and action.status
                    in {
                        ActionStatus.awaiting_approval,
                        ActionStatus.escalated,
                    }
                ):
                    return action.flow_run_id
            time.sleep(0.2)
        raise TimeoutError(f"action {action_id} never reached its approval gate")

    def redeploy_fixed_version(self) -> None:
        """A fixed v3 goes back live through its own approval gate, then serves traffic."""
        if self.rollback_action_id is None:
            return
        with Session(self.engine) as session:
            agent = agents.get_agent(session, name=DEMO_AGENT)
            v3 = agents.ensure_version(session, agent=agent, version="v3", actor=RELEASE_MANAGER)
            agents.ensure_person(session, email=RELEASE_MANAGER, role=Role.owner)
            action = actions.propose_redeploy(
                session,
                agent=agent,
                version=v3,
                actor=person_actor(session, email=RELEASE_MANAGER, channel=Channel.cli),
                reason="v3 fixes the confirmation step that v2 skipped",
            )
            session.commit()
            action_id = action.id
        self.say(f"{RELEASE_MANAGER} proposes redeploying fixed v3 as action {action_id}")
        self.result.redeploy = self.watch.run(
            "redeploy (gate + execute)",
            lambda: self.gate(redeploy_agent, action_id, approver=OWNER),
        )
        self.serve_hour()
        # One more hour whose sample nobody simulated reviews: left for people in the browser.
        self.serve_hour(simulated_reviews=False)
        self.say("v3's latest sample is left in the review queue for you (see the summary)")

    def finish(self) -> None:
        """Verify the trail and show the decisions it holds."""
        with Session(self.engine) as session:
            problems = verify_chain(session)
            events = list(iter_events(session))
            self.result.audit_events = len(events)
            self.result.audit_intact = not problems
            decisions = [
                event
                for event in events
                if event.kind.split(".")[0] in {"action", "approval", "version"}
                or (
                    event.kind == "evaluation.recorded" and event.payload.get("outcome") == "breach"
                )
            ]
            table_rows = [
                (
                    f"{event.occurred_at:%H:%M:%S}",
                    event.actor,
                    event.kind,
                    f"{event.entity_type}:{event.entity_id}",
                )
                for event in decisions
            ]
            open_actions = session.exec(
                select(Action).where(Action.status == ActionStatus.awaiting_approval)
            ).all()
            agent = agents.get_agent(session, name=DEMO_AGENT)
            report = run_report(
                session, agent=agent, versions=agents.list_versions(session, agent=agent)
            )
            self.result.check_flags = {c["name"]: c["flagged"] for c in report["checks"]}
            minimum = load_suite(require_check_set(session, agent=agent)).file.minimum
        # Planned with the demo's volumes and the check file's minimum TPR/TNR.
        plan = plan_detection(
            healthy=0.03,
            degraded=0.10,
            false_alarm_hours=1000.0,
            reviews_per_hour=SAMPLE_PER_WINDOW,
            conversations_per_hour=CONVERSATIONS_PER_HOUR,
            tpr=minimum.tpr,
            tnr=minimum.tnr,
            checks_only=False,
        )
        self.result.detect_hours = plan.to_json()
        from rich.table import Table

        table = Table("time (UTC)", "actor", "decision trail", "entity", title="decision trail")
        for row in table_rows:
            table.add_row(*row)
        self.console.print(table)
        if open_actions:
            self.say(f"[yellow]{len(open_actions)} action(s) still awaiting approval[/]")
        self.engine.dispose()


def simulated_start(now: datetime | None = None) -> datetime:
    """Simulated traffic starts on the hour, far enough back that every window is closed."""
    now = now or datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=24)


def work_review_queue(*, engine: Engine, reviewers: Sequence[SimulatedReviewer]) -> tuple[int, int]:
    """Reviewers take turns claiming and judging open items; returns (reviewed, violations)."""
    reviewed = violations = 0
    # Only registered reviewers may claim: the demo signs its reviewers up first.
    with Session(engine) as session:
        for simulated in reviewers:
            agents.ensure_person(session, email=simulated.email, role=Role.reviewer)
        session.commit()
    while True:
        reviewer = reviewers[reviewed % len(reviewers)]
        with Session(engine) as session:
            actor = person_actor(session, email=reviewer.email, channel=Channel.cli)
            item = review.claim_next(session, reviewer=actor)
            if item is None or item.id is None:
                session.commit()
                return reviewed, violations
            details = review.item_details(session, item_id=item.id)
            criteria = [(c.key, c.description) for c in details.criteria]
            findings = reviewer.review(details.conversation.transcript, criteria)
            # A failed criterion's note is the rule it broke, as a reviewer would write it.
            notes = {key: f"fails: {text}" for key, text in criteria if not findings[key]}
            submitted = review.submit_review(
                session,
                item_id=item.id,
                reviewer=actor,
                findings=findings,
                notes=notes,
            )
            violations += int(submitted.violation)
            session.commit()
        reviewed += 1


def _outcome_style(outcome: str) -> str:
    return {"breach": "[bold red]BREACH[/]", "ok": "[green]ok[/]"}.get(
        outcome, f"[dim]{outcome}[/]"
    )
