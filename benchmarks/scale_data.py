"""Generated fleet-scale data for benchmarks/scale.py, built from the shared tau-airline set.

Each generated record is one of the 100 real tau-airline conversations (OpenAI chat format
with tool calls) under a new id, start time, latency and agent version, in the generic
import shape `agentops import` reads. Sizes match the real transcripts (about 17 KB each).
"""

import json
import math
import multiprocessing
import os
import random
import resource
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty
from typing import Any

import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

TAU_AIRLINE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-airline"
# A day of traffic: a million conversations a day is the fleet the issue sizes for.
DEFAULT_SPAN = timedelta(hours=24)


def tau_conversations(folder: Path = TAU_AIRLINE) -> list[dict[str, Any]]:
    """The shared tau-airline conversations; a clear error when the folder is absent."""
    source = folder / "conversations.json"
    if not source.exists():
        raise SystemExit(f"the shared tau-airline data is missing: {source}")
    return json.loads(source.read_text(encoding="utf-8"))


def generated_records(
    count: int,
    *,
    end: datetime,
    span: timedelta = DEFAULT_SPAN,
    version: str = "v1",
    prefix: str = "gen",
    seed: int = 7,
) -> Iterator[dict[str, Any]]:
    """`count` records spread evenly over the `span` before `end`, oldest first."""
    base = tau_conversations()
    rng = random.Random(seed)
    step = span / max(count, 1)
    start = end - span
    for number in range(count):
        source = base[number % len(base)]
        yield {
            "id": f"{prefix}-{number}",
            "started_at": (start + step * number).isoformat(),
            "agent_version": version,
            "latency_ms": int(rng.lognormvariate(7.0, 0.5)),
            "task_success": float(source.get("reward", 0.0)),
            "messages": source["traj"],
        }


def write_jsonl(path: Path, count: int, *, end: datetime | None = None, **options: Any) -> Path:
    """Write `count` generated records to a JSON Lines file and return its path."""
    end = end or datetime.now(UTC) - timedelta(minutes=10)
    with path.open("wb") as handle:
        for record in generated_records(count, end=end, **options):
            handle.write(orjson.dumps(record))
            handle.write(b"\n")
    return path


# --- shared plumbing for the scale benchmark's parts ----------------------------------

POSTGRES_ADMIN_URL = os.environ.get(
    "AGENTOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class ScaleOptions:
    """What one run of benchmarks/scale.py measures; --quick shrinks every size."""

    databases: tuple[str, ...] = ("sqlite", "postgresql")
    ingest_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    review_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    stored_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    reviewers: tuple[int, ...] = (1, 10, 50)
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))


@contextmanager
def scratch_database(kind: str, *, workdir: Path | None = None) -> Iterator[str]:
    """A fresh, empty database URL of the kind ("sqlite" or "postgresql"), dropped after."""
    if kind == "postgresql":
        name = f"agentops_scale_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    folder = Path(tempfile.mkdtemp(prefix="agentops-scale-", dir=workdir))
    try:
        yield f"sqlite:///{folder / 'store.db'}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def migrated_engine(url: str) -> Engine:
    """An engine on the URL with agentops' real migrations applied."""
    from agentops.store.db import make_engine
    from agentops.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    return engine


def _measured(queue: Any, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result: Any = function(*args)
    except BaseException as exc:  # reported to the parent, which raises it there
        result = exc
    queue.put((result, _peak_rss_mb()))


def _peak_rss_mb() -> float:
    """This process image's peak RSS in MB.

    Linux carries ru_maxrss across exec: a spawned child reports at least the parent's
    peak. VmHWM belongs to the new address space alone, so it is read first.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(function: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Run function(*args) in a new process: (its result, that process's peak RSS in MB).

    A fresh process makes peak memory mean this one measurement, not whatever ran before.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measured, args=(queue, function, args))
    process.start()
    while True:
        try:
            result, peak_mb = queue.get(timeout=1)
            break
        except Empty:
            if not process.is_alive():
                raise RuntimeError(f"measured process died (exit {process.exitcode})") from None
    process.join()
    if isinstance(result, BaseException):
        raise result
    return result, peak_mb


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q <= 1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
