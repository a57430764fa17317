"""`make run` is idempotent: a second run starts nothing twice and changes no secret."""

import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.stack  # drives the stack make run started

SUPERVISORCTL = [
    str(ROOT / ".venv" / "bin" / "supervisorctl"),
    "-c",
    str(ROOT / "dev" / "supervisord.conf"),
]


def _pids() -> dict[str, str]:
    """supervisord's pid and each program's, by name ("" for one that is not running)."""

    def ctl(*args: str) -> str:
        return subprocess.run(
            [*SUPERVISORCTL, *args], capture_output=True, text=True, timeout=30, check=False
        ).stdout

    pids = {"supervisord": ctl("pid").strip()}
    for line in ctl("status").splitlines():  # "services:auth  RUNNING  pid 123, uptime …"
        name, _, rest = line.partition(" ")
        pids[name] = rest.split("pid ")[1].split(",")[0] if "pid " in rest else ""
    return pids


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
    assert "supervisord: already running" in result.stdout
    after = _pids()
    # The services restart only when their code changed meanwhile (someone edits it).
    kept = [name for name in before if not name.startswith("services:")]
    if "code changed" not in result.stdout:
        kept = list(before)
    assert {name: after.get(name) for name in kept} == {name: before[name] for name in kept}
    assert (ROOT / "var" / "dev.env").read_text() == env_before
