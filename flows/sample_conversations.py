"""Scheduled flow: pull an agent's conversations, record signals, draw review samples.

Each run pulls from where the agent's last scheduled pull ended (its watermark) up to the
run's scheduled time less the publication delay, so start jitter, late-published
conversations and outages leave no minute unpulled and none pulled twice.
"""

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger, task
from prefect.runtime import deployment, flow_run
from sqlmodel import Session

from agentops.agents import service as agents
from agentops.bootstrap import make_platform_client
from agentops.http_client import display_url
from agentops.review.rubric import rubric_for_agent
from agentops.sampling import coverage
from agentops.sampling.service import sample_agent_window
from agentops.sampling.windows import Span, windows_to_pull
from agentops.settings import get_settings
from agentops.store.db import engine_scope
from agentops.worker_paths import require_absolute_paths

ACTOR = "flow:sample-conversations"


@task(name="pull-conversations", retries=2, retry_delay_seconds=5)
def pull_conversations(
    *, agent_name: str, platform_url: str | None, since: datetime, until: datetime, source: str
) -> dict[str, int]:
    """Fetch the window's conversations from the platform API into the store; record it."""
    settings = get_settings()
    with engine_scope() as engine, Session(engine) as session:
        agent = agents.get_agent(session, name=agent_name)
        span = Span(since, until)
        if platform_url is None:
            # Nothing to pull: the window is sampled from conversations already imported.
            coverage.record_window(session, agent=agent, span=span, source=source)
            session.commit()
            return {"imported": 0, "duplicates": 0, "rejected": 0}
        with make_platform_client(settings, url=platform_url) as client:
            report = coverage.pull_window(
                session,
                agent=agent,
                span=span,
                fetch=lambda start, end: client.iter_conversations(
                    agent=agent_name, since=start, until=end
                ),
                source=source,
                actor=ACTOR,
                # display_url drops any user:password@ so no credential enters the audit trail.
                origin=display_url(platform_url),
                max_future_skew=timedelta(seconds=settings.max_future_skew_s),
            )
    return {
        "imported": report.imported,
        "duplicates": report.duplicates,
        "rejected": report.rejected_count,
    }


@task(name="draw-samples", retries=2, retry_delay_seconds=5)
def draw_samples(
    *,
    agent_name: str,
    window_start: datetime,
    window_end: datetime,
    seed: int,
    margin: float,
    max_size: int | None,
) -> list[dict[str, int | str]]:
    """Sample each version that served traffic in the window into the review queue."""
    with engine_scope() as engine, Session(engine) as session:
        agent = agents.get_agent(session, name=agent_name)
        rubric = rubric_for_agent(session, agent=agent)
        results = sample_agent_window(
            session,
            agent=agent,
            rubric=rubric,
            window_start=window_start,
            window_end=window_end,
            seed=seed,
            margin=margin,
            max_size=max_size,
            actor=ACTOR,
        )
        drawn = [result.summary() for result in results]
        session.commit()
    return drawn


def scheduled_time() -> datetime:
    """The run's scheduled start (not its jittered actual start); now outside a run."""
    scheduled = flow_run.scheduled_start_time
    if scheduled is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(scheduled.timestamp(), tz=UTC)


def _windows(agent_name: str, *, window_minutes: int) -> list[Span]:
    settings = get_settings()
    with engine_scope() as engine, Session(engine) as session:
        agent = agents.get_agent(session, name=agent_name)
        mark = coverage.watermark(session, agent=agent)
    return windows_to_pull(
        watermark=mark,
        scheduled=scheduled_time(),
        publication_delay=timedelta(seconds=settings.pull_publication_delay_s),
        chunk=timedelta(minutes=window_minutes),
        max_chunks=settings.pull_max_chunks,
    )


@flow(name="sample-conversations")
def sample_conversations(
    agent_name: str,
    window_minutes: int = 60,
    window_end: datetime | None = None,
    seed: int = 0,
    margin: float = 0.1,
    max_sample: int | None = 50,
    platform_url: str | None = None,
) -> dict[str, object]:
    """Pull the windows not yet pulled and queue a reproducible sample of each for review.

    With `window_end` it pulls that one window of `window_minutes` instead, and the
    watermark stays where it is.
    """
    logger = get_run_logger()
    require_absolute_paths(in_deployment=deployment.id is not None)
    if window_minutes <= 0:
        raise ValueError("window_minutes must be positive")
    if window_end is not None:
        spans = [Span(window_end - timedelta(minutes=window_minutes), window_end)]
        source = coverage.WINDOW
    else:
        spans = _windows(agent_name, window_minutes=window_minutes)
        source = coverage.SCHEDULE
    url = platform_url or get_settings().platform_url
    if not url:
        logger.info("no platform_url configured: sampling conversations already imported")
    pulled = {"imported": 0, "duplicates": 0, "rejected": 0}
    samples: list[dict[str, int | str]] = []
    for span in spans:
        counts = pull_conversations(
            agent_name=agent_name, platform_url=url, since=span.start, until=span.end, source=source
        )
        pulled = {key: pulled[key] + counts[key] for key in pulled}
        samples += draw_samples(
            agent_name=agent_name,
            window_start=span.start,
            window_end=span.end,
            seed=seed,
            margin=margin,
            max_size=max_sample,
        )
    logger.info("pulled %s windows: %s; sampled %s", len(spans), pulled, samples)
    return {
        "window_start": spans[0].start.isoformat() if spans else None,
        "window_end": spans[-1].end.isoformat() if spans else None,
        "windows": len(spans),
        "pulled": pulled if url else None,
        "samples": samples,
    }
