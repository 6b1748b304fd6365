"""The getting-started walkthrough block, run literally in bash, does what each step promises."""

import contextlib
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import TEST_DATABASE

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "getting-started.md"
MARKER = "<!-- walkthrough -->"
# What each step must print, in order: the ids the next step relies on included.
EXPECTED = [
    "Registered airline-assistant",
    "Rubric airline-policy v1 is stored.",
    "valid, version",
    "for airline-assistant stored (sha256",
    "conversations.json: 100 imported, 18 escalated",
    "newly queued",
    "item 1 · conversation",
    "Item 1 reviewed: policy violation",
    "policy-adherence",
    "airline-assistant v2: candidate.",
    "Redeploy proposed as action 1.",
    "Action 1 is awaiting_approval.",
    "Action 1: approve recorded for bashir@acme.com.",
    "Action 1 succeeded",
    "deployer agrees: v2 is live",
    "Nothing due.",
    "intact:",
]


def walkthrough_block() -> str:
    """The sh block that follows the walkthrough marker in the getting-started page."""
    after = PAGE.read_text().split(MARKER, 1)[1]
    match = re.search(r"```sh\n(.*?)```", after, flags=re.DOTALL)
    assert match is not None, "docs/getting-started.md lost its walkthrough block"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.skipif(TEST_DATABASE != "sqlite", reason="the walkthrough uses SQLite; run it once")
def test_readme_walkthrough_runs_as_written(tau_airline: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "activate").exists():
        pytest.skip("the walkthrough activates .venv, which make creates")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
    # The page's fixed port, swapped for a free one: a stray process on 8700 is no failure.
    block = walkthrough_block()
    assert "8700" in block, "the walkthrough no longer names its stand-in services' port"
    process = subprocess.Popen(
        ["bash", "-e", "-c", block.replace("8700", str(free_port()))],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        # The stand-in services run in the background: never leave them behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    flat = " ".join(output.split())
    assert process.returncode == 0, output[-3000:]
    assert "Traceback" not in output and "error:" not in output
    position = 0
    for expected in EXPECTED:
        found = flat.find(expected, position)
        assert found >= 0, f"missing {expected!r} after position {position}:\n{output[-3000:]}"
        position = found
