"""The built wheel installs into a clean venv and runs `agentops demo` far from the checkout."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


def run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    completed = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{' '.join(args)} failed:\n{output}"
    return output


def test_wheel_has_one_package_and_runs_the_demo_from_an_empty_directory(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    for key in ("AGENTOPS_DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(key, None)
    env["COLUMNS"] = "160"
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        cwd=tmp_path,
        env=env,
        timeout=180,
    )
    [wheel] = dist.glob("agentops_runbook-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    [metadata] = [name for name in names if name.endswith(".dist-info/METADATA")]
    # Not "agentops": that name on PyPI is an unrelated observability SDK.
    assert "\nName: agentops-runbook\n" in zipfile.ZipFile(wheel).read(metadata).decode()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"agentops"}
    for shipped in (
        "agentops/flows/approval_gate.py",
        "agentops/examples/rubric.example.yaml",
        "agentops/examples/triggers.example.yaml",
        "agentops/examples/prefect.yaml",
        "agentops/store/migrations/script.py.mako",
    ):
        assert shipped in names

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env, timeout=120)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path, env=env, timeout=600)

    empty = tmp_path / "empty"
    empty.mkdir()
    where = run(
        [str(python), "-c", "import agentops.flows.rollback_agent as m; print(m.__file__)"],
        cwd=empty,
        env=env,
        timeout=60,
    )
    assert str(venv) in where and str(ROOT) not in where
    output = run([str(venv / "bin" / "agentops"), "demo"], cwd=empty, env=env, timeout=300)
    assert "action 1: succeeded" in output and "action 2: succeeded" in output
    assert "Traceback" not in output
    assert (empty / ".agentops" / "demo.db").is_file()
