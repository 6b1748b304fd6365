"""The distribution is published as agentops-runbook; the import package stays agentops."""

import email
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_built_metadata_names_the_distribution_agentops_runbook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The build backend's own metadata hook: what `pip wheel` and `python -m build` write.
    from hatchling.build import prepare_metadata_for_build_wheel

    monkeypatch.chdir(ROOT)
    dist_info = prepare_metadata_for_build_wheel(str(tmp_path))
    metadata = email.message_from_string((tmp_path / dist_info / "METADATA").read_text())
    # "agentops" on PyPI is an unrelated SDK with the same import name: never that one.
    assert metadata["Name"] == "agentops-runbook"
    assert dist_info.startswith("agentops_runbook-")


def test_nothing_asks_for_the_metadata_of_a_distribution_called_agentops() -> None:
    sources = [
        path
        for folder in ("src", "flows", "deployments", "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
    ]
    assert sources
    for path in sources:
        text = path.read_text()
        assert 'version("agentops")' not in text, path
        assert 'distribution("agentops")' not in text, path
