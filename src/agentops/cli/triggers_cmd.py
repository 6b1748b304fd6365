"""`agentops triggers …`: check, register and backtest the written rollback triggers."""

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from agentops.agents import service as agents
from agentops.cli.common import console, fail, store_session, user_errors
from agentops.cli.safe_text import styled
from agentops.textfiles import read_text_file
from agentops.triggers.backtest import backtest
from agentops.triggers.config import load_trigger_file, parse_trigger_text
from agentops.triggers.plan import TriggerPlan, plan_trigger
from agentops.triggers.service import register_trigger_set

app = typer.Typer(help="Rollback triggers, written down before launch.")


def parse_rates(text: str | None) -> list[float] | None:
    """`--rates 0.08,0.22`: degraded rates strictly between 0 and 1."""
    if text is None:
        return None
    rates = []
    for part in text.split(","):
        try:
            rate = float(part.strip())
        except ValueError:
            raise fail(f"--rates: {part.strip()!r} is not a number (use e.g. 0.08,0.22)") from None
        if not math.isfinite(rate) or not 0.0 < rate < 1.0:
            raise fail(f"--rates: {part.strip()} is not a rate strictly between 0 and 1")
        rates.append(rate)
    return rates


@app.command("check")
@user_errors
def check(
    file: Path = typer.Argument(..., help="Trigger YAML file."),
    rates: str | None = typer.Option(
        None, help="Degraded rates to report delays at, comma-separated (e.g. 0.08,0.22)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    checks: Path | None = typer.Option(
        None, help="A check file: also show time to detect with its checks (policy triggers)."
    ),
) -> None:
    """Validate a trigger file and show its thresholds, false-alarm interval and delays."""
    chosen = parse_rates(rates)
    parsed = load_trigger_file(file)
    plans = [plan_trigger(parsed, trigger, rates=chosen) for trigger in parsed.triggers]
    detection = _detection(parsed, plans, checks) if checks is not None else {}
    if as_json:
        payload = {
            "file": str(file),
            "version": parsed.version,
            "agent": parsed.agent,
            "triggers": [
                {**plan.to_json(), **detection.get(plan.trigger.name, {})} for plan in plans
            ],
        }
        typer.echo(json.dumps(payload, indent=2, default=_finite))
        return
    console.print(f"{file}: valid, version {parsed.version}, agent {parsed.agent}")
    for plan in plans:
        _print_plan(plan)
        if plan.trigger.name in detection:
            _print_detection(detection[plan.trigger.name]["time_to_detect_hours"])


def _detection(parsed: Any, plans: list[TriggerPlan], checks: Path) -> dict[str, Any]:
    """Per policy trigger: hours to detect its low degraded rate, reviews/checks/both."""
    from agentops.checks.config import load_check_file
    from agentops.checks.detection import plan_detection

    suite, _ = load_check_file(checks)
    minimum = suite.file.minimum
    found: dict[str, Any] = {}
    for plan in plans:
        trigger = plan.trigger
        healthy = trigger.healthy_rate or trigger.expected_healthy_rate
        promised_days = plan.days(plan.promised)
        if trigger.kind != "policy_adherence" or healthy is None or promised_days is None:
            continue
        volume = parsed.expected_volume
        result = plan_detection(
            healthy=healthy,
            degraded=trigger.degraded_low,
            false_alarm_hours=promised_days * 24,
            reviews_per_hour=(volume.reviews_per_day or 0) / 24,
            conversations_per_hour=(volume.conversations_per_day or 0) / 24,
            tpr=minimum.tpr,
            tnr=minimum.tnr,
        )
        found[trigger.name] = {"time_to_detect_hours": result.to_json()}
    return found


def _print_detection(hours: dict[str, float | None]) -> None:
    def shown(value: float | None) -> str:
        return f"{value:.1f} h" if value is not None else "-"

    console.print(
        f"  time to detect (checks at the file's minimum TPR/TNR): reviews only "
        f"{shown(hours['reviews_only'])}, checks only {shown(hours['checks_only'])}, "
        f"both {shown(hours['both'])}",
        highlight=False,
    )


