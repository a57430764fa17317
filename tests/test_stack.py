"""`make run` is idempotent: a second run starts nothing twice and changes no secret."""

import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.stack  # drives the stack make run started


def _pids() -> dict[str, str]:
    return {path.stem: path.read_text().strip() for path in (ROOT / "var" / "run").glob("*.pid")}


def test_a_second_run_reuses_everything():
    before, env_before = _pids(), (ROOT / "var" / "dev.env").read_text()
    result = subprocess.run(
        [str(ROOT / "dev" / "stack.sh"), "up"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already running" in result.stdout
    assert "starting" not in result.stdout.replace("already running", "")
    assert _pids() == before
    assert (ROOT / "var" / "dev.env").read_text() == env_before
