"""The one polling helper of the tests: wait for a condition, with a clear failure."""

import subprocess
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Watched(Protocol):
    """A started process whose death ends the wait early (its logs go in the failure)."""

    @property
    def process(self) -> subprocess.Popen[bytes]: ...

    def logs(self) -> str: ...


def wait_for(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float = 20,
    every: float = 0.05,
    watch: Watched | None = None,
    details: Callable[[], str] | None = None,
) -> T:
    """Poll until the condition returns something truthy, and return it.

    Fails with an AssertionError naming `what` after `timeout` seconds (adding `details()`
    and the watched process's logs), or at once when the watched process has exited.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if watch is not None and watch.process.poll() is not None:
            name = getattr(watch, "name", "process")
            raise AssertionError(
                f"{name} exited ({watch.process.returncode}) while waiting for {what}\n"
                f"{watch.logs()}"
            )
        if time.monotonic() > deadline:
            extra = [details()] if details is not None else []
            if watch is not None:
                extra.append(watch.logs())
            raise AssertionError(
                "\n".join([f"timed out after {timeout} s waiting for {what}", *extra])
            )
        time.sleep(every)
    return value
