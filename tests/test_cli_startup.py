"""Commands import only what they use: the help page and quick reads stay off the heavy stacks.

Start-up time itself is measured by benchmarks/scale_cli.py; these tests check the cause
(which modules a command imports) in a fresh process, so they do not depend on timing.
"""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.agents.service import ensure_person
from agentops.cli.app import COMMANDS, LazyGroup, app, run
from agentops.store.models import Role

# What a quick command must not pay for: orchestration, numerics, migrations, the web and
# Slack stacks, HTTP clients, signatures and YAML. Each is imported by the commands using it.
HEAVY = ("prefect", "numpy", "alembic", "fastapi", "slack_sdk", "httpx", "cryptography", "yaml")

# Runs the CLI in-process, then writes every imported module's name to the file in argv[1].
DRIVER = """
import json, sys
from agentops.cli.app import run
code = run(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
sys.exit(code)
"""


def imported_by(args: list[str], *, url: str, tmp_path: Path) -> tuple[set[str], str]:
    """The modules `agentops ARGS` imported in a fresh process, and what it printed."""
    listing = tmp_path / "modules.json"
    env = dict(os.environ, AGENTOPS_DATABASE_URL=url, COLUMNS="100")
    env.pop("AGENTOPS_USER_EMAIL", None)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(listing), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(listing.read_text())), done.stdout


def heavy_in(modules: set[str]) -> list[str]:
    """The heavy packages (top level) among these modules."""
    return sorted({name.split(".")[0] for name in modules} & set(HEAVY))


@pytest.mark.parametrize(
    ("args", "printed"),
    [
        (["agents", "list"], "No agents yet"),
        (["review", "next", "--as", "reviewer@example.com"], "The queue is empty"),
    ],
    ids=["agents list", "review next"],
)
def test_quick_commands_stay_off_the_heavy_stacks(
    engine: Engine, database_url: str, tmp_path: Path, args: list[str], printed: str
) -> None:
    with Session(engine) as session:  # claiming needs a registered reviewer
        ensure_person(session, email="reviewer@example.com", role=Role.reviewer)
        session.commit()
    modules, out = imported_by(args, url=database_url, tmp_path=tmp_path)
    assert printed in out
    assert heavy_in(modules) == []


def test_help_lists_every_command_without_importing_one(database_url: str, tmp_path: Path) -> None:
    modules, out = imported_by(["--help"], url=database_url, tmp_path=tmp_path)
    assert all(name in out for name in COMMANDS)
    assert not [name for name in modules if name.endswith("_cmd")]
    assert "sqlmodel" not in modules and "agentops.store.db" not in modules
    assert heavy_in(modules) == []


def test_agents_list_defines_only_the_core_tables(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    # Defining every table costs more than the rest of the command; see store/core_tables.py.
    modules, _ = imported_by(["agents", "list"], url=database_url, tmp_path=tmp_path)
    assert "agentops.store.core_tables" in modules
    assert "agentops.store.models" not in modules


def test_the_help_table_matches_each_commands_own_help() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    for name, entry in COMMANDS.items():
        command = group.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name
        own = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
        assert entry.help == " ".join(own.split()), name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["agnets", "list"], "No such command 'agnets'. Did you mean 'agents'? (agentops)"),
        (["nosuch"], "No such command 'nosuch'. (agentops)"),
        (["review", "nxt"], "No such command 'nxt'. Did you mean 'next'? (agentops review)"),
    ],
)
def test_an_unknown_command_is_one_line_with_a_suggestion(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"error: {message}; see --help"]


# The entry point as the console script calls it, with an exit handler that reports whether
# the command's objects were frozen before the interpreter shut down.
ENTRY_POINT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))
sys.argv[0] = "agentops"
from agentops.cli.app import main
main()
"""


@pytest.mark.parametrize(
    ("args", "code", "stdout", "stderr"),
    [
        (["agents", "list"], 0, "No agents yet", ""),
        (["agents", "show", "nobody"], 2, "", "no agent named 'nobody'"),
    ],
)
def test_the_entry_point_skips_the_final_collection_but_not_exit_handlers(
    database_url: str, args: list[str], code: int, stdout: str, stderr: str
) -> None:
    env = dict(os.environ, AGENTOPS_DATABASE_URL=database_url, COLUMNS="100")
    done = subprocess.run(
        [sys.executable, "-c", ENTRY_POINT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert stdout in done.stdout and stderr in done.stderr
    # Output and exit code as ever, exit handlers ran, and the objects had been frozen.
    assert done.stdout.rstrip().endswith("frozen at exit: True")
