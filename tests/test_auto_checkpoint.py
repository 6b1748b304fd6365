"""A checkpoint after every seal: a careful rewrite right after it is caught."""

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from agentops.audit.checkpoints import latest_size
from agentops.audit.sealer import wait_until_sealed
from agentops.audit.service import event_count, record_event
from agentops.cli.app import app
from agentops.settings import get_settings
from audit_tamper import rewrite_forward


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_every_seal_is_checkpointed_and_a_rewrite_after_it_fails_verify(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = tmp_path / "checkpoints"
    monkeypatch.setenv("AGENTOPS_AUDIT_SIGNING_KEY", str(tmp_path / "keys" / "audit.key"))
    monkeypatch.setenv("AGENTOPS_AUDIT_CHECKPOINT_DIR", str(checkpoints))
    get_settings.cache_clear()
    try:
        assert run("audit", "keygen")[0] == 0
        for n in range(3):
            with Session(engine) as session:
                record_event(session, actor="t", kind="k", entity_type="x", entity_id=n)
                session.commit()
            assert wait_until_sealed(engine)
            with Session(engine) as session:
                # Signed right after the seal, with no `agentops audit checkpoint` run.
                assert latest_size(checkpoints) == event_count(session) == n + 1
        with Session(engine) as session:
            rewrite_forward(session, seq=3, actor="mallory")
            session.commit()
        code, out = run("audit", "verify", "--checkpoints", str(checkpoints))
        assert code != 0 and "intact" not in out.replace("not intact", ""), out
    finally:
        get_settings.cache_clear()


def test_turned_off_no_checkpoint_is_written(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = tmp_path / "checkpoints"
    monkeypatch.setenv("AGENTOPS_AUDIT_SIGNING_KEY", str(tmp_path / "keys" / "audit.key"))
    monkeypatch.setenv("AGENTOPS_AUDIT_CHECKPOINT_DIR", str(checkpoints))
    monkeypatch.setenv("AGENTOPS_AUDIT_CHECKPOINT_AFTER_SEAL", "false")
    get_settings.cache_clear()
    try:
        assert run("audit", "keygen")[0] == 0
        with Session(engine) as session:
            record_event(session, actor="t", kind="k", entity_type="x", entity_id=1)
            session.commit()
        assert wait_until_sealed(engine)
        assert latest_size(checkpoints) == 0
    finally:
        get_settings.cache_clear()
