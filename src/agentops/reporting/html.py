"""Render the manager report as one self-contained HTML file: inline CSS and SVG, no network."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from html import escape

from agentops.reporting.metrics import (
    ActionStory,
    EvaluationRecord,
    Incident,
    Spread,
    format_duration,
    spread,
)
from agentops.reporting.queries import AgentSection, Report

CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2933;
margin:0;background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:21px;margin:36px 0 8px;border-bottom:2px solid
#d9e2ec;padding-bottom:4px}h3{font-size:16px;margin:22px 0 6px;color:#334e68}
.muted{color:#627d98}.badge{display:inline-block;padding:2px 10px;border-radius:12px;
font-weight:600;font-size:13px}.ok{background:#e3f9e5;color:#207227}
.bad{background:#ffe3e3;color:#a61b1b}.warn{background:#fff3c4;color:#8d6708}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:12px 14px}
.card b{display:block;font-size:22px}.card span{color:#627d98;font-size:13px}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 10px;font-size:14px}
th,td{border:1px solid #d9e2ec;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8;font-weight:600}td.n{text-align:right;white-space:nowrap}
svg{background:#fff;border:1px solid #d9e2ec;border-radius:6px}
.note{font-size:13px;color:#627d98;margin:4px 0 12px}
"""


def render_report(report: Report) -> str:
    """The whole report as one HTML document."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>agentops report {report.since:%Y-%m-%d} to {report.until:%Y-%m-%d}</title>",
        f"<style>{CSS}</style></head><body><main>",
        _header(report),
        _overview(report),
    ]
    for section in report.agents:
        parts.append(_agent(section, report))
    parts.append(_footnotes())
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _header(report: Report) -> str:
    if report.trail_events == 0 and not report.trail_problems:
        trail = "<span class='badge warn'>trail not verified</span>"
    elif report.trail_intact:
        trail = (
            f"<span class='badge ok'>decision trail intact</span> {report.trail_events} events, "
            f"hash chain and Merkle root <code>{report.merkle_root[:16]}…</code> verified"
        )
    else:
        problems = "; ".join(escape(p) for p in report.trail_problems)
        trail = f"<span class='badge bad'>decision trail TAMPERED</span> {problems}"
    return (
        "<h1>Agent health and rollback report</h1>"
        f"<p class='muted'>{_when(report.since)} to {_when(report.until)} (UTC) · generated "
        f"{_when(report.generated_at)} · {len(report.agents)} agent(s)</p><p>{trail}</p>"
    )


def _overview(report: Report) -> str:
    incidents, stories = report.incidents, report.stories
    detect = spread(i.detect_from_first_conversation for i in incidents)
    decide = spread(s.time_to_decide for s in stories)
    roll = spread(s.time_to_execute for s in stories if s.kind == "rollback")
    fixed = spread(i.back_to_fixed for i in incidents)
    rejected = sum(1 for s in stories if s.outcome == "rejected")
    expired = sum(1 for s in stories if s.expired_at)
    escalated = sum(1 for s in stories if s.escalated_at)
    cards = [
        (str(len(incidents)), "incidents (trigger breaches)"),
        (format_duration(detect.median), "median time to detect (traffic)"),
        (format_duration(decide.median), "median time to decide"),
        (format_duration(roll.median), "median time to roll back"),
        (format_duration(fixed.median), "median breach to fixed version"),
        (str(rejected), "rejected proposals (false alarms)"),
        (str(escalated), "approvals escalated to the backup"),
        (str(expired), "approvals expired undecided"),
    ]
    return "<div class='cards'>" + "".join(
        f"<div class='card'><b>{escape(value)}</b><span>{escape(label)}</span></div>"
        for value, label in cards
    ) + "</div>"


def _agent(section: AgentSection, report: Report) -> str:
    live = escape(section.live_version or "none")
    parts = [
        f"<h2>{escape(section.name)}</h2>",
        f"<p class='muted'>owner {escape(section.owner)} · backup {escape(section.backup)} · "
        f"live version <b>{live}</b></p>",
        _timings(section),
        _incidents(section.incidents),
        _charts(section.evaluations),
        _actions(section.stories),
        _rejections(section.stories),
        _waiting(section.stories),
        _reviews(section, report),
        _notice(section),
    ]
    return "\n".join(parts)


def _timings(section: AgentSection) -> str:
    rows = [
        (
            "Time to detect, from the version going live",
            [i.detect_from_live for i in section.incidents],
        ),
        (
            "Time to detect, from the first conversation of the degraded version",
            [i.detect_from_first_conversation for i in section.incidents],
        ),
        (
            "Time to decide (request to approval, rejection or expiry)",
            [s.time_to_decide for s in section.stories],
        ),
        (
            "Time to roll back (approval to a healthy earlier version)",
            [s.time_to_execute for s in section.stories if s.kind == "rollback"],
        ),
        (
            "Time back to a fixed version (breach to fix serving)",
            [i.back_to_fixed for i in section.incidents],
        ),
        (
            "Time to redeploy (approval to the fixed version healthy)",
            [s.time_to_execute for s in section.stories if s.kind == "redeploy"],
        ),
    ]
    body = "".join(_spread_row(label, spread(values)) for label, values in rows)
    return (
        "<h3>How fast</h3><table><tr><th>measure</th><th>count</th><th>median</th><th>p90</th>"
        f"<th>worst</th></tr>{body}</table>"
    )


def _spread_row(label: str, values: Spread) -> str:
    return (
        f"<tr><td>{escape(label)}</td><td class='n'>{values.count}</td>"
        f"<td class='n'>{format_duration(values.median)}</td>"
        f"<td class='n'>{format_duration(values.p90)}</td>"
        f"<td class='n'>{format_duration(values.worst)}</td></tr>"
    )


def _incidents(incidents: Sequence[Incident]) -> str:
    if not incidents:
        return "<h3>Incidents</h3><p>No trigger breached in this period.</p>"
    rows = "".join(
        f"<tr><td>{_when(i.breached_at)}</td><td>{escape(i.version)}</td>"
        f"<td>{escape(i.trigger)} <span class='muted'>({escape(i.kind)})</span></td>"
        f"<td>{escape(i.summary or '')}</td>"
        f"<td class='n'>{format_duration(i.detect_from_live)}</td>"
        f"<td class='n'>{format_duration(i.detect_from_first_conversation)}</td>"
        f"<td>{_story_cell(i.rollback)}</td><td>{_story_cell(i.fixed_by)}</td></tr>"
        for i in incidents
    )
    return (
        "<h3>Incidents</h3><table><tr><th>breached (UTC)</th><th>version</th><th>trigger</th>"
        "<th>evidence</th><th>detect from live</th><th>detect from first conversation</th>"
        f"<th>rollback</th><th>fixed by</th></tr>{rows}</table>"
    )


def _story_cell(story: ActionStory | None) -> str:
    if story is None:
        return "<span class='muted'>none</span>"
    versions = f"{story.from_version} → {story.to_version}"
    return f"action #{escape(story.action_id)} {escape(versions)}: {escape(story.outcome)}"


def _actions(stories: Sequence[ActionStory]) -> str:
    if not stories:
        return "<h3>Rollbacks and redeploys</h3><p>None in this period.</p>"
    rows = []
    for s in stories:
        decided = (
            f"{escape(s.decision or '')} by {escape(s.decided_by or '')} "
            f"({escape(s.decision_role or '')}, via {escape(s.decision_channel or '?')})"
            if s.decision
            else ""
        )
        rows.append(
            f"<tr><td>#{escape(s.action_id)}</td><td>{escape(s.kind or '')}</td>"
            f"<td>{escape(str(s.from_version))} → {escape(str(s.to_version))}</td>"
            f"<td>{_when(s.proposed_at)} by {escape(s.proposed_by or '')}<br>"
            f"<span class='muted'>{escape(s.reason or '')}</span></td>"
            f"<td>{decided}{' · escalated' if s.escalated_at else ''}"
            f"{f' · {s.refusals} refused attempt(s)' if s.refusals else ''}</td>"
            f"<td class='n'>{format_duration(s.time_to_decide)}</td>"
            f"<td class='n'>{format_duration(s.time_to_execute)}</td>"
            f"<td>{escape(s.outcome)}<br><span class='muted'>{escape(s.detail or '')}</span></td>"
            f"<td class='muted'>{escape(s.correlation_id)} · {len(s.events)} events</td></tr>"
        )
    return (
        "<h3>Rollbacks and redeploys</h3><table><tr><th>action</th><th>kind</th><th>versions</th>"
        "<th>proposed</th><th>decision</th><th>to decide</th><th>to execute</th><th>outcome</th>"
        f"<th>trail</th></tr>{''.join(rows)}</table>"
    )


def _rejections(stories: Sequence[ActionStory]) -> str:
    rejected = [s for s in stories if s.outcome == "rejected"]
    if not rejected:
        return "<h3>Rejected proposals (false alarms)</h3><p>None: every proposal was approved.</p>"
    rows = "".join(
        f"<tr><td>#{escape(s.action_id)}</td><td>{_when(s.decided_at)}</td>"
        f"<td>{escape(s.decided_by or '')}</td><td>{escape(s.decision_reason or '')}</td></tr>"
        for s in rejected
    )
    return (
        "<h3>Rejected proposals (false alarms)</h3><table><tr><th>action</th><th>when</th>"
        f"<th>by</th><th>reason</th></tr>{rows}</table>"
    )


def _waiting(stories: Sequence[ActionStory]) -> str:
    late = [s for s in stories if s.escalated_at or s.expired_at]
    if not late:
        return (
            "<h3>Escalated and expired approvals</h3>"
            "<p>None: every owner answered within their window.</p>"
        )
    rows = "".join(
        f"<tr><td>#{escape(s.action_id)}</td><td>{_when(s.requested_at)}</td>"
        f"<td>{_when(s.escalated_at)} {escape(s.escalated_to or '')}</td>"
        f"<td>{_when(s.expired_at)}</td><td>{escape(s.outcome)}</td></tr>"
        for s in late
    )
    return (
        "<h3>Escalated and expired approvals</h3><table><tr><th>action</th><th>requested</th>"
        f"<th>escalated</th><th>expired</th><th>outcome</th></tr>{rows}</table>"
    )


def _reviews(section: AgentSection, report: Report) -> str:
    stats = section.reviews
    if not stats.reviews:
        return "<h3>Reviews</h3><p>No reviews submitted in this period.</p>"
    within = f"{stats.within_sla:.0%}" if stats.within_sla is not None else "-"
    agreement = (
        f"{stats.agreement:.0%} over {stats.agreement_pairs} double-reviewed conversation(s)"
        if stats.agreement is not None
        else "not recorded (each conversation was reviewed once)"
    )
    return (
        "<h3>Reviews</h3><table><tr><th>reviews</th><th>queued to judged: median</th>"
        f"<th>p90</th><th>within the {format_duration(report.review_sla)} SLA</th>"
        f"<th>reviewer agreement</th></tr><tr><td class='n'>{stats.reviews}</td>"
        f"<td class='n'>{format_duration(stats.turnaround.median)}</td>"
        f"<td class='n'>{format_duration(stats.turnaround.p90)}</td><td class='n'>{within}</td>"
        f"<td>{escape(agreement)}</td></tr></table>"
    )


def _charts(evaluations: Sequence[EvaluationRecord]) -> str:
    by_trigger: dict[str, list[EvaluationRecord]] = defaultdict(list)
    for evaluation in evaluations:
        if evaluation.statistic is not None:
            by_trigger[evaluation.trigger].append(evaluation)
    if not by_trigger:
        return ""
    charts = "".join(
        f"<h3>{escape(name)}: statistic over time</h3>{trigger_chart(points)}"
        for name, points in by_trigger.items()
    )
    return charts + (
        "<p class='note'>Line: the trigger's statistic at each evaluation, one line per "
        "version. Dashed red: the threshold it must cross to breach. Red dots: breaches.</p>"
    )


def trigger_chart(
    points: Sequence[EvaluationRecord], *, width: int = 1100, height: int = 220
) -> str:
    """An inline SVG of a trigger's statistic over time, threshold dashed, breaches marked."""
    left, right, top, bottom = 56, 16, 14, 30
    values = [p.statistic for p in points if p.statistic is not None]
    values += [p.threshold for p in points if p.threshold is not None]
    low, high = min([*values, 0.0]), max(values)
    high = high if high > low else low + 1
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    start, end = points[0].evaluated_at, points[-1].evaluated_at
    span = (end - start).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        return left + (moment - start).total_seconds() / span * (width - left - right)

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (height - top - bottom)

    shapes = [
        f"<line x1='{left}' y1='{y(0):.1f}' x2='{width - right}' y2='{y(0):.1f}' "
        "stroke='#bcccdc'/>",
    ]
    for tick in _ticks(low, high):
        shapes.append(
            f"<text x='{left - 6}' y='{y(tick) + 4:.1f}' text-anchor='end' font-size='11' "
            f"fill='#627d98'>{tick:g}</text>"
        )
    threshold = [(x(p.evaluated_at), y(p.threshold)) for p in points if p.threshold is not None]
    if threshold:
        shapes.append(_polyline(threshold, "#d64545", dashed=True))
    palette = ("#2f80ed", "#9b51e0", "#27ae60", "#f2994a", "#56ccf2")
    colours: dict[str, str] = {}
    for run in _runs(points):
        version = run[0].version
        colour = colours.setdefault(version, palette[len(colours) % len(palette)])
        coords = [(x(p.evaluated_at), y(p.statistic or 0.0)) for p in run]
        if len(coords) > 1:
            shapes.append(_polyline(coords, colour))
        first_x, first_y = coords[0]
        shapes.append(
            f"<text x='{first_x + 4:.1f}' y='{first_y + 16:.1f}' font-size='11' "
            f"fill='{colour}'>{escape(version)}</text>"
        )
        for point, (px, py) in zip(run, coords, strict=True):
            breach = point.outcome == "breach"
            shapes.append(
                f"<circle cx='{px:.1f}' cy='{py:.1f}' r='{5 if breach else 3}' "
                f"fill='{'#d64545' if breach else colour}'><title>{escape(point.version)} "
                f"{_when(point.evaluated_at)}: {point.statistic:.3g} ({escape(point.outcome)})"
                "</title></circle>"
            )
            if breach:
                shapes.append(
                    f"<text x='{px:.1f}' y='{py - 9:.1f}' text-anchor='middle' font-size='11' "
                    "font-weight='600' fill='#d64545'>breach</text>"
                )
    shapes.append(
        f"<text x='{left}' y='{height - 8}' font-size='11' fill='#627d98'>{_when(start)}</text>"
        f"<text x='{width - right}' y='{height - 8}' text-anchor='end' font-size='11' "
        f"fill='#627d98'>{_when(end)} UTC</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img'>{''.join(shapes)}</svg>"
    )