def _finite(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


def _days(plan: TriggerPlan, observations: float) -> str:
    days = plan.days(observations)
    if days is None:
        return ""
    if days >= 365.25:
        return f" ({days / 365.25:.1f} years)"
    return f" ({days:.1f} days)" if days >= 1 else f" ({days * 24:.1f} hours)"


def _delay_cell(delay: float, error: float) -> str:
    if math.isnan(error):
        return f"at most {delay:,.0f}"
    return f"{delay:,.0f} ± {error:,.0f}" if error else f"{delay:,.0f} (exact)"


def _print_plan(plan: TriggerPlan) -> None:
    trigger, bank, unit = plan.trigger, plan.bank, plan.trigger.unit
    console.print()
    console.print(
        styled(
            (trigger.name, "bold"),
            f" ({trigger.kind}): one draw per {unit[:-1]}; "
            f"promised: at most one false alarm every {plan.promised:,.0f} {unit}"
            f"{_days(plan, plan.promised)}",
        )
    )
    if plan.note:
        console.print(f"  {plan.note}", highlight=False)
    if bank is None:
        return
    console.print(
        f"  healthy rate {bank.healthy_rate:.2%}, calibrated at {bank.calibrated_rate:.2%}; "
        f"real false-alarm interval {bank.false_alarm_every:,.0f} "
        f"± {bank.interval_error:,.0f} {unit}{_days(plan, bank.false_alarm_every)} "
        f"(the bank of {len(bank.charts)} calibrated as a whole; each chart alone "
        f"{bank.factor:.2f}x)",
        highlight=False,
    )
    charts = Table("chart tuned to", "threshold (nats)", f"chart's own interval ({unit})")
    for chart in bank.charts:
        charts.add_row(
            f"{chart.degraded_rate:.1%}",
            f"{chart.threshold_nats:.3f}",
            f"{chart.false_alarm_every:,.0f}",
        )
    console.print(charts)
    delays = Table(
        "true rate", f"bank's expected delay ({unit})", "bound (best chart alone)", "in time"
    )
    for rate, delay, error, bound in plan.delays:
        delays.add_row(
            f"{rate:.1%}",
            _delay_cell(delay, error),
            f"{bound:,.0f}",
            _days(plan, delay).strip(" ()"),
        )
    console.print(delays)
    if plan.data_needed:
        needed = Table(
            "healthy rate measured on", "calibrated at", "delay at low end", "at high end"
        )
        for row in plan.data_needed:
            needed.add_row(
                f"{row['samples']:,.0f} {unit}",
                f"{row['calibrated_rate']:.2%}",
                f"{row['delay_low']:,.0f}" if math.isfinite(row["delay_low"]) else "cannot",
                f"{row.get('delay_high', math.inf):,.0f}" if "delay_high" in row else "-",
            )
        console.print(needed)


@app.command("register")
@user_errors
def register(file: Path = typer.Argument(..., help="Trigger YAML file.")) -> None:
    """Store a trigger file as the agent's current, versioned trigger set."""
    text = read_text_file(file, what="trigger file")
    parsed = parse_trigger_text(text, source=str(file))
    with store_session() as session:
        agent = agents.get_agent(session, name=parsed.agent)
        trigger_set = register_trigger_set(
            session,
            agent=agent,
            text=text,
            source=str(file),
            actor="cli",
        )
        version, sha = trigger_set.version, trigger_set.content_sha256
    console.print(f"Trigger set v{version} for {parsed.agent} stored (sha256 {sha[:12]}).")


@app.command("backtest")
@user_errors
def backtest_command(
    file: Path = typer.Argument(..., help="Trigger YAML file to replay."),
    agent: str = typer.Option(..., help="Agent whose stored history to replay."),
    since: datetime | None = typer.Option(None, help="Only data from this time (UTC) on."),
) -> None:
    """Replay stored reviews and conversations: when would each trigger have fired?"""
    parsed = load_trigger_file(file)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a bare timestamp means UTC here
    with store_session() as session:
        target = agents.get_agent(session, name=agent)
        replays = backtest(session, agent=target, triggers=parsed, since=since)
        session.rollback()  # a backtest writes nothing, whatever it touched
    table = Table(
        "version", "status", "trigger", "would fire", "real rollback", "vs the real alarm"
    )
    for replay in replays:
        real = "-"
        if replay.real:
            real = f"#{replay.real.action_id} proposed {replay.real.proposed_at:%Y-%m-%d %H:%M:%S}"
            if replay.real.alarm_at is not None:
                # The data's own time of the crossing: what a replayed alarm compares with.
                real += (
                    f" on {replay.real.alarm_trigger}'s alarm at "
                    f"{replay.real.alarm_at:%Y-%m-%d %H:%M:%S} (data time)"
                )
        if not replay.alarms:
            seen = ", ".join(f"{name}: {count}" for name, count in replay.observations.items())
            table.add_row(replay.version, replay.status, "-", f"never ({seen})", real, "")
        for alarm in sorted(replay.alarms, key=lambda a: a.at):
            table.add_row(
                replay.version,
                replay.status,
                alarm.trigger,
                f"{alarm.at:%Y-%m-%d %H:%M:%S} after {alarm.position} {alarm.unit} "
                f"(id {alarm.observation_id})",
                real,
                _difference(replay.difference(alarm)),
            )
        for name, reason in replay.skipped.items():
            table.add_row(replay.version, replay.status, name, f"skipped: {reason}", real, "")
    console.print(table)


def _difference(delta: object) -> str:
    if delta is None:
        return ""
    seconds = delta.total_seconds()  # type: ignore[attr-defined]
    word = "earlier" if seconds < 0 else "later"
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s {word}"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min {word}"
    return f"{seconds / 3600:.1f} h {word}"
