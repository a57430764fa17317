"""System tests: the stack `make run` started, driven from outside as a user would.

Nothing here imports a service. Users are made with the auth service's own CLI, requests
go over HTTP (often with a real `curl`), messages are read over AMQP.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:5000")
GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")


def create_user(email: str, password: str) -> None:
    """Create a user the way an operator does: `flask --app server create-user`."""
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "flask"),
            "--app",
            "server",
            "create-user",
            email,
            "--password-stdin",
        ],
        cwd=ROOT / "auth",
        input=f"{password}\n",
        text=True,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def new_user():
    """A function making a fresh user on the running stack: returns (email, password)."""

    def make(prefix: str = "user") -> tuple[str, str]:
        email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
        password = f"pw-{uuid.uuid4().hex}"
        create_user(email, password)
        return email, password

    return make


def curl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real curl, as the README's commands do; stdout as text."""
    return subprocess.run(
        ["curl", "-sS", *args], capture_output=True, text=True, check=check, timeout=120
    )


def login(base_url: str, email: str, password: str) -> str:
    response = requests.post(f"{base_url}/login", auth=(email, password), timeout=10)
    response.raise_for_status()
    return response.text
