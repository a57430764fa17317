"""A gateway of a test's own: gunicorn with the stack's gunicorn.conf.py on a free port,
with some settings changed (its own database, queue, or sweep ages), and its workers' pids
(to kill one the way the kernel does)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dev_env() -> dict[str, str]:
    """var/dev.env, the settings `make run` gives the services."""
    values = {}
    for line in (ROOT / "var" / "dev.env").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


class GatewayProcess:
    def __init__(self, log: Path, **settings: str) -> None:
        self.port = free_port()
        env = {**os.environ, **dev_env(), "GATEWAY_WORKERS": "1", **settings}
        env["GATEWAY_BIND"] = f"127.0.0.1:{self.port}"
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.pop("METRICS_PORT", None)
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "gunicorn"), "server:app"],
                cwd=ROOT / "gateway",
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if not self.wait_ready():
            self.stop()
            raise RuntimeError(f"the test's gateway did not start; see {log}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return True
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        return False

    def workers(self) -> list[int]:
        text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return [int(pid) for pid in text.split()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
