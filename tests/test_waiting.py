"""The tests' one polling helper: returns what the condition found, fails with a reason."""

import subprocess
import sys
from dataclasses import dataclass
from itertools import count

import pytest

from waiting import wait_for


def test_returns_the_first_truthy_value() -> None:
    calls = count(1)
    assert wait_for(lambda: max(next(calls) - 2, 0), what="the third call", every=0.001) == 1


def test_times_out_naming_what_it_waited_for_with_the_details() -> None:
    with pytest.raises(AssertionError) as failure:
        wait_for(lambda: False, what="the moon", timeout=0.05, every=0.01, details=lambda: "dark")
    assert str(failure.value) == "timed out after 0.05 s waiting for the moon\ndark"


@dataclass
class Quitter:
    process: subprocess.Popen[bytes]
    name: str = "quitter"

    def logs(self) -> str:
        return "bye"


def test_a_dead_watched_process_ends_the_wait_at_once() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(timeout=30)
    with pytest.raises(AssertionError) as failure:
        wait_for(lambda: False, what="the answer", timeout=60, watch=Quitter(process))
    assert str(failure.value) == "quitter exited (3) while waiting for the answer\nbye"
