"""Deployed flow runs refuse relative file settings with one clear error."""

from pathlib import Path

import pytest

from agentops.errors import RuleViolation
from agentops.settings import Settings, get_settings
from agentops.worker_paths import relative_file_settings, require_absolute_paths


def test_relative_paths_are_named(tmp_path: Path) -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert relative_file_settings(defaults, audit_files=True) == [
        "AGENTOPS_DATABASE_URL (sqlite:///./.agentops/agentops.db)",
        "AGENTOPS_AUDIT_SIGNING_KEY (.agentops/audit-signing.key)",
        "AGENTOPS_AUDIT_CHECKPOINT_DIR (.agentops/checkpoints)",
    ]
    assert relative_file_settings(defaults, audit_files=False) == [
        "AGENTOPS_DATABASE_URL (sqlite:///./.agentops/agentops.db)"
    ]
    absolute = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'a.db'}",
        audit_signing_key=tmp_path / "k",
        audit_checkpoint_dir=tmp_path / "c",
    )
    assert relative_file_settings(absolute, audit_files=True) == []
    server = Settings(_env_file=None, database_url="postgresql://u:secret@db/agentops")  # type: ignore[call-arg]
    assert relative_file_settings(server, audit_files=False) == []


def test_a_deployed_run_refuses_them_and_an_in_process_one_does_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGENTOPS_DATABASE_URL", f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("AGENTOPS_AUDIT_SIGNING_KEY", "keys/audit.key")
    get_settings.cache_clear()
    try:
        require_absolute_paths(in_deployment=True)  # the store is absolute: fine
        require_absolute_paths(in_deployment=False, audit_files=True)  # in-process: fine
        with pytest.raises(RuleViolation) as refused:
            require_absolute_paths(in_deployment=True, audit_files=True)
        message = str(refused.value)
        assert message.startswith("AGENTOPS_AUDIT_SIGNING_KEY (keys/audit.key)")
        assert "AGENTOPS_AUDIT_CHECKPOINT_DIR (.agentops/checkpoints)" in message
        assert "temporary directory" in message and "\n" not in message
    finally:
        get_settings.cache_clear()
