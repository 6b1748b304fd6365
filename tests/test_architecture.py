"""The dependency rules, checked on the import graph: the domains never climb to an edge.

Domain folders hold rules and services; the channels (CLI, web, Slack, serve), the flows,
the demo and the composition root sit above them. A domain module that imports one of
those, or an edge library, fails here with the file, line and import named.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "agentops"
DOMAINS = (
    "agents",
    "actions",
    "review",
    "sampling",
    "triggers",
    "ingestion",
    "signals",
    "audit",
    "store",
)
# Channels, flows, the composition root and the libraries only edges may use.
FORBIDDEN = (
    "agentops.cli",
    "agentops.web",
    "agentops.slack",
    "agentops.serve",
    "agentops.flows",
    "agentops.demo",
    "agentops.bootstrap",
    "agentops.reactions",
    "flows",
    "prefect",
    "slack_sdk",
    "fastapi",
    "httpx",
)
# Adapters that live beside their domain on purpose, each with the one edge it may use.
ALLOWED: dict[str, dict[str, str]] = {
    # The deployer contract's HTTP client: the port (Deployer) and its one adapter.
    "actions/deployer.py": {"httpx": "the HTTP deployer adapter"},
    # The agent platform's HTTP client, the sampling flow's source.
    "ingestion/platform_client.py": {"httpx": "the platform API adapter"},
}


def imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an AST imports (nested and lazy imports too), with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def forbidden_in(name: str) -> str | None:
    """The forbidden package `name` belongs to, if any."""
    for banned in FORBIDDEN:
        if name == banned or name.startswith(banned + "."):
            return banned
    return None


def domain_files() -> list[Path]:
    return sorted(path for domain in DOMAINS for path in (SRC / domain).rglob("*.py"))


def breaches() -> list[str]:
    """`file:line imports name` for every import that breaks the rules."""
    found = []
    for path in domain_files():
        relative = path.relative_to(SRC).as_posix()
        allowed = ALLOWED.get(relative, {})
        for line, name in imported_names(ast.parse(path.read_text(), filename=str(path))):
            banned = forbidden_in(name)
            if banned is not None and banned not in allowed:
                found.append(f"{relative}:{line} imports {name}")
    return found


def test_the_domains_exist_and_are_scanned() -> None:
    files = domain_files()
    assert {path.relative_to(SRC).parts[0] for path in files} == set(DOMAINS)
    assert len(files) > 40


def test_no_domain_module_imports_a_channel_a_flow_or_an_edge_library() -> None:
    assert breaches() == []


# The channels and the demo run flows; nothing else below them may.
RUNS_FLOWS = ("cli", "web", "slack", "serve", "demo", "flows")


def test_only_the_channels_import_the_flows() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] in RUNS_FLOWS:
            continue
        for line, name in imported_names(ast.parse(path.read_text(), filename=str(path))):
            if forbidden_in(name) in {"agentops.flows", "flows"}:
                found.append(f"{relative.as_posix()}:{line} imports {name}")
    assert found == []


def test_every_allowed_exception_is_still_needed() -> None:
    # A stale exception would quietly allow a new breach in that file.
    for relative, names in ALLOWED.items():
        imported = {
            forbidden_in(name)
            for _, name in imported_names(ast.parse((SRC / relative).read_text()))
        }
        assert set(names) <= imported, f"{relative} no longer imports {set(names) - imported}"


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("import prefect", True),
        ("def f():\n    from agentops.flows.approval_gate import x", True),
        ("from agentops.cli.common import fail", True),
        ("import httpx.client", True),
        ("from agentops.clinic import x", False),  # a prefix of a name is not the package
        ("from agentops.store.db import write_session", False),
        ("from .service import x", False),
    ],
)
def test_the_check_sees_lazy_and_nested_imports(source: str, caught: bool) -> None:
    names = [name for _, name in imported_names(ast.parse(source))]
    assert any(forbidden_in(name) for name in names) is caught


def test_no_two_domains_import_each_other() -> None:
    edges: set[tuple[str, str]] = set()
    for path in domain_files():
        here = path.relative_to(SRC).parts[0]
        for _, name in imported_names(ast.parse(path.read_text(), filename=str(path))):
            parts = name.split(".")
            if parts[0] == "agentops" and len(parts) > 1 and parts[1] in set(DOMAINS) - {here}:
                edges.add((here, parts[1]))
    cycles = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert cycles == []
