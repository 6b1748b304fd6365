"""Reading the files users point agentops at, with errors they can act on."""

from pathlib import Path

from agentops.errors import AgentOpsError


def require_file(path: Path | str, *, what: str = "file") -> Path:
    """The path, if it names an existing file; else an AgentOpsError that says why not."""
    path = Path(path)
    if not path.exists():
        raise AgentOpsError(f"no such {what}: {path}")
    if path.is_dir():
        raise AgentOpsError(f"{path} is a directory, not a {what}")
    return path


def read_text_file(path: Path | str, *, what: str = "file") -> str:
    """The UTF-8 text of a user's file, or an AgentOpsError that says what is wrong."""
    path = require_file(path, what=what)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AgentOpsError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise AgentOpsError(f"cannot read {path}: {exc.strerror or exc}") from exc
