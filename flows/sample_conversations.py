"""Scheduled flow: pull an agent's conversations, record signals, draw review samples."""

from datetime import datetime, timedelta

from prefect import flow, get_run_logger, task
from sqlmodel import Session

from agentops.agents import service as agents
from agentops.bootstrap import make_platform_client
from agentops.http_client import display_url
from agentops.ingestion.service import import_conversations, records_from_platform
from agentops.review.rubric import rubric_for_agent
from agentops.sampling.service import sample_agent_window
from agentops.settings import get_settings
from agentops.store.db import engine_scope
from agentops.store.models import utcnow


@task(name="pull-conversations", retries=2, retry_delay_seconds=5)
def pull_conversations(
    *, agent_name: str, platform_url: str, since: datetime, until: datetime
) -> dict[str, int]:
    """Fetch the window's conversations from the platform API into the store."""
    client = make_platform_client(url=platform_url)
    with client, engine_scope() as engine, Session(engine) as session:
        agent = agents.get_agent(session, name=agent_name)
        items = client.iter_conversations(agent=agent_name, since=since, until=until)
        report = import_conversations(
            session,
            agent=agent,
            version=None,
            records=records_from_platform(items),
            actor="flow:sample-conversations",
            # display_url drops any user:password@ so no credential enters the audit trail.
            source=f"{display_url(platform_url)} {since.isoformat()}..{until.isoformat()}",
            max_future_skew=timedelta(seconds=get_settings().max_future_skew_s),
        )
        session.commit()
    return {
        "imported": report.imported,
        "duplicates": report.duplicates,
        "rejected": report.rejected_count,
    }


@task(name="draw-samples")
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
            actor="flow:sample-conversations",
        )
        drawn = [result.summary() for result in results]
        session.commit()
    return drawn


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
    """Pull the last window of conversations and queue a reproducible sample for review."""
    logger = get_run_logger()
    end = window_end or utcnow()
    start = end - timedelta(minutes=window_minutes)
    url = platform_url or get_settings().platform_url
    pulled = None
    if url:
        pulled = pull_conversations(agent_name=agent_name, platform_url=url, since=start, until=end)
        logger.info("pulled %s", pulled)
    else:
        logger.info("no platform_url configured: sampling conversations already imported")
    drawn = draw_samples(
        agent_name=agent_name,
        window_start=start,
        window_end=end,
        seed=seed,
        margin=margin,
        max_size=max_sample,
    )
    logger.info("sampled %s", drawn)
    return {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "pulled": pulled,
        "samples": drawn,
    }
