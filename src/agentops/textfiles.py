"""Reading the files users point agentops at, with errors they can act on."""

import os
import stat
from pathlib import Path

from agentops.errors import AgentOpsError

# Trigger files, rubrics and sample plans are a few kilobytes; a larger one is a mistake.
MAX_TEXT_BYTES = 4 * 1024 * 1024


def require_file(path: Path | str, *, what: str = "file") -> Path:
    """The path, if it names an existing regular file; else an AgentOpsError saying why not.

    Only the file's metadata is read: a FIFO with no writer or /dev/zero is refused
    before anything would block on it or read it forever.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise AgentOpsError(f"no such {what}: {path}") from None
    except (OSError, ValueError) as exc:
        raise AgentOpsError(
            f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    if stat.S_ISDIR(mode):
        raise AgentOpsError(f"{path} is a directory, not a {what}")
    if not stat.S_ISREG(mode):
        raise AgentOpsError(f"{path} is not a regular file (a pipe or device cannot be a {what})")
    return path


def read_text_file(path: Path | str, *, what: str = "file", limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a user's file, or an AgentOpsError that says what is wrong."""
    path = require_file(path, what=what)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise AgentOpsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise AgentOpsError(f"{path} is larger than {limit // (1024 * 1024)} MB: not a {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AgentOpsError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def check_output_file(path: Path | str, *, what: str = "file") -> Path:
    """The path, if a new regular file may be written there: never through a symlink,
    and never over a device, pipe or folder (an atomic rename would replace them)."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except (OSError, ValueError) as exc:
        raise AgentOpsError(
            f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    if stat.S_ISLNK(mode):
        raise AgentOpsError(f"{path} is a symbolic link: give the {what} a plain file name")
    if stat.S_ISDIR(mode):
        raise AgentOpsError(f"{path} is a directory: give a file name for the {what}")
    if not stat.S_ISREG(mode):
        raise AgentOpsError(f"{path} is a device or pipe, not a file the {what} may replace")
    return path
