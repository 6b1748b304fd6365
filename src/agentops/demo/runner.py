"""`agentops demo`: the whole runbook on loopback services and a local SQLite store."""

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEMO_DIR = Path(".agentops")


@dataclass
class DemoResult:
    """What the demo measured, for the summary table and the benchmark."""

    detected: bool = False
    reviews_to_detect: int | None = None
    v2_conversations_before_detection: int = 0
    simulated_time_to_detect: timedelta | None = None
    breached_triggers: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    rollback: dict[str, Any] = field(default_factory=dict)
    redeploy: dict[str, Any] = field(default_factory=dict)
    audit_events: int = 0
    audit_intact: bool = False
    database_url: str = ""
    # The airline checks on all of the demo's traffic: flags per check, and the planned
    # hours to detect 3% -> 10% with reviews only and with reviews plus checks.
    check_flags: dict[str, int] = field(default_factory=dict)
    detect_hours: dict[str, float | None] = field(default_factory=dict)


def prepare_environment(*, workdir: Path, fresh: bool) -> str:
    """Point the store and Prefect at throwaway local state, before Prefect is imported."""
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "demo.db"
    prefect_home = workdir / "demo-prefect"
    if fresh:
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            path.unlink(missing_ok=True)
        shutil.rmtree(prefect_home, ignore_errors=True)
    url = f"sqlite:///{database.resolve()}"
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.update(
        {
            "AGENTOPS_DATABASE_URL": url,
            "AGENTOPS_OWNER_APPROVAL_TIMEOUT_S": "120",
            "AGENTOPS_BACKUP_APPROVAL_TIMEOUT_S": "120",
            "AGENTOPS_APPROVAL_POLL_INTERVAL_S": "1",
            "PREFECT_HOME": str(prefect_home.resolve()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "CRITICAL",
            "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
        }
    )
    # The temporary server's first start builds its database: on a busy machine that takes
    # longer than Prefect's 20 s default.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from agentops.settings import get_settings

    get_settings.cache_clear()
    return url


class Stopwatch:
    """Accumulates wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, stage: str, work: Callable[[], Any]) -> Any:
        """Run work and add its duration to the stage."""
        started = time.perf_counter()
        try:
            return work()
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started


def execute_demo(*, seed: int, workdir: Path, fresh: bool, console: Console) -> DemoResult:
    """Run every stage of the runbook and return what was measured."""
    result = DemoResult(database_url=prepare_environment(workdir=workdir, fresh=fresh))
    # Imported only now: Prefect reads its settings at import time.
    from agentops.demo.fake_services import FakeServices
    from agentops.demo.scenario import Scenario

    watch = Stopwatch()
    with FakeServices() as services:
        scenario = Scenario(
            services=services, seed=seed, console=console, watch=watch, result=result
        )
        with console.status("starting Prefect's temporary local server…"):
            watch.run("start Prefect (temporary local server)", start_prefect)
        watch.run("set-up", scenario.set_up)
        with scenario.in_slack():  # approvals go through agentops serve and a fake Slack
            scenario.run_until_rollback()
            scenario.redeploy_fixed_version()
        scenario.finish()
    result.stage_seconds = watch.seconds
    return result


def start_prefect() -> None:
    """Start Prefect's temporary local server now, so its start-up is timed on its own."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.api_healthcheck()


def run_demo(*, seed: int, fresh: bool = True, workdir: Path = DEMO_DIR) -> int:
    """Run the demo with progress on the console; return the process exit code."""
    console = Console()
    started = time.perf_counter()
    console.rule("[bold]agentops demo[/]: a degraded agent, detected, rolled back, fixed")
    try:
        result = execute_demo(seed=seed, workdir=workdir, fresh=fresh, console=console)
    except KeyboardInterrupt:
        console.print("[yellow]demo interrupted[/]")
        return 130
    print_summary(console, result, total_seconds=time.perf_counter() - started)
    return 0 if result.detected and result.audit_intact else 1


def print_summary(console: Console, result: DemoResult, *, total_seconds: float) -> None:
    """The closing summary: detection, approvals, timings and where the trail lives."""
    console.rule("[bold]summary[/]")
    table = Table("measure", "value")
    table.add_row("trigger(s) that fired", ", ".join(result.breached_triggers) or "none")
    table.add_row("reviews needed to detect", _fmt(result.reviews_to_detect))
    table.add_row(
        "v2 conversations before detection", str(result.v2_conversations_before_detection)
    )
    table.add_row("time to detect (simulated traffic)", _fmt_delta(result.simulated_time_to_detect))
    for label, stats in (("rollback", result.rollback), ("redeploy", result.redeploy)):
        timings = stats.get("timings", {})
        table.add_row(
            f"{label}: waiting for approval", _fmt_seconds(timings.get("approval_wait_s"))
        )
        table.add_row(f"{label}: deploy + health check", _fmt_seconds(timings.get("executing_s")))
        table.add_row(f"{label}: approved via", str(stats.get("approval_channel") or "-"))
        table.add_row(f"{label}: outcome", str(stats.get("status", "-")))
    if result.check_flags:
        flagged = ", ".join(f"{name} {count}" for name, count in result.check_flags.items())
        table.add_row("policy checks: flags on all traffic", flagged)
    for label, key in (("reviews only", "reviews_only"), ("reviews plus checks", "both")):
        if result.detect_hours.get(key) is not None:
            table.add_row(
                f"time to detect 3% -> 10%, {label} (planned)",
                f"{result.detect_hours[key]:.1f} h",
            )
    for stage, seconds in result.stage_seconds.items():
        table.add_row(f"stage {stage} (wall clock)", _fmt_seconds(seconds))
    table.add_row(
        "audit events / chain",
        f"{result.audit_events} / {'intact' if result.audit_intact else 'BROKEN'}",
    )
    table.add_row("demo total (wall clock)", _fmt_seconds(total_seconds))
    console.print(table)
    console.print(
        f"Explore the trail: AGENTOPS_DATABASE_URL={result.database_url} "
        f"{_agentops_command()} audit log"
    )
    from agentops.demo.scenario import REVIEWERS

    console.print(
        f"Review its queue in the browser: AGENTOPS_DATABASE_URL={result.database_url} "
        f"{_agentops_command()} serve --sign-in {REVIEWERS[0]}",
        soft_wrap=True,
    )


def _agentops_command() -> str:
    # The console script sits beside the interpreter, e.g. .venv/bin/agentops after make.
    script = Path(sys.executable).parent / "agentops"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _fmt(value: object) -> str:
    return "-" if value is None else str(value)


def _fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _fmt_delta(value: timedelta | None) -> str:
    if value is None:
        return "-"
    minutes = int(value.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"