def _runs(points: Sequence[EvaluationRecord]) -> list[list[EvaluationRecord]]:
    """Consecutive evaluations of one version: a line never bridges another version's time."""
    runs: list[list[EvaluationRecord]] = []
    for point in points:
        if runs and runs[-1][-1].version == point.version:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _polyline(coords: Iterable[tuple[float, float]], colour: str, *, dashed: bool = False) -> str:
    points = " ".join(f"{px:.1f},{py:.1f}" for px, py in coords)
    dash = " stroke-dasharray='6 4'" if dashed else ""
    return f"<polyline points='{points}' fill='none' stroke='{colour}' stroke-width='2'{dash}/>"


def _ticks(low: float, high: float) -> list[float]:
    step = (high - low) / 4
    return [round(low + step * i, 3) for i in range(5)]


def _notice(section: AgentSection) -> str:
    if not section.notice:
        return ""
    rows = []
    for estimate in section.notice:
        rate = (
            f"{estimate.reviews_per_hour:.1f} reviews per hour of traffic"
            if estimate.reviews_per_hour
            else "no samples drawn in this period"
        )
        hours = (
            format_duration(timedelta(hours=estimate.hours_at_p1))
            if estimate.hours_at_p1 is not None
            else "-"
        )
        rows.append(
            f"<tr><td>{escape(estimate.trigger)}</td><td class='n'>{estimate.p0:.0%} / "
            f"{estimate.p1:.0%}</td><td class='n'>{estimate.reviews_at_p1:.0f}</td>"
            f"<td class='n'>{estimate.reviews_at_p0:.0f}</td><td>{rate}</td>"
            f"<td class='n'><b>{hours}</b></td></tr>"
        )
    return (
        "<h3>How long would it take to notice?</h3><table><tr><th>trigger</th>"
        "<th>acceptable / degraded violation rate</th><th>avg reviews to flag at degraded</th>"
        "<th>avg reviews to clear at acceptable</th><th>review volume</th>"
        f"<th>time to notice at degraded</th></tr>{''.join(rows)}</table>"
        "<p class='note'>Wald's average sample number for the sequential test, at the review "
        "volume sampled in this period (see `make bench` for the Monte-Carlo spread).</p>"
    )


def _footnotes() -> str:
    return (
        "<p class='note'>Durations come from the sealed audit trail (UTC). Time to detect from "
        "the first conversation uses the traffic clock: the newest conversation the trigger had "
        "seen when it breached. Each action's events share a correlation id "
        "(<code>action:ID</code>); `agentops audit log --entity action:ID` shows the full story."
        "</p>"
    )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"
