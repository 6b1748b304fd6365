"""Files and processes the CLI must not be tricked by: output paths, non-stores, orphans."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.settings import get_settings


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_report_refuses_a_symlink_and_a_device(engine: Engine, tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    code, out = run("report", "-o", str(link))
    assert code == 2 and "symbolic link" in out
    assert link.is_symlink() and target.read_text() == "keep me"
    code, out = run("report", "-o", "/dev/null")
    assert code == 2 and "device or pipe" in out
    assert Path("/dev/null").is_char_device()
    fifo = tmp_path / "fifo.html"
    os.mkfifo(fifo)
    code, out = run("report", "-o", str(fifo))
    assert code == 2 and "device or pipe" in out
    code, out = run("report", "-o", str(tmp_path / "fine.html"))
    assert code == 0 and (tmp_path / "fine.html").read_text().startswith("<!doctype html")


def test_a_read_only_command_leaves_a_file_that_is_no_database_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"x")
    monkeypatch.setenv("AGENTOPS_DATABASE_URL", f"sqlite:///{notes}")
    get_settings.cache_clear()
    try:
        code, out = run("agents", "list")
    finally:
        get_settings.cache_clear()
    assert code == 2 and "is not a SQLite database" in out
    assert notes.read_bytes() == b"x"
    assert not (tmp_path / "notes.txt-wal").exists()


PARENT = """
import multiprocessing, sys, time
from agentops.ingestion.parallel import die_with_parent

def _nap():
    time.sleep(60)

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_nap)
    child.start()
    print(child.pid, flush=True)
    time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_import_workers_die_with_a_killed_importer(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    # The pool's initializer calls die_with_parent; the child here calls it the same way.
    script.write_text(PARENT.replace("def _nap():\n", "def _nap():\n    die_with_parent()\n"))
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, env={**os.environ}
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # the child has started and asked to die with its parent
    os.kill(child, 0)  # alive
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the worker outlived its importer")
