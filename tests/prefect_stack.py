"""The production path on loopback: a Prefect server on PostgreSQL, a work pool, workers.

Used by the integration test and by `benchmarks/production_latency.py`. Every process it
starts gets its own process group and is killed (group and all) on exit; the scratch
PostgreSQL databases it creates are dropped.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.agents import service as agents
from agentops.demo.reviewers import SimulatedReviewer
from agentops.demo.scenario import work_review_queue
from agentops.demo.traffic import DEMO_PROFILES, generate_conversations
from agentops.ingestion.service import import_conversations, records_from_platform
from agentops.packaged import example_text
from agentops.review.rubric import latest_rubric, register_rubric
from agentops.sampling.service import sample_agent_window
from agentops.triggers.service import register_trigger_set
from waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
PREFECT_FILE = ROOT / "deployments" / "prefect.yaml"
POSTGRES_ADMIN_URL = os.environ.get(
    "AGENTOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Child:
    """One started process (and its process group) with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def logs(self) -> str:
        """Everything the process wrote so far."""
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, not a shutdown) and reap it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.log_file.close()


@dataclass
class PrefectStack:
    """A Prefect server on a scratch PostgreSQL database, plus an agentops store beside it."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    api_url: str = ""
    store_url: str = ""

    def __enter__(self) -> "PrefectStack":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        prefect_db = self._scratch_database("prefect")
        self.store_url = self._scratch_database("agentops")
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AGENTOPS_"))}
        self.env = {
            **base,
            "PREFECT_HOME": str(self.workdir / "prefect-home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db.replace(
                "postgresql+psycopg://", "postgresql+asyncpg://"
            ),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "AGENTOPS_DATABASE_URL": self.store_url,
            "COLUMNS": "200",
        }
        started = time.monotonic()
        server = self.spawn(
            "server",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-ui",
                "--analytics-off",
            ],
        )
        self.wait_for(self._healthy, what="the Prefect server", timeout=90, watch=server)
        self.server_start_s = time.monotonic() - started

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _scratch_database(self, purpose: str) -> str:
        name = f"agentops_it_{purpose}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            self.databases.append(name)
            return admin.url.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.dispose()

    def spawn(self, name: str, args: list[str], **extra_env: str) -> Child:
        """Start a process in its own group, logging to workdir/<name>-N.log."""
        log_path = self.workdir / f"{name}-{len(self.children)}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            args,
            cwd=self.workdir,
            env={**self.env, **extra_env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(name=name, process=process, log_path=log_path, log_file=log_file)
        self.children.append(child)
        return child

    def run(self, args: list[str], *, timeout: float = 120, **extra_env: str) -> str:
        """Run a command to completion against the stack; its output, or an assertion."""
        completed = subprocess.run(
            args,
            cwd=self.workdir,
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, (
            f"{' '.join(args)} exited {completed.returncode}:\n{output}"
        )
        return output

    def deploy(self) -> str:
        """`agentops prefect setup`, then `prefect deploy --all` from deployments/prefect.yaml."""
        self.run([str(BIN / "agentops"), "prefect", "setup"])
        return self.run(
            [
                str(BIN / "prefect"),
                "--no-prompt",
                "deploy",
                "--all",
                "--prefect-file",
                str(PREFECT_FILE),
            ],
            timeout=180,
        )

    def start_worker(self, **extra_env: str) -> Child:
        """One process worker on the agentops pool."""
        return self.spawn(
            "worker",
            [str(BIN / "prefect"), "worker", "start", "--pool", "agentops", "--type", "process"],
            **extra_env,
        )

    def wait_for(
        self,
        condition: Callable[[], bool],
        *,
        what: str,
        timeout: float,
        watch: Child | None = None,
        every: float = 0.25,
    ) -> float:
        """Poll until the condition holds; seconds waited, or an assertion with every log."""
        started = time.monotonic()

        def logs() -> str:
            return "\n".join(f"--- {c.name}\n{c.logs()[-4000:]}" for c in self.children)

        wait_for(condition, what=what, timeout=timeout, every=every, watch=watch, details=logs)
        return time.monotonic() - started

    def close(self) -> None:
        """Kill every process started here and drop the scratch databases."""
        for child in reversed(self.children):
            with contextlib.suppress(Exception):  # keep cleaning up the rest
                child.kill()
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                for name in self.databases:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
        self.databases.clear()


def seed_degraded_agent(engine: Engine, *, agent: str, owner: str, backup: str) -> None:
    """v1 known good, v2 live with an hour of degraded traffic sampled and reviewed."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    with Session(engine) as session:
        registered = agents.register_agent(
            session, name=agent, owner_email=owner, backup_email=backup, actor=owner
        )
        v1 = agents.ensure_version(session, agent=registered, version="v1", actor=owner)
        agents.set_live(session, agent=registered, version=v1, actor=owner)
        agents.mark_known_good(session, agent=registered, version=v1, actor=owner)
        v2 = agents.ensure_version(session, agent=registered, version="v2", actor=owner)
        agents.set_live(session, agent=registered, version=v2, actor=owner)
        rubric = latest_rubric(session) or register_rubric(
            session, text=example_text("rubric.example.yaml"), source="rubric", actor=owner
        )
        register_trigger_set(
            session,
            agent=registered,
            # The example is written for airline-assistant; other agents get their own copy.
            text=example_text("triggers.example.yaml").replace(
                "agent: airline-assistant", f"agent: {agent}"
            ),
            source="triggers",
            actor=owner,
        )
        records = generate_conversations(
            agent=agent,
            version="v2",
            profile=DEMO_PROFILES["v2"],
            start=start,
            count=60,
            spacing=timedelta(minutes=1),
            seed=3,
        )
        import_conversations(
            session,
            agent=registered,
            version=None,
            records=records_from_platform(records),
            actor=owner,
        )
        sample_agent_window(
            session,
            agent=registered,
            rubric=rubric,
            window_start=start,
            window_end=start + timedelta(hours=1),
            seed=11,
            max_size=30,
            actor=owner,
        )
        session.commit()
    reviewers = [SimulatedReviewer(email=e) for e in ("r1@x.io", "r2@x.io")]
    reviewed, violations = work_review_queue(engine=engine, reviewers=reviewers)
    assert reviewed == 30 and violations > 0
